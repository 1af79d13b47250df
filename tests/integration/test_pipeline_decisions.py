"""What on_pull_event decides to queue, against a real registry, DuckDB and the local queue
(the ``harness`` fixture: tests/pipeline_support.py)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from faultproxy import FaultProxy
from standins import images
from standins.registry import Registry


@pytest.mark.parametrize("threshold", [1, 5])
def test_a_rate_limited_pull_queues_one_job_at_once_whatever_the_threshold(
    harness: Any, threshold: int
) -> None:
    h = harness(threshold)
    image = "team/limited:7"
    first = h.event("rl-1", "Failed", image)
    again = h.event("rl-1", "Failed", image)  # the same entry redelivered
    other = h.event("rl-2", "Failed", image)  # another failure of the same image
    assert len(first.enqueued) == 1
    assert again.enqueued == [] and other.enqueued == []
    (job,) = h.jobs()
    assert job["source"] == "docker.io/team/limited:7"
    assert job["destination"] == f"{h.prefix}/docker.io/team/limited:7"
    assert job["reason"] == "rate_limited"


def test_below_the_threshold_an_ordinary_pull_queues_nothing(harness: Any) -> None:
    h = harness(5)
    outcomes = [h.event(f"p-{n}", "Pulling", "team/quiet:1") for n in range(4)]
    assert all(o.enqueued == [] for o in outcomes)
    assert "below the threshold of 5" in outcomes[-1].skipped[0]
    assert h.jobs() == []
    fifth = h.event("p-4", "Pulling", "team/quiet:1")
    assert len(fifth.enqueued) == 1
    assert [j["reason"] for j in h.jobs()] == ["pull"]


def test_an_image_already_at_the_destination_queues_nothing(
    harness: Any, dest_registry: Registry
) -> None:
    h = harness(1)
    repository = f"{h.prefix.split('/', 1)[1]}/docker.io/team/present"
    images.push(dest_registry.url, images.single_image(repository, "3", seed=1801))
    outcome = h.event("m-1", "Pulling", "team/present:3")
    assert outcome.enqueued == []
    assert outcome.skipped == ["docker.io/team/present:3: already mirrored"]
    assert h.jobs() == []
    # A tag the destination lacks is queued: the check looked at the right tag.
    assert len(h.event("m-2", "Pulling", "team/present:4").enqueued) == 1


@pytest.mark.parametrize(("remaining", "queued"), [("5;w=21600", 0), ("500;w=21600", 3)])
def test_refresh_queues_no_recopy_below_the_rate_limit_floor(
    harness: Any, source_registry: Registry, remaining: str, queued: int
) -> None:
    """HEADs are not Docker Hub pulls, so every tag is checked; the re-copies that would
    spend the last pulls (below the floor of 10) are skipped, and refresh says so."""
    tags = []
    for n in range(3):
        image = images.single_image(f"team/refresh{uuid.uuid4().hex[:6]}", "1", seed=1810 + n)
        images.push(source_registry.url, image)
        tags.append(f"docker.io/{image.repository}:1")
    with FaultProxy(source_registry.url) as hub:
        hub.add("HEAD", r"/manifests/", "headers", times=100,
                headers={"ratelimit-limit": "100;w=21600", "ratelimit-remaining": remaining})  # fmt: skip
        h = harness(upstream=hub.url)
        for source in tags:  # each recorded at an older digest: the upstream "moved"
            h.mirrored(source, "sha256:" + "1" * 64)
        report = h.pipeline.refresh()
        manifest_gets = hub.count("GET", r"/manifests/")
    assert report["checked"] == 3
    assert len(report["changed"]) == queued == len(h.jobs())
    skipped = [s for s in report["skipped"] if s["reason"].startswith("ratelimit")]
    assert sorted(s["source"] for s in skipped) == (sorted(tags) if queued == 0 else [])
    assert report["stopped_early"] is (queued == 0)
    assert manifest_gets == 0  # refresh itself pulls nothing
