"""The part of ``armirror pulls`` that runs in worker processes: JSON lines -> a CSV file
of pull events that the DuckDB store loads in one statement.

It imports only :mod:`armirror.events` (not DuckDB), so a worker starts in a tenth of a
second.  The file has the layout of :meth:`DuckDBStore.record_events_csv`: one row an
event, the given attributes in order, None as an empty field.
"""

from __future__ import annotations

import csv
import operator
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from typing import IO

from armirror.events import PullEvent, Skip, decode_line, parse_log_entry

__all__ = ["ChunkResult", "parse_lines", "write_events_csv"]

#: (entries read, skips by code, events found, path of the CSV file or None if no events)
ChunkResult = tuple[int, dict[str, int], int, str | None]


def write_events_csv(handle: IO[str], events: Sequence[PullEvent], fields: Sequence[str]) -> None:
    """Events as CSV rows of their ``fields`` (None is an empty field), at C speed."""
    csv.writer(handle).writerows(map(operator.attrgetter(*fields), events))


def parse_lines(lines: Sequence[str], fields: Sequence[str]) -> ChunkResult:
    """Parse JSON lines (blank ones are ignored, as :func:`read_entries` does) and write
    their events, one per insert_id (the last, as ``PullStore.record`` keeps), to a
    temporary CSV file that the caller loads and removes."""
    entries = 0
    found = 0
    skipped: Counter[str] = Counter()
    unique: dict[str, PullEvent] = {}
    for line in lines:
        if not line or line.isspace():
            continue
        entries += 1
        entry = decode_line(line)
        if isinstance(entry, Skip):
            skipped[entry.code] += 1
            continue
        result = parse_log_entry(entry)
        for event in result.events:
            unique[event.insert_id] = event
        found += len(result.events)
        for skip in result.skipped:
            skipped[skip.code] += 1
    if not unique:
        return entries, dict(skipped), found, None
    fd, name = tempfile.mkstemp(prefix="armirror-", suffix=".csv")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            write_events_csv(handle, list(unique.values()), fields)
    except BaseException:
        os.unlink(name)
        raise
    return entries, dict(skipped), found, name
