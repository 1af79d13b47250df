"""What refresh queues, reports and skips for each mirrored tag, and how it spends a
registry's pull budget on the re-copies, called in the test process.

Real parts (tests/pipeline_support.py): a DuckDB store holding the recorded copies, the
local queue's journal holding what refresh queued, docker-registry as upstream (behind
the fault proxy, which adds Docker Hub's ``ratelimit-remaining`` or fails) and as the
mirror, whose index a re-copy's budget is measured by.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from armirror.reference import Reference, destination_for
from armirror.refresh import RATELIMIT_FLOOR, find_moved
from faultproxy import FaultProxy
from pipeline_support import Harness
from registry_checks import unique
from standins import images
from standins.registry import Registry

OLD = "sha256:" + "1" * 64
MakeHarness = Callable[..., Harness]


@pytest.fixture
def hub(source_registry: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(source_registry.url) as proxy:
        yield proxy


def remaining(hub: FaultProxy, left: int, path: str = "/manifests/") -> None:
    """Docker Hub's rate-limit headers on every manifest HEAD: ``left`` pulls remain."""
    hub.add("HEAD", path, "headers", times=1000,
            headers={"ratelimit-limit": "100;w=21600", "ratelimit-remaining": f"{left};w=21600"})  # fmt: skip


def upstream_image(registry: Registry, seed: int, *, index: bool = False) -> tuple[str, str]:
    """Push a fresh image (an index with ``index``) upstream: (source reference, digest)."""
    repository = unique("team/moving")
    if index:
        image = images.multi_arch_image(repository, "1", seed=seed, layer_sizes=(256,))
    else:
        image = images.single_image(repository, "1", seed=seed, layer_sizes=(256,))
    return f"docker.io/{repository}:1", images.push(registry.url, image)


def test_a_moved_tag_is_queued_for_a_recopy_pinned_to_what_upstream_names_now(
    harness: MakeHarness, source_registry: Registry, hub: FaultProxy
) -> None:
    source, digest = upstream_image(source_registry, 5101)
    same, current = upstream_image(source_registry, 5102)
    h = harness(upstream=hub.url)
    h.mirrored(source, OLD)
    h.mirrored(same, current)

    report = h.pipeline.refresh()

    assert report == {
        "checked": 2,
        "changed": [{"source": source, "from": OLD, "to": digest}],
        "unchanged": 1,
        "skipped": [],
        "stopped_early": False,
    }
    (job,) = h.jobs()
    assert job.pop("job_id").startswith("copy-")
    assert job == {
        "source": source,
        "destination": f"{h.prefix}/{source}",
        "reason": "refresh",
        "digest": digest,
    }


def test_what_refresh_leaves_alone_and_what_it_skips_with_the_reason(
    harness: MakeHarness, source_registry: Registry, hub: FaultProxy
) -> None:
    """A tag gone upstream, or whose upstream leaves Docker-Content-Digest out, is left
    as it is; a stored source that no longer parses, or an upstream that keeps failing,
    is skipped with why (the next refresh tries again)."""
    gone = f"docker.io/{unique('team/gone')}:1"
    digestless, _ = upstream_image(source_registry, 5111)
    failing, _ = upstream_image(source_registry, 5112)
    invalid = "docker.io/Team/Bad:1"
    hub.add("HEAD", digestless.split("/", 1)[1].replace(":", "/manifests/"), "headers",
            times=10, headers={"Docker-Content-Digest": ""})  # fmt: skip
    failing_path = "/v2/" + failing.split("/", 1)[1].replace(":", "/manifests/")
    hub.add("HEAD", failing_path, "serve", status=500, times=100)
    h = harness(upstream=hub.url)
    for source in (gone, digestless, failing, invalid):
        h.mirrored(source, OLD)

    report = h.pipeline.refresh()

    host = hub.url.removeprefix("http://")
    assert sorted(report["skipped"], key=lambda s: s["source"]) == [
        {
            "source": invalid,
            "reason": f"invalid image reference '{invalid}': repository name must be lowercase",
        },
        {
            "source": failing,
            "reason": f"HEAD {failing}: {host} answered 500 to HEAD {failing_path}",
        },
    ]
    assert (report["checked"], report["unchanged"], report["changed"]) == (2, 2, [])
    assert report["stopped_early"] is False
    assert h.jobs() == []


def test_a_registry_is_checked_no_further_once_queued_recopies_reach_the_floor(
    harness: MakeHarness, source_registry: Registry, hub: FaultProxy
) -> None:
    """11 pulls left and a floor of 10: one single-image re-copy (one manifest GET) fits,
    and then the registry is not even HEADed again."""
    digests = dict(upstream_image(source_registry, seed) for seed in (5121, 5122))
    first, second = sorted(digests)  # refresh reads the tags in this order
    remaining(hub, RATELIMIT_FLOOR + 1)
    h = harness(upstream=hub.url, refresh_concurrency=1)
    h.mirrored(first, OLD)
    h.mirrored(second, OLD)

    report = h.pipeline.refresh()

    assert report == {
        "checked": 1,
        "changed": [{"source": first, "from": OLD, "to": digests[first]}],
        "unchanged": 0,
        "skipped": [
            {
                "source": second,
                "reason": "ratelimit-remaining 10 after queued re-copies (floor 10)",
            }
        ],
        "stopped_early": True,
    }
    assert [j["source"] for j in h.jobs()] == [first]
    assert len(hub.arrived("HEAD", "/manifests/")) == 1


@pytest.mark.parametrize(
    ("platforms", "left", "gets"),
    [
        (None, 11, 2),  # the mirror cannot be read: 1 + 1 assumed
        (1, 11, 2),  # 1 + the mirror's one platform
        (3, 13, 4),  # 1 + the mirror's three platforms
    ],
)
def test_an_index_recopy_claims_a_get_per_platform_of_the_mirror(
    harness: MakeHarness,
    source_registry: Registry,
    dest_registry: Registry,
    hub: FaultProxy,
    platforms: int | None,
    left: int,
    gets: int,
) -> None:
    """An index's re-copy GETs the index and each platform manifest upstream; how many
    platforms is read from the mirror's current copy (the destination has no pull
    limit).  One GET short of fitting above the floor, the re-copy waits."""
    source, _ = upstream_image(source_registry, 5131, index=True)
    h = harness(upstream=hub.url, refresh_concurrency=1)
    if platforms is not None:
        all_platforms = ("linux/amd64", "linux/arm64", "linux/s390x")
        mirror = images.multi_arch_image(
            f"{h.prefix.split('/', 1)[1]}/{source.split(':')[0]}",
            "1",
            seed=5132,
            platforms=all_platforms[:platforms],
            layer_sizes=(128,),
            attestations=False,
        )
        images.push(dest_registry.url, mirror)
    h.mirrored(source, OLD)
    remaining(hub, left)

    report = h.pipeline.refresh()

    assert report["skipped"] == [
        {
            "source": source,
            "reason": f"ratelimit budget: the re-copy needs up to {gets} manifest GET(s), "
            f"{left} remain after queued re-copies (floor 10)",
        }
    ]
    assert report["changed"] == [] and h.jobs() == []

    # One more pull left, and the same re-copy fits.
    hub.clear()
    remaining(hub, left + 1)
    again = h.pipeline.refresh()
    assert [row["source"] for row in again["changed"]] == [source] and again["skipped"] == []
    assert [j["source"] for j in h.jobs()] == [source]


def test_find_moved_keeps_the_floor_it_is_given(
    harness: MakeHarness, source_registry: Registry, hub: FaultProxy
) -> None:
    source, digest = upstream_image(source_registry, 5141)
    remaining(hub, 4)
    h = harness(upstream=hub.url)
    queued: list[tuple[str, str, str]] = []

    async def on_moved(source: Reference, destination: Reference, new: str) -> None:
        queued.append((str(source), str(destination), new))

    async def run(floor: int) -> dict[str, Any]:
        async with h.pipeline.client_factory() as client:
            report = await find_moved(
                client,
                [(source, OLD)],
                destination_of=lambda s: destination_for(s, h.prefix),
                on_moved=on_moved,
                floor=floor,
            )
        return report.to_json()

    assert asyncio.run(run(floor=3))["changed"] == [{"source": source, "from": OLD, "to": digest}]
    assert queued == [(source, f"{h.prefix}/{source}", digest)]
    assert asyncio.run(run(floor=4))["skipped"][0]["reason"] == (
        "ratelimit budget: the re-copy needs up to 1 manifest GET(s), "
        "4 remain after queued re-copies (floor 4)"
    )


def test_find_moved_refuses_a_concurrency_below_one(harness: MakeHarness) -> None:
    h = harness()

    async def run() -> None:
        async with h.pipeline.client_factory() as client:
            await find_moved(
                client,
                [("docker.io/team/app:1", OLD)],
                destination_of=lambda s: destination_for(s, h.prefix),
                on_moved=lambda *_: asyncio.sleep(0),
                concurrency=0,
            )

    with pytest.raises(ValueError) as refused:
        asyncio.run(run())
    assert str(refused.value) == "concurrency must be at least 1"


def test_find_moved_reads_a_bounded_way_ahead_of_the_checks_and_tops_up_as_each_ends(
    harness: MakeHarness, source_registry: Registry
) -> None:
    """100,000 mirrored tags must not become 100,000 pending checks: at most four times
    ``concurrency`` are read ahead of the finished ones; and each finished check is
    replaced at once, not after a whole batch (a slow HEAD must not idle the others)."""
    concurrency = 2
    sources = [upstream_image(source_registry, 5150 + n)[0] for n in range(24)]
    h = harness()
    finished: list[str] = []
    ahead: list[int] = []

    def tags() -> Iterator[tuple[str, str]]:
        for n, source in enumerate(sources):
            ahead.append(n - len(finished))  # checks started and not yet finished
            yield source, OLD

    async def on_moved(source: Reference, destination: Reference, new: str) -> None:
        finished.append(str(source))  # the check ends right after this returns

    async def run() -> Any:
        async with h.pipeline.client_factory() as client:
            return await find_moved(
                client,
                tags(),
                destination_of=lambda s: destination_for(s, h.prefix),
                on_moved=on_moved,
                concurrency=concurrency,
            )

    report = asyncio.run(run())
    assert sorted(finished) == sorted(sources) and report.checked == len(sources)
    assert max(ahead) == 4 * concurrency
    # Once that far ahead, a wait ends when the first of the in-flight checks does:
    # never more than ``concurrency`` of them at once.
    assert min(ahead[4 * concurrency :]) >= 3 * concurrency, ahead
