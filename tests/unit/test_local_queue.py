"""The embedded queue: bounded concurrency, retries, dedup, and nothing lost on restart."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from armirror.queue import CopyJob
from armirror.queue.local import Attempt, LocalQueue


class MemoryJournal:
    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}

    def add_pending_job(self, job_id: str, job: dict[str, Any]) -> None:
        self.jobs[job_id] = job

    def remove_pending_job(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)

    def pending_jobs(self) -> list[dict[str, Any]]:
        return list(self.jobs.values())


def job(n: int) -> CopyJob:
    return CopyJob(f"docker.io/library/img{n}:1", f"r.example/p/m/docker.io/library/img{n}:1")


def test_job_ids_are_deterministic_and_valid_task_names() -> None:
    assert job(1).job_id == job(1).job_id != job(2).job_id
    refresh = CopyJob(job(1).source, job(1).destination, "refresh", "sha256:" + "a" * 64)
    assert refresh.job_id != job(1).job_id
    assert all(c.isalnum() or c in "-_" for c in job(1).job_id) and len(job(1).job_id) < 500


def test_runs_each_job_once_and_refuses_duplicates() -> None:
    ran: list[str] = []
    queue = LocalQueue(lambda j: (ran.append(j.job_id), Attempt(done=True))[1]).start()
    try:
        assert queue.enqueue(job(1)) is True
        assert queue.enqueue(job(1)) is False  # pending or just finished: the dedup window
        assert queue.drain(5)
        assert queue.enqueue(job(1)) is False
        assert ran == [job(1).job_id]
    finally:
        queue.close()


def test_retries_with_backoff_then_gives_up() -> None:
    attempts: list[float] = []
    queue = LocalQueue(
        lambda j: (attempts.append(time.monotonic()), Attempt(done=False))[1],
        max_attempts=3,
        base_delay=0.01,
        max_delay=0.05,
    ).start()
    try:
        queue.enqueue(job(1))
        assert queue.drain(5)
        assert len(attempts) == 3
        assert queue.abandoned == [job(1).job_id]
    finally:
        queue.close()


def test_retry_after_is_honoured() -> None:
    attempts: list[float] = []

    def worker(j: CopyJob) -> Attempt:
        attempts.append(time.monotonic())
        return Attempt(done=len(attempts) > 1, retry_after=0.3)

    queue = LocalQueue(worker).start()
    try:
        queue.enqueue(job(1))
        assert queue.drain(5)
        assert attempts[1] - attempts[0] >= 0.29
    finally:
        queue.close()


def test_concurrency_is_bounded() -> None:
    running, peak = 0, 0
    lock = threading.Lock()

    def worker(j: CopyJob) -> Attempt:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return Attempt(done=True)

    queue = LocalQueue(worker, concurrency=3).start()
    try:
        for n in range(12):
            queue.enqueue(job(n))
        assert queue.drain(10)
        assert peak == 3
    finally:
        queue.close()


def test_pending_jobs_survive_a_restart() -> None:
    journal = MemoryJournal()
    gate = threading.Event()
    first = LocalQueue(
        lambda j: (gate.wait(5), Attempt(done=True))[1], journal=journal, concurrency=1
    )
    first.start()
    for n in range(3):
        first.enqueue(job(n))
    first.close()  # stops with the jobs still pending
    gate.set()
    assert len(journal.jobs) >= 2
    ran: list[str] = []
    second = LocalQueue(lambda j: (ran.append(j.job_id), Attempt(done=True))[1], journal=journal)
    second.start()
    try:
        assert second.drain(5)
        assert set(ran) >= {job(1).job_id, job(2).job_id}
        assert journal.jobs == {}
    finally:
        second.close()


def test_the_duckdb_store_is_the_journal(tmp_path: Path) -> None:
    """Jobs queued but not run survive closing the process's store and queue."""
    from armirror.store.duckdb import DuckDBStore

    path = tmp_path / "armirror.duckdb"
    store = DuckDBStore(path)
    first = LocalQueue(lambda j: Attempt(done=True), journal=store)  # never started
    for n in range(3):
        assert first.enqueue(job(n))
    first.close()
    store.close()

    reopened = DuckDBStore(path)
    ran: list[str] = []
    second = LocalQueue(
        lambda j: (ran.append(j.job_id), Attempt(done=True))[1], journal=reopened
    ).start()
    try:
        assert second.drain(5)
        assert sorted(ran) == sorted(job(n).job_id for n in range(3))
        assert reopened.pending_jobs() == []
    finally:
        second.close()
        reopened.close()
