"""Refresh at scale: many upstream checks in flight, and a pull budget per registry.

The pipeline runs in-process over a real DuckDB store and an unstarted local queue (so
queued jobs stay visible: the ``harness`` fixture, tests/pipeline_support.py), against a
real registry reached through the latency relay or the fault proxy.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from armirror.config import ConfigError, load
from faultproxy import FaultProxy
from pipeline_support import Harness
from registry_checks import unique
from standins import images
from standins.registry import Registry
from standins.relay import LatencyRelay

MOVED = "sha256:" + "0" * 64


def _tagged_copies(source: Registry, count: int) -> tuple[str, list[str], str]:
    """One image under ``count`` tags of a fresh repository: (repository, tags, digest)."""
    image = images.single_image(unique("library/refresh"), "t0", seed=4100, layer_sizes=(512,))
    images.push(source.url, image)
    tags = [f"t{n}" for n in range(count)]
    with httpx.Client(base_url=source.url) as client:
        for tag in tags[1:]:
            response = client.put(
                f"/v2/{image.repository}/manifests/{tag}",
                content=image.top.raw,
                headers={"Content-Type": image.top.media_type},
            )
            response.raise_for_status()
    return image.repository, tags, image.digest


def _record(h: Harness, repository: str, tags: list[str], digest_of: dict[str, str]) -> None:
    for tag in tags:
        h.mirrored(f"docker.io/{repository}:{tag}", digest_of[tag])


def _queued(h: Harness) -> list[str]:
    return sorted(job["source"] for job in h.jobs())


def test_refresh_keeps_the_configured_number_of_checks_in_flight(
    source_registry: Registry, harness: Callable[..., Harness]
) -> None:
    repository, tags, current = _tagged_copies(source_registry, 48)
    with LatencyRelay(source_registry.host, delay=0.05) as relay:
        h = harness(upstream=relay.url_for(source_registry.host), refresh_concurrency=8)
        moved = set(tags[:5])
        _record(h, repository, tags, {t: MOVED if t in moved else current for t in tags})

        report = h.pipeline.refresh()

        assert report["checked"] == 48 and report["unchanged"] == 43
        assert {row["source"] for row in report["changed"]} == {
            f"docker.io/{repository}:{t}" for t in moved
        }
        assert _queued(h) == sorted(f"docker.io/{repository}:{t}" for t in moved)
        # Each check waits 100 ms at the relay; with eight in flight from the start,
        # eight connections open, and never more.
        assert relay.stats(source_registry.host).connections == 8


def test_refresh_queues_no_more_than_the_pull_budget_allows(
    source_registry: Registry, harness: Callable[..., Harness]
) -> None:
    repository, tags, _ = _tagged_copies(source_registry, 12)
    with FaultProxy(source_registry.url) as hub:
        # Docker Hub's headers, on every answer: 13 pulls left in this 6-hour window.
        hub.add(
            "HEAD",
            "/manifests/",
            "headers",
            times=1000,
            headers={"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "13;w=21600"},
        )
        h = harness(upstream=hub.url, refresh_concurrency=1)
        _record(h, repository, tags, dict.fromkeys(tags, MOVED))

        report = h.pipeline.refresh()

    # Every tag moved; each re-copy needs one manifest GET.  13 remain and the floor is
    # 10, so three re-copies are queued; then the budget is spent, and the registry is
    # not checked any further.
    assert len(report["changed"]) == 3
    assert len(_queued(h)) == 3
    assert report["stopped_early"] is True
    reasons = [row["reason"] for row in report["skipped"]]
    assert len(reasons) == 9 and all(r.startswith("ratelimit") for r in reasons)
    assert report["checked"] == 3
    assert hub.count("GET", "/manifests/") == 0  # a refresh itself pulls nothing


def test_refresh_concurrency_is_validated() -> None:
    assert load({"ARMIRROR_REFRESH_CONCURRENCY": "64"}).refresh_concurrency == 64
    assert load({}).refresh_concurrency == 32
    for bad in ("0", "-3", "many", "100000"):
        with pytest.raises(ConfigError, match="ARMIRROR_REFRESH_CONCURRENCY"):
            load({"ARMIRROR_REFRESH_CONCURRENCY": bad})
