"""Log entries into a pull store in the process, in batches, so memory stays flat however
large the input: what ``armirror pulls`` does where worker processes do not
(:mod:`armirror.ingest_pool`), and what ranking a sink table does."""

from __future__ import annotations

import gzip
import io
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from armirror.events import PullEvent, Skip, parse_log_entry
from armirror.store import PullStore

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
