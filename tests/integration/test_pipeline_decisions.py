"""What on_pull_event decides to queue, against a real registry, DuckDB and the local queue.

The queue is not started, so every job it accepted waits in the store's journal where
the test can read it, reason included.  The destination is a real docker-registry, so
"already mirrored" is a real HEAD.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from armirror.config import Settings
from armirror.pipeline import Pipeline
from armirror.queue.local import Attempt, LocalQueue
from armirror.registry import CopyResult
from armirror.store.duckdb import DuckDBStore
from faultproxy import FaultProxy
from standins import images
from standins.logentries import cloud_event, kubelet_entry
from standins.registry import Registry

WHEN = datetime(2026, 10, 1, 8, 0, 1, tzinfo=UTC)


class Harness:
    def __init__(self, tmp_path: Path, upstream: str, dest: Registry, threshold: int) -> None:
        self.prefix = f"{dest.host}/decisions-{uuid.uuid4().hex[:12]}"
        settings = Settings(
            destination=self.prefix,
            upstreams={"docker.io": upstream},
            mirror_threshold=threshold,
        )
        self.store = DuckDBStore(tmp_path / f"armirror-{uuid.uuid4().hex[:8]}.duckdb")
        self.queue = LocalQueue(lambda job: Attempt(done=True), journal=self.store)  # not started
        self.pipeline = Pipeline(settings, self.store, self.queue)

    def event(self, insert_id: str, kind: str, image: str) -> Any:
        return self.pipeline.on_pull_event(cloud_event(kubelet_entry(insert_id, WHEN, kind, image)))

    def jobs(self) -> list[dict[str, Any]]:
        return self.store.pending_jobs()

    def close(self) -> None:
        self.queue.close()
        self.store.close()


@pytest.fixture
def harness(tmp_path: Path, source_registry: Registry, dest_registry: Registry) -> Iterator[Any]:
    made: list[Harness] = []

    def make(threshold: int = 1, upstream: str | None = None) -> Harness:
        upstream = upstream or source_registry.url
        made.append(Harness(tmp_path, upstream, dest_registry, threshold))
        return made[-1]

    yield make
    for harness in made:
        harness.close()


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


def _mirrored(h: Harness, source: str, digest: str) -> None:
    """Record a finished copy, as copy_image does, so refresh has a tag to check."""
    destination = f"{h.prefix}/{source}"
    h.store.record_copy(CopyResult(source, destination, "copied", digest=digest))


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
            _mirrored(h, source, "sha256:" + "1" * 64)
        report = h.pipeline.refresh()
        manifest_gets = hub.count("GET", r"/manifests/")
    assert report["checked"] == 3
    assert len(report["changed"]) == queued == len(h.jobs())
    skipped = [s for s in report["skipped"] if s["reason"].startswith("ratelimit")]
    assert sorted(s["source"] for s in skipped) == (sorted(tags) if queued == 0 else [])
    assert report["stopped_early"] is (queued == 0)
    assert manifest_gets == 0  # refresh itself pulls nothing
