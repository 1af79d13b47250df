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


def wait_until(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_retry_after_is_honoured_instead_of_the_backoff() -> None:
    """A worker's Retry-After decides when the job runs again, not the (tiny) backoff."""
    attempts: list[str] = []

    def worker(j: CopyJob) -> Attempt:
        attempts.append(j.job_id)
        return Attempt(done=False, retry_after=3600)

    queue = LocalQueue(worker, base_delay=0.001, max_delay=0.001).start()
    try:
        queue.enqueue(job(1))
        wait_until(lambda: [s for s in queue.scheduled() if s[1] == 1], "the job to be rescheduled")
        ((job_id, attempt, due_in),) = queue.scheduled()
        assert (job_id, attempt) == (job(1).job_id, 1)
        assert 3500 < due_in <= 3600
        assert attempts == [job(1).job_id]
    finally:
        queue.close()


def test_without_retry_after_the_backoff_is_bounded_by_max_delay() -> None:
    gate = threading.Event()

    def worker(j: CopyJob) -> Attempt:
        gate.wait(10)
        return Attempt(done=False)

    queue = LocalQueue(worker, base_delay=100.0, max_delay=120.0, max_attempts=5).start()
    try:
        queue.enqueue(job(1))
        gate.set()
        wait_until(lambda: [s for s in queue.scheduled() if s[1] == 1], "the job to be rescheduled")
        ((_, attempt, due_in),) = queue.scheduled()
        assert attempt == 1 and 0 <= due_in <= 120
    finally:
        queue.close()


def test_concurrency_is_bounded_and_used() -> None:
    """Three workers meet at a barrier of three (so three run at once); never a fourth."""
    running, peak = 0, 0
    lock = threading.Lock()
    barrier = threading.Barrier(3, timeout=10)

    def worker(j: CopyJob) -> Attempt:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        barrier.wait()  # breaks (and the job fails) unless three run together
        with lock:
            running -= 1
        return Attempt(done=True)

    queue = LocalQueue(worker, concurrency=3, max_attempts=1).start()
    try:
        for n in range(12):
            queue.enqueue(job(n))
        assert queue.drain(30)
        assert sorted(queue.completed) == sorted(job(n).job_id for n in range(12))
        assert queue.abandoned == []
        assert peak <= 3
    finally:
        queue.close()


def test_a_job_running_when_the_process_dies_runs_again_after_restart() -> None:
    """The journal keeps a job until it finishes, so a crash mid-run loses nothing."""
    journal = MemoryJournal()
    started, gate = threading.Event(), threading.Event()

    def first_worker(j: CopyJob) -> Attempt:
        started.set()
        gate.wait(10)
        return Attempt(done=True)

    first = LocalQueue(first_worker, journal=journal, concurrency=1).start()
    try:
        for n in range(3):
            first.enqueue(job(n))
        assert started.wait(10)
        # What is on disk at the moment the process is killed: all three, job 0 included.
        on_disk = MemoryJournal()
        on_disk.jobs = dict(journal.jobs)
    finally:
        gate.set()
        first.close()
    assert set(on_disk.jobs) == {job(n).job_id for n in range(3)}

    ran: list[str] = []
    second = LocalQueue(lambda j: (ran.append(j.job_id), Attempt(done=True))[1], journal=on_disk)
    second.start()
    try:
        assert second.drain(5)
        assert sorted(ran) == sorted(job(n).job_id for n in range(3))
        assert on_disk.jobs == {}
    finally:
        second.close()


def test_a_clean_close_finishes_the_running_job_and_keeps_the_rest() -> None:
    journal = MemoryJournal()
    started, gate = threading.Event(), threading.Event()
    first_ran: list[str] = []

    def first_worker(j: CopyJob) -> Attempt:
        first_ran.append(j.job_id)
        started.set()
        gate.wait(10)
        return Attempt(done=True)

    first = LocalQueue(first_worker, journal=journal, concurrency=1).start()
    for n in range(3):
        first.enqueue(job(n))
    assert started.wait(10)
    closing = threading.Thread(target=first.close)
    closing.start()
    wait_until(lambda: first._closed, "close() to begin")
    gate.set()
    closing.join(10)
    assert first_ran == [job(0).job_id]
    assert set(journal.jobs) == {job(1).job_id, job(2).job_id}

    ran: list[str] = []
    second = LocalQueue(lambda j: (ran.append(j.job_id), Attempt(done=True))[1], journal=journal)
    second.start()
    try:
        assert second.drain(5)
        assert sorted(ran) == sorted([job(1).job_id, job(2).job_id])
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
