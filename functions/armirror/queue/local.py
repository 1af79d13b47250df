"""The embedded default queue: an in-process worker pool with retry and backoff.

Jobs wait in memory and, through a :class:`JobJournal` (the embedded store), on disk:
a restart reloads what was pending, so nothing is lost.  Like Cloud Tasks it refuses a
job whose ID is pending, running, or finished within the dedup window.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from armirror.queue import CopyJob, QueueUnavailable

log = logging.getLogger(__name__)

#: Cloud Tasks refuses a reused task name for about an hour; so do we.
DEDUP_WINDOW_SECONDS = 3600.0


@dataclass(frozen=True)
class Attempt:
    """What a worker says about one run of a job."""

    done: bool
    retry_after: float | None = None


@runtime_checkable
class JobJournal(Protocol):
    """Durable record of pending jobs, as JSON objects (the DuckDB store implements it)."""

    def add_pending_job(self, job_id: str, job: dict[str, Any]) -> None: ...
    def remove_pending_job(self, job_id: str) -> None: ...
    def pending_jobs(self) -> list[dict[str, Any]]: ...


class LocalQueue:
    """Run jobs on ``concurrency`` threads; retry failures with bounded exponential backoff."""

    def __init__(
        self,
        worker: Callable[[CopyJob], Attempt],
        *,
        journal: JobJournal | None = None,
        concurrency: int = 4,
        max_attempts: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        dedup_window: float = DEDUP_WINDOW_SECONDS,
    ) -> None:
        self._worker = worker
        self._journal = journal
        self.max_attempts = max_attempts
        self.base_delay, self.max_delay = base_delay, max_delay
        self.dedup_window = dedup_window
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, CopyJob, int]] = []  # (due, seq, job, attempt)
        self._known: set[str] = set()  # pending or running
        self._finished: dict[str, float] = {}
        self._running = 0
        self._seq = 0
        self._closed = False
        self.completed: list[str] = []
        self.abandoned: list[str] = []
        self._threads = [
            threading.Thread(target=self._run, name=f"armirror-queue-{i}", daemon=True)
            for i in range(max(1, concurrency))
        ]

    def start(self) -> LocalQueue:
        """Reload the journal's pending jobs and start the workers."""
        if self._journal is not None:
            with self._lock:
                for saved in self._journal.pending_jobs():
                    job = CopyJob.from_json(saved)
                    if job.job_id not in self._known:
                        self._push(job, 0, time.monotonic())
        for thread in self._threads:
            thread.start()
        return self

    def _push(self, job: CopyJob, attempt: int, due: float) -> None:
        self._known.add(job.job_id)
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, job, attempt))

    def enqueue(self, job: CopyJob) -> bool:
        with self._lock:
            if self._closed:
                raise QueueUnavailable("the local queue is shut down")
            finished = self._finished.get(job.job_id)
            if job.job_id in self._known or (
                finished is not None and time.monotonic() - finished < self.dedup_window
            ):
                return False
            if self._journal is not None:
                self._journal.add_pending_job(job.job_id, job.to_json())
            self._push(job, 0, time.monotonic())
            self._lock.notify()
            return True

    def _next(self) -> tuple[CopyJob, int] | None:
        with self._lock:
            while not self._closed:
                if self._heap:
                    due = self._heap[0][0]
                    wait = due - time.monotonic()
                    if wait <= 0:
                        _, _, job, attempt = heapq.heappop(self._heap)
                        self._running += 1
                        return job, attempt
                    self._lock.wait(wait)
                else:
                    self._lock.wait()
            return None

    def _run(self) -> None:
        while (item := self._next()) is not None:
            job, attempt = item
            try:
                outcome = self._worker(job)
            except Exception:
                log.exception("copy job %s (%s) crashed", job.job_id, job.source)
                outcome = Attempt(done=False)
            with self._lock:
                self._running -= 1
                if outcome.done or attempt + 1 >= self.max_attempts:
                    if not outcome.done:
                        log.error("giving up on %s after %d attempts", job.source, attempt + 1)
                        self.abandoned.append(job.job_id)
                    else:
                        self.completed.append(job.job_id)
                    self._known.discard(job.job_id)
                    self._finished[job.job_id] = time.monotonic()
                    if self._journal is not None:
                        self._journal.remove_pending_job(job.job_id)
                else:
                    delay = outcome.retry_after
                    if delay is None:
                        delay = random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
                    log.info("retrying %s in %.1fs", job.source, delay)
                    self._push(job, attempt + 1, time.monotonic() + delay)
                self._lock.notify_all()

    def scheduled(self) -> list[tuple[str, int, float]]:
        """Jobs waiting their turn: (job ID, attempt number, seconds until due)."""
        now = time.monotonic()
        with self._lock:
            return [(job.job_id, attempt, due - now) for due, _, job, attempt in sorted(self._heap)]

    def pending(self) -> int:
        with self._lock:
            return len(self._heap) + self._running

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until every job has finished; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._heap or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def close(self) -> None:
        """Stop the workers; jobs not yet run stay in the journal for the next start."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        for thread in self._threads:
            if thread.ident is not None:  # a queue closed before start() has none running
                thread.join(timeout=5)
