"""``armirror pulls``: exported logs -> the pull store -> a ranking of images.

:func:`ingest` streams exported log files (a ``gcloud logging read --format=json``
array, JSON lines, or a BigQuery sink table's newline-delimited export, plain or gzip)
through :mod:`armirror.events` into a store in batches, so memory stays flat however
large the file.  :func:`rank_sink_table` ranks straight from a log sink's own BigQuery
tables: it parses their rows with the same parser into a throwaway in-memory store.
Entries are parsed in this process by :mod:`armirror.ingest`, or in worker processes
by :mod:`armirror.ingest_pool`.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from contextlib import closing, nullcontext
from datetime import datetime

from armirror import ingest_pool
from armirror.events import read_entries
from armirror.ingest import IngestSummary, ingest_entries, open_input
from armirror.store import ImageRanking, PullStore

__all__ = ["IngestSummary", "ingest", "rank_sink_table"]


def ingest(store: PullStore, paths: Iterable[str]) -> IngestSummary:
    """Read every file (``-`` for stdin) into the store.

    JSON lines into a store that loads CSV files of events (DuckDB) are parsed by worker
    processes when the input is larger than one task and the machine has a second core:
    a plain file in byte ranges of :data:`~armirror.ingest_pool.TASK_BYTES` that the
    workers read themselves, stdin, gzip and small files in lists of
    :data:`~armirror.ingest_pool.TASK_LINES` lines that may span files; the store
    records their files in input order.  Anything else is parsed here,
    as it is read.
    """
    paths = list(paths)
    _check_inputs(paths)
    summary = IngestSummary()
    # One bulk load for all the files: its closing checkpoint costs a rewrite of the
    # store, so once per file made 400 small files take twice as long.
    bulk = store.bulk_load() if hasattr(store, "bulk_load") else nullcontext()
    with bulk:
        if ingest_pool.parallel(store):
            # closing: on an error, the file the tasks were being read from is closed now
            with closing(ingest_pool.tasks(paths)) as tasks:
                ingest_pool.ingest_parallel(store, tasks, summary)
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
