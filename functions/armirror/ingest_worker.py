"""The part of ``armirror pulls`` that runs in worker processes: JSON lines -> a CSV file
of pull events that the DuckDB store loads in one statement.

A worker takes its lines either as a list (stdin, gzip) or as a byte range of a plain
file that it reads itself, so that the main process neither reads nor pickles them.

It imports only :mod:`armirror.events` (not DuckDB), so a worker starts in a tenth of a
second.  The file has the layout of :meth:`DuckDBStore.record_events_csv`: one row an
event, the given attributes in order, None as an empty field.
"""

from __future__ import annotations

import codecs
import csv
import operator
import os
import tempfile
from collections import Counter
from collections.abc import Sequence
from typing import IO

from armirror.events import (
    PullEvent,
    Skip,
    decode_line,
    first_by_insert_id,
    line_blocks,
    parse_log_entry,
)

__all__ = [
    "ChunkResult",
    "FileIdentity",
    "file_identity",
    "line_boundary",
    "parse_lines",
    "parse_range",
    "write_events_csv",
]

#: (entries read, skips by code, events found, path of the CSV file or None if no events,
#: the insert_ids in the file)
ChunkResult = tuple[int, dict[str, int], int, str | None, frozenset[str]]


def write_events_csv(handle: IO[str], events: Sequence[PullEvent], fields: Sequence[str]) -> None:
    """Events as CSV rows of their ``fields`` (None is an empty field), at C speed.  An
    event is a tuple of its fields, so when ``fields`` are all of them in order (as the
    store's are) it is written as it is."""
    if tuple(fields) == PullEvent._fields:
        csv.writer(handle).writerows(events)
    else:
        csv.writer(handle).writerows(map(operator.attrgetter(*fields), events))


def parse_lines(lines: Sequence[str], fields: Sequence[str]) -> ChunkResult:
    """Parse JSON lines (blank ones are ignored, as :func:`read_entries` does) and write
    their events, the first per insert_id (as ``PullStore.record`` keeps), to a
    temporary CSV file that the caller loads and removes."""
    entries = 0
    found = 0
    skipped: Counter[str] = Counter()
    events: list[PullEvent] = []
    for line in lines:
        if not line or line.isspace():
            continue
        entries += 1
        entry = decode_line(line)
        if isinstance(entry, Skip):
            skipped[entry.code] += 1
            continue
        result = parse_log_entry(entry)
        events.extend(result.events)
        found += len(result.events)
        for skip in result.skipped:
            skipped[skip.code] += 1
    unique = first_by_insert_id(events)
    if not unique:
        return entries, dict(skipped), found, None, frozenset()
    fd, name = tempfile.mkstemp(prefix="armirror-", suffix=".csv")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            write_events_csv(handle, unique, fields)
    except BaseException:
        os.unlink(name)
        raise
    return entries, dict(skipped), found, name, frozenset(e.insert_id for e in unique)


_READ = 1 << 20


class _RangeText:
    """The text of bytes ``[start, end)`` of a file, read a chunk at a time (what
    :func:`~armirror.events.line_blocks` needs of a stream: ``read(n)``)."""

    def __init__(self, handle: IO[bytes], start: int, end: int) -> None:
        handle.seek(start)
        self._handle = handle
        self._left = end - start
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read(self, size: int) -> str:
        if self._left <= 0:
            return ""
        data = self._handle.read(min(size, self._left))
        if not data:
            raise OSError(f"{self._handle.name}: the file shrank while being read")
        self._left -= len(data)
        return self._decoder.decode(data, final=self._left <= 0)


#: What identifies a file across processes: (st_dev, st_ino).
FileIdentity = tuple[int, int]


def file_identity(handle: IO[bytes]) -> FileIdentity:
    status = os.fstat(handle.fileno())
    return status.st_dev, status.st_ino


def parse_range(
    path: str,
    start: int,
    end: int,
    identity: FileIdentity | None,
    fields: Sequence[str],
) -> ChunkResult:
    """:func:`parse_lines` for the lines in bytes ``[start, end)`` of ``path``, which
    :func:`line_boundary` put at line starts.  An endless line is cut as
    :func:`~armirror.events.line_blocks` cuts it, so memory stays bounded.

    ``identity`` is the file the main process measured: a file renamed away and
    replaced under ``path`` (log rotation), or cut shorter than ``end``, is an OSError
    rather than other lines or fewer of them."""
    with open(path, "rb") as handle:
        if identity is not None and file_identity(handle) != identity:
            raise OSError(f"{path}: the file was replaced while being read")
        lines = [line for block in line_blocks(_RangeText(handle, start, end)) for line in block]
    return parse_lines(lines, fields)


def line_boundary(handle: IO[bytes], offset: int) -> int:
    """The start of the first line that begins at or after ``offset`` (the file's end if
    none does); reads a chunk at a time, so a huge line costs no memory."""
    if offset <= 0:
        return 0
    handle.seek(offset - 1)
    position = offset - 1
    while True:
        chunk = handle.read(_READ)
        if not chunk:
            return min(position, handle.seek(0, os.SEEK_END))
        newline = chunk.find(b"\n")
        if newline >= 0:
            return position + newline + 1
        position += len(chunk)
