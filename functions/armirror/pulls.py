"""``armirror pulls``: exported logs -> the pull store -> a ranking of images.

:func:`ingest` streams exported log files (a ``gcloud logging read --format=json``
array, JSON lines, or a BigQuery sink table's newline-delimited export, plain or gzip)
through :mod:`armirror.events` into a store in batches, so memory stays flat however
large the file.  :func:`rank_sink_table` ranks straight from a log sink's own BigQuery
tables: it parses their rows with the same parser into a throwaway in-memory store.
"""

from __future__ import annotations

import errno
import gzip
import io
import multiprocessing
import os
import stat
import sys
import zlib
from collections import Counter, deque
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from armirror.events import PullEvent, Skip, line_blocks, parse_log_entry, read_entries
from armirror.ingest_worker import FileIdentity
from armirror.store import ImageRanking, PullStore

__all__ = ["IngestSummary", "ingest", "ingest_entries", "open_input", "rank_sink_table"]

#: Events handed to the store at a time.
BATCH_SIZE = 20_000


@dataclass
class IngestSummary:
    """What reading the logs did: entries read, events found, rows new, skips by code."""

    entries: int = 0
    events: int = 0
    recorded: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "events": self.events,
            "recorded": self.recorded,
            "skipped": dict(sorted(self.skipped.items())),
        }


@contextmanager
def open_input(path: str) -> Iterator[IO[str]]:
    """A text stream of ``path`` (``-`` is stdin; ``.gz`` is decompressed)."""
    if path == "-":
        yield io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
        return
    raw = _GzipInput(path, "rb") if path.endswith(".gz") else open(path, "rb")  # noqa: SIM115
    with raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as text:
        yield text


class _GzipInput(gzip.GzipFile):
    """A gzip file whose being cut short or corrupt is an OSError that names it (gzip
    says EOFError, zlib.error or a CRC mismatch without the file's name)."""

    def read(self, size: int | None = -1) -> bytes:
        with self._named_errors():
            return super().read(size)

    def read1(self, size: int = -1) -> bytes:  # what TextIOWrapper calls
        with self._named_errors():
            return super().read1(size)

    @contextmanager
    def _named_errors(self) -> Iterator[None]:
        try:
            yield
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise OSError(f"{self.name}: not a whole gzip file: {exc}") from None


def ingest_entries(
    store: PullStore, entries: Iterable[Any], summary: IngestSummary | None = None
) -> IngestSummary:
    """Parse LogEntries (dicts, or the :class:`Skip` of an unreadable line) into the store."""
    summary = summary or IngestSummary()
    batch: list[PullEvent] = []
    skipped = summary.skipped
    for entry in entries:
        summary.entries += 1
        if isinstance(entry, Skip):
            skipped[entry.code] += 1
            continue
        result = parse_log_entry(entry)
        if result.events:
            batch.extend(result.events)
        for skip in result.skipped:
            skipped[skip.code] += 1
        if len(batch) >= BATCH_SIZE:
            summary.events += len(batch)
            summary.recorded += store.record(batch)
            batch = []
    if batch:
        summary.events += len(batch)
        summary.recorded += store.record(batch)
    return summary


def ingest(store: PullStore, paths: Iterable[str]) -> IngestSummary:
    """Read every file (``-`` for stdin) into the store.

    JSON lines into a store that loads CSV files of events (DuckDB) are parsed by worker
    processes when the input is larger than one task and the machine has a second core:
    a plain file in byte ranges of :data:`TASK_BYTES` that the workers read themselves,
    stdin, gzip and small files in lists of :data:`TASK_LINES` lines that may span
    files; the store records their files in input order.  Anything else is parsed here,
    as it is read.
    """
    paths = list(paths)
    _check_inputs(paths)
    summary = IngestSummary()
    # One bulk load for all the files: its closing checkpoint costs a rewrite of the
    # store, so once per file made 400 small files take twice as long.
    bulk = store.bulk_load() if hasattr(store, "bulk_load") else nullcontext()
    with bulk:
        if _parallel(store):
            # closing: on an error, the file the tasks were being read from is closed now
            with closing(_tasks(paths)) as tasks:
                _ingest_parallel(store, tasks, summary)
            return summary
        for path in paths:
            with open_input(path) as stream:
                ingest_entries(store, read_entries(stream), summary)
    return summary


def _check_inputs(paths: list[str]) -> None:
    """Fail before reading anything when an input cannot be opened, rather than after
    earlier files were read (their lines may still be waiting for a worker)."""
    if paths.count("-") > 1:
        raise ValueError("standard input ('-') can be read only once")
    for path in paths:
        if path == "-":
            continue
        mode = os.stat(path).st_mode  # FileNotFoundError names the path
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "a directory, not a log file", path)
        if stat.S_ISREG(mode):  # not a pipe (<(zcat …)): opening one takes its data
            with open(path, "rb"):
                pass


#: Bytes of a plain file (about 5,000 entries) or lines of other input that a worker
#: parses into one file for the store, and files the store loads in one statement
#: (about 20,000 events, as BATCH_SIZE): small tasks keep the workers' memory small.
TASK_BYTES = 4 << 20
TASK_LINES = 5_000
LOAD_FILES = 4
#: Worker processes; the main process loads their files meanwhile.
WORKERS = 2
#: Tasks handed out ahead, so the workers keep parsing while the main process loads
#: (with only WORKERS in flight they idled during each load: about 15% slower).
IN_FLIGHT = 3 * WORKERS
_HEAD_CHARS = 1 << 20


def _parallel(store: PullStore) -> bool:
    return hasattr(store, "record_events_csv") and WORKERS > 1 and (os.cpu_count() or 1) > 1


def _plain_file(path: str) -> bool:
    """A regular file that a worker process can open by its name.  ``/dev/fd/N``,
    ``/dev/stdin`` and ``/proc/…/fd/N`` name this process's descriptors, which a worker
    does not have (its own descriptor N would be something else), so they are read here
    and handed out as lines."""
    if path == "-" or path.endswith(".gz"):
        return False
    absolute = os.path.abspath(path)
    return not absolute.startswith(("/dev/", "/proc/")) and os.path.isfile(absolute)


@dataclass
class _InProcess:
    """Entries of a file that is not JSON lines (a ``gcloud logging read`` array): they
    are parsed here, once every task before them is in the store."""

    entries: Iterator[Any]


#: A task for a worker: a list of lines, or a byte range (path, start, end, identity)
#: of a file.
_Task = list[str] | tuple[str, int, int, FileIdentity]


def _tasks(paths: Iterable[str]) -> Generator[_Task | _InProcess, None, None]:
    """The tasks of all the files in order.  Lines of files too small for byte ranges
    gather into tasks of TASK_LINES across files, so 400 hourly exports of 1,000 entries
    keep both workers busy instead of being parsed here one by one."""
    lines: list[str] = []
    for path in paths:
        with open_input(path) as stream:
            head = stream.read(_HEAD_CHARS)
            array = head.lstrip().startswith("[")
            ranges = not array and _plain_file(path) and os.path.getsize(path) > TASK_BYTES
            if (array or ranges) and lines:
                yield lines
                lines = []
            if array:
                yield _InProcess(read_entries(stream, head))
            elif ranges:
                yield from _file_ranges(path)
            else:
                for block in line_blocks(stream, head):
                    lines.extend(block)
                    if len(lines) >= TASK_LINES:
                        yield lines
                        lines = []
    if lines:
        yield lines


def _file_ranges(path: str) -> Iterator[_Task]:
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


def _ingest_parallel(
    store: Any, tasks: Iterator[_Task | _InProcess], summary: IngestSummary
) -> None:
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

    def submit(task: _Task) -> Future[ChunkResult]:
        assert pool is not None
        if isinstance(task, tuple):
            return pool.submit(parse_range, *task, fields)
        return pool.submit(parse_lines, task, fields)

    try:
        for task in tasks:
            if isinstance(task, _InProcess):
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


def rank_sink_table(
    table: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    third_party_only: bool = False,
    limit: int | None = 20,
) -> tuple[list[ImageRanking], IngestSummary]:
    """The ranking over a log sink's tables (``PROJECT.DATASET.events_*``)."""
    from armirror.store.bigquery import read_sink_entries
    from armirror.store.duckdb import DuckDBStore

    with DuckDBStore(":memory:") as scratch:
        summary = ingest_entries(scratch, read_sink_entries(table, since=since, until=until))
        ranking = scratch.top_images(since, until, third_party_only, limit)
    return ranking, summary
