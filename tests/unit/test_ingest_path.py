"""The ingest path: grouped small writes with exact per-caller counts, a failing write
that fails only its caller, pull_count asked only when it can matter.  (Its speed
details, the shared TLS context, one HEAD client and cached SQL, are checked by
bench/load/hot_paths.py before the load benchmark.)"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from armirror.config import Settings
from armirror.events import PullEvent
from armirror.pipeline import Pipeline
from armirror.queue import CopyJob
from armirror.store.duckdb import DuckDBStore
from standins.logentries import cloud_event, kubelet_entry

WHEN = datetime(2026, 10, 1, 8, 0, 1, tzinfo=UTC)


class FakeClient:
    made = 0

    def __init__(self) -> None:
        FakeClient.made += 1
        self.heads: list[str] = []

    async def head_manifest(self, ref: Any) -> Any:
        self.heads.append(str(ref))
        return None


class Queue:
    def __init__(self) -> None:
        self.jobs: list[CopyJob] = []

    def enqueue(self, job: CopyJob) -> bool:
        if any(j.job_id == job.job_id for j in self.jobs):
            return False
        self.jobs.append(job)
        return True

    def close(self) -> None:
        pass


class CountingStore(DuckDBStore):
    asked = 0

    def pull_count(self, reference: str, since: datetime | None = None) -> int:
        CountingStore.asked += 1
        return super().pull_count(reference, since)


@pytest.mark.parametrize(("threshold", "kind", "asked", "queued"), [
    (1, "Pulling", 0, 1),   # this message's own pull reaches the threshold
    (2, "Pulling", 1, 0),   # it does not: the store is asked
    (1, "Pulled", 1, 0),    # a Pulled is not counted by pull_count: asked, and 0
])  # fmt: skip
def test_pull_count_is_asked_only_when_it_can_matter(
    tmp_path: Path, threshold: int, kind: str, asked: int, queued: int
) -> None:
    CountingStore.asked = 0
    store = CountingStore(tmp_path / "s.duckdb")
    queue = Queue()
    settings = Settings(destination="127.0.0.1:1/m", mirror_threshold=threshold)
    pipeline = Pipeline(settings, store, queue, FakeClient)  # type: ignore[arg-type]
    pipeline.on_pull_event(cloud_event(kubelet_entry("e1", WHEN, kind, "nginx:1.27")))
    assert (CountingStore.asked, len(queue.jobs)) == (asked, queued)


def _event(insert_id: str) -> PullEvent:
    return PullEvent(
        insert_id, WHEN, "pulling", "nginx", "docker.io/library/nginx:latest", "docker.io",
        "library/nginx", "docker_hub", True,
    )  # fmt: skip


def test_concurrent_small_records_are_counted_exactly_once(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.record([_event("old")])
    added: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def record(n: int) -> None:
        start.wait()
        # every caller brings "old" (recorded), "shared" (racing) and one of its own
        got = store.record([_event("old"), _event("shared"), _event(f"own{n}")])
        with lock:
            added.append(got)

    threads = [threading.Thread(target=record, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(added) == [1] * 15 + [2]
    assert store.count_rows("pull_events") == 18


def test_a_failing_write_fails_only_its_caller(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    bad = {**_event("x").to_json(), "recorded_at": WHEN}
    bad["event_time"] = "not a time"
    from armirror.store.duckdb import _Ticket

    good = _Ticket("pull_events", [{**_event("y").to_json(), "recorded_at": WHEN}])
    broken = _Ticket("pull_events", [bad])
    good.rows[0]["event_time"] = WHEN
    with store._lock:
        store._write_batch([good, broken])
    assert good.done and good.added == 1 and good.error is None
    assert broken.done and broken.error is not None
    assert store.count_rows("pull_events") == 1
