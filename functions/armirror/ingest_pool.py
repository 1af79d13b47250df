"""``armirror pulls`` in worker processes: the main process hands out tasks (byte ranges of
plain files, or lists of lines) and loads the CSV files the workers write
(:mod:`armirror.ingest_worker`) into the store in input order."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from armirror.events import line_blocks, read_entries
from armirror.ingest import IngestSummary, ingest_entries, open_input
from armirror.ingest_worker import FileIdentity
from armirror.store import PullStore

#: Bytes of a plain file (about 5,000 entries) or lines of other input that a worker
#: parses into one file for the store, and files the store loads in one statement
#: (about 20,000 events, as ingest.BATCH_SIZE): small tasks keep the workers' memory small.
TASK_BYTES = 4 << 20
TASK_LINES = 5_000
LOAD_FILES = 4
#: Worker processes; the main process loads their files meanwhile.
WORKERS = 2
#: Tasks handed out ahead, so the workers keep parsing while the main process loads
#: (with only WORKERS in flight they idled during each load: about 15% slower).
IN_FLIGHT = 3 * WORKERS
#: Characters read first, to tell a JSON array from JSON lines.
HEAD_CHARS = 1 << 20


def parallel(store: PullStore) -> bool:
    """Whether workers can help: the store loads their CSV files, and a second core runs them."""
    return hasattr(store, "record_events_csv") and WORKERS > 1 and (os.cpu_count() or 1) > 1


def plain_file(path: str) -> bool:
    """A regular file that a worker process can open by its name.  ``/dev/fd/N``,
    ``/dev/stdin`` and ``/proc/…/fd/N`` name this process's descriptors, which a worker
    does not have (its own descriptor N would be something else), so they are read here
    and handed out as lines."""
    if path == "-" or path.endswith(".gz"):
        return False
    absolute = os.path.abspath(path)
    return not absolute.startswith(("/dev/", "/proc/")) and os.path.isfile(absolute)


@dataclass
class InProcess:
    """Entries of a file that is not JSON lines (a ``gcloud logging read`` array): they
    are parsed here, once every task before them is in the store."""

    entries: Iterator[Any]


#: A task for a worker: a list of lines, or a byte range (path, start, end, identity)
#: of a file.
Task = list[str] | tuple[str, int, int, FileIdentity]


def tasks(paths: Iterable[str]) -> Generator[Task | InProcess, None, None]:
    """The tasks of all the files in order.  Lines of files too small for byte ranges
    gather into tasks of TASK_LINES across files, so 400 hourly exports of 1,000 entries
    keep both workers busy instead of being parsed here one by one."""
    lines: list[str] = []
    for path in paths:
        with open_input(path) as stream:
            head = stream.read(HEAD_CHARS)
            array = head.lstrip().startswith("[")
            ranges = not array and plain_file(path) and os.path.getsize(path) > TASK_BYTES
            if (array or ranges) and lines:
                yield lines
                lines = []
            if array:
                yield InProcess(read_entries(stream, head))
            elif ranges:
                yield from file_ranges(path)
            else:
                for block in line_blocks(stream, head):
                    lines.extend(block)
                    if len(lines) >= TASK_LINES:
                        yield lines
                        lines = []
    if lines:
        yield lines


def file_ranges(path: str) -> Iterator[Task]:
    """Byte ranges of about TASK_BYTES that start and end at line boundaries."""
    from armirror.ingest_worker import file_identity, line_boundary

    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        identity = file_identity(handle)
        start = 0
        while start < size:
            end = line_boundary(handle, start + TASK_BYTES)
            if end <= start:  # the boundary is clamped to the end of a shorter file
                raise OSError(f"{path}: the file shrank from {size} bytes while being read")
            yield (path, start, end, identity)
            start = end


def ingest_parallel(store: Any, tasks: Iterator[Task | InProcess], summary: IngestSummary) -> None:
    from armirror.ingest_worker import ChunkResult, parse_lines, parse_range

    fields = store.event_csv_fields()
    pending: deque[Future[ChunkResult]] = deque()
    pool: ProcessPoolExecutor | None = None

    files: list[str] = []
    # The insert_ids in the files to load next, and the rows of a later file whose
    # insert_id an earlier one has: the store leaves those out, so the first is kept
    # without ordering the whole statement (which cost a tenth of the ingest).
    ids: set[str] = set()
    later_copies: list[tuple[str, str]] = []

    def load() -> None:
        try:
            summary.recorded += store.record_events_csv(files, later_copies=later_copies)
        finally:
            for path in files:
                os.unlink(path)
            files.clear()
            ids.clear()
            later_copies.clear()

    def finish(result: ChunkResult) -> None:
        entries, skipped, found, path, written = result
        summary.entries += entries
        summary.skipped.update(skipped)
        summary.events += found
        if path is not None:
            later_copies.extend((path, insert_id) for insert_id in ids & written)
            ids.update(written)
            files.append(path)
            if len(files) >= LOAD_FILES:
                load()

    def submit(task: Task) -> Future[ChunkResult]:
        assert pool is not None
        if isinstance(task, tuple):
            return pool.submit(parse_range, *task, fields)
        return pool.submit(parse_lines, task, fields)

    try:
        for task in tasks:
            if isinstance(task, InProcess):
                while pending:
                    finish(pending.popleft().result())
                if files:
                    load()
                ingest_entries(store, task.entries, summary)
                continue
            if pool is None and isinstance(task, list) and len(task) < TASK_LINES:
                finish(parse_lines(task, fields))  # all of a small input: no workers
                continue
            if pool is None:
                context = multiprocessing.get_context("spawn")
                pool = ProcessPoolExecutor(max_workers=WORKERS, mp_context=context)
            pending.append(submit(task))
            del task
            while len(pending) >= IN_FLIGHT:
                finish(pending.popleft().result())
        while pending:
            finish(pending.popleft().result())
        if files:
            load()
    finally:
        for path in files:
            os.unlink(path)
        if pool is not None:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)
            for future in pending:  # finished but never recorded: remove their files
                if future.done() and not future.cancelled() and future.exception() is None:
                    left = future.result()[3]
                    if left is not None:
                        os.unlink(left)
