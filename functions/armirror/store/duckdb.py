"""The embedded pull store: one DuckDB file with the BigQuery tables and views.

Tables come from the BigQuery JSON schemas with DuckDB types and a primary key (insert_id,
copy_id); views are the GoogleSQL files transpiled by sqlglot.  One connection, guarded
by a lock, serves every thread (the local queue's workers record copies while events
arrive).  To add a table (the local queue's pending jobs, say): add its schema file, or
create it in :meth:`DuckDBStore._create` beside the others.

DuckDB takes many rows fastest from a file, so large batches travel through a temporary
CSV file; small ones (a Pub/Sub message's worth) through one multi-row INSERT.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from armirror.events import PullEvent, first_by_insert_id, fit_event
from armirror.ingest_worker import write_events_csv
from armirror.store import RedeployRecord, StoreError
from armirror.store.queries import Queries, ViewReads
from armirror.store.tables import (
    KEYS,
    columns,
    copy_row,
    duckdb_create_table,
    event_row,
    redeploy_row,
    render_duckdb,
    table_schemas,
    view_templates,
)

if TYPE_CHECKING:
    from armirror.registry.copy import CopyResult

#: Batches up to this many rows go in one INSERT; larger ones through a CSV file.
SMALL_BATCH = 256
_CSV_TYPES = {
    "STRING": "VARCHAR",
    "INTEGER": "BIGINT",
    "INT64": "BIGINT",
    "FLOAT": "DOUBLE",
    "FLOAT64": "DOUBLE",
    "BOOLEAN": "BOOLEAN",
    "BOOL": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
    "DATE": "DATE",
}


#: DuckDB's memory limit for the embedded store.
MEMORY_LIMIT = "128MB"
#: The write-ahead log may grow to this during :meth:`DuckDBStore.bulk_load`.
BULK_CHECKPOINT_THRESHOLD = "1GB"


def _create_whole(path: Path) -> None:
    """Make a missing (or empty) database file appear whole, in one step.

    DuckDB creates a file, then locks it, then writes its header.  A second process that
    opens the file in between may lock it first and find zero bytes: it fails with "not
    a valid DuckDB database", and so does every open after it, for the file stays empty.
    Two `armirror copy` runs started together did that to the default store.  So a new
    database is made under a temporary name and linked into place (link refuses to
    replace, so the first process wins and the others use its file); an empty file left
    by an older version or a crash is replaced, as it holds nothing.
    """
    try:
        if path.stat().st_size > 0:
            return
        empty = True
    except FileNotFoundError:
        empty = False
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as scratch:
        made = Path(scratch) / path.name
        duckdb.connect(str(made)).close()
        if empty:
            os.replace(made, path)
            return
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(made, path)


class DuckDBStore(ViewReads):
    """A :class:`~armirror.store.PullStore` in a DuckDB file (or ``":memory:"``)."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _create_whole(Path(path))
        try:
            self._con = duckdb.connect(str(path))
        except duckdb.IOException as exc:
            raise StoreError(
                f"cannot open {path}: {exc} (is another armirror process using it?)"
            ) from exc
        self._lock = threading.RLock()
        self._pending: list[_Ticket] = []  # small writes waiting for the next INSERT
        self._pending_lock = threading.Lock()
        self._queries = Queries("duckdb")
        self._con.execute("SET TimeZone = 'UTC'")
        # DuckDB's buffer pool defaults to 80% of RAM; a laptop tool should not take
        # that. Past this it spills to disk: a 500,000-entry ingest peaks near 250 MB
        # instead of 330 MB, at the same speed.
        self._con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        self._create()

    # -- setup ---------------------------------------------------------------------------

    def _create(self) -> None:
        with self._lock:
            for table in table_schemas():
                self._con.execute(duckdb_create_table(table))
            for name, template in view_templates().items():
                self._con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {render_duckdb(template)}')

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    def _count(self, table: str) -> int:
        row = self._con.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()
        return int(row[0]) if row else 0

    def _insert(self, table: str, rows: Sequence[dict[str, Any]]) -> int:
        """INSERT OR IGNORE rows (unique by key within the batch); returns rows added.

        Small batches from concurrent callers are combined: each caller queues its rows,
        and whoever holds the lock next writes every queued batch in one INSERT, because
        DuckDB spends about 3 ms on each INSERT into a keyed table whatever its size.
        Each caller still returns only once its rows are committed, and learns how many
        of them were new.
        """
        if not rows:
            return 0
        if len(rows) > SMALL_BATCH:
            names = [c.name for c in columns(table)]
            quoted = ", ".join(f'"{n}"' for n in names)
            with self._lock:  # an INSERT answers with the rows it added
                added = self._insert_csv(table, names, quoted, rows)
            return int(added[0]) if added else 0
        ticket = _Ticket(table, rows)
        with self._pending_lock:
            self._pending.append(ticket)
        with self._lock:
            if not ticket.done:
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                self._write_batch(batch)
        if ticket.error is not None:
            raise ticket.error
        return ticket.added

    def _write_batch(self, batch: list[_Ticket]) -> None:
        """Write queued tickets (lock held): per table, one key lookup and one INSERT."""
        by_table: dict[str, list[_Ticket]] = {}
        for ticket in batch:
            by_table.setdefault(ticket.table, []).append(ticket)
        for table, tickets in by_table.items():
            try:
                self._write_table(table, tickets)
            except Exception:
                # Let each caller meet its own fault: write the batches one by one.
                for ticket in tickets:
                    try:
                        self._write_table(table, [ticket])
                    except Exception as exc:
                        ticket.error = exc
                        ticket.done = True

    def _write_table(self, table: str, tickets: list[_Ticket]) -> None:
        key = KEYS[table]
        keys = list(dict.fromkeys(row[key] for t in tickets for row in t.rows))
        marks = ", ".join("?" * len(keys))
        existing = {
            row[0]
            for row in self._con.execute(
                f'SELECT "{key}" FROM "{table}" WHERE "{key}" IN ({marks})', keys
            ).fetchall()
        }
        fresh: list[dict[str, Any]] = []
        counts: list[int] = []
        for ticket in tickets:  # the first caller to bring a key adds it, as before
            new = [row for row in ticket.rows if row[key] not in existing]
            existing.update(row[key] for row in new)
            fresh.extend(new)
            counts.append(len(new))
        if fresh:
            names = [c.name for c in columns(table)]
            quoted = ", ".join(f'"{n}"' for n in names)
            row_marks = "(" + ", ".join("?" * len(names)) + ")"
            self._con.execute(
                f'INSERT OR IGNORE INTO "{table}" ({quoted}) VALUES '
                + ", ".join([row_marks] * len(fresh)),
                [row[n] for row in fresh for n in names],
            )
        for ticket, count in zip(tickets, counts, strict=True):
            ticket.added, ticket.done = count, True

    def _insert_csv(
        self, table: str, names: list[str], quoted: str, rows: Sequence[dict[str, Any]]
    ) -> tuple[Any, ...] | None:
        types = {c.name: _CSV_TYPES[c.type] for c in columns(table)}
        fd, name = tempfile.mkstemp(prefix="armirror-", suffix=".csv")
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
                # Every value quoted, None an unquoted empty field: no text (not "", not
                # \N) can be read back as NULL.  One line ending, "\n", which DuckDB
                # is told: left to guess, it may take "\n" inside a quoted value for the
                # line ending and then refuse the file's "\r\n".  Datetimes and booleans
                # go as Python writes them, which DuckDB reads as TIMESTAMPTZ and BOOLEAN.
                writer = csv.writer(handle, quoting=csv.QUOTE_NOTNULL, lineterminator="\n")
                writer.writerows([row[n] for n in names] for row in rows)
            spec = ", ".join(f"'{n}': '{types[n]}'" for n in names)
            return self._con.execute(
                f'INSERT OR IGNORE INTO "{table}" ({quoted}) SELECT {quoted} FROM read_csv(?, '
                f"header = false, delim = ',', quote = '\"', escape = '\"', new_line = '\\n', "
                "nullstr = '', allow_quoted_nulls = false, auto_detect = false, "
                f"columns = {{{spec}}})",
                [name],
            ).fetchone()
        finally:
            os.unlink(name)

    def record(self, events: Iterable[PullEvent]) -> int:
        now = datetime.now(UTC)
        unique = first_by_insert_id(events)
        try:
            if len(unique) > SMALL_BATCH:
                return self._record_many(unique, now)
            return self._insert("pull_events", [event_row(e, now) for e in unique])
        except duckdb.Error as exc:
            raise StoreError(f"recording pull events: {exc}") from exc

    def _record_many(self, events: list[PullEvent], now: datetime) -> int:
        """Many events through a CSV file written at C speed (see
        :meth:`record_events_csv`); a value that does not fit its column is None, as
        :func:`~armirror.store.tables.event_row` makes it for one INSERT."""
        fd, name = tempfile.mkstemp(prefix="armirror-", suffix=".csv")
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
                fitted = [fit_event(event) for event in events]
                write_events_csv(handle, fitted, self.event_csv_fields())
            return self.record_events_csv(name, now)
        finally:
            os.unlink(name)

    @contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Defer DuckDB's checkpoints to the end of a run of loads.  Each load still
        commits (to the write-ahead log), so a failed ingest keeps what it loaded; but
        DuckDB no longer rewrites the file and its primary-key index each time the log
        passes 16 MB, which cost a quarter of a 500,000-entry ingest."""
        with self._lock:
            self._con.execute(f"SET checkpoint_threshold = '{BULK_CHECKPOINT_THRESHOLD}'")
        loaded = False
        try:
            yield
            loaded = True
        finally:
            try:
                with self._lock:
                    self._con.execute("RESET checkpoint_threshold")
                    if self.path != ":memory:":
                        self._con.execute("CHECKPOINT")
            except duckdb.Error as exc:
                if loaded:  # else the load's own error is the one to tell
                    raise StoreError(
                        f"DuckDB {self.path}: checkpoint after loading: {exc}"
                    ) from exc

    @staticmethod
    def event_csv_fields() -> list[str]:
        """The columns of a file for :meth:`record_events_csv`, in order."""
        return [c.name for c in columns("pull_events") if c.name != "recorded_at"]

    def record_events_csv(
        self,
        path: str | list[str],
        now: datetime | None = None,
        *,
        later_copies: Sequence[tuple[str, str]] | None = None,
    ) -> int:
        """Load CSV files of events (``ingest_worker.write_events_csv`` with
        :meth:`event_csv_fields`: None is an empty field, and no event field is ever an
        empty string) in one statement; recorded_at is one constant.  Returns the rows
        added.

        Of events with the same insert_id, the first is kept: the row already stored,
        else the one of the earliest file.  A file holds one per insert_id, but INSERT OR
        IGNORE keeps an arbitrary one of a statement's duplicates.  So a caller that knows
        the files' insert_ids names the rows to leave out, ``later_copies`` (path,
        insert_id) of an insert_id an earlier file has, which costs nothing; without
        them, the rows are ordered by file first, which costs a quarter of the load."""
        now = now or datetime.now(UTC)
        paths = [path] if isinstance(path, str) else list(path)
        names = [c.name for c in columns("pull_events")]
        fields = [n for n in names if n != "recorded_at"]
        types = {c.name: _CSV_TYPES[c.type] for c in columns("pull_events")}
        spec = ", ".join(f"'{n}': '{types[n]}'" for n in fields)
        select = ", ".join(
            "CAST(? AS TIMESTAMPTZ)" if n == "recorded_at" else f'"{n}"' for n in names
        )
        quoted = ", ".join(f'"{n}"' for n in names)
        keep_first, parameters = "", [now.isoformat(), paths]
        if later_copies:
            keep_first = (
                " AS r ANTI JOIN (SELECT unnest(?) AS path, unnest(?) AS id) AS later"
                " ON r.filename = later.path AND r.insert_id = later.id"
            )
            parameters += [[p for p, _ in later_copies], [i for _, i in later_copies]]
        elif later_copies is None and len(paths) > 1:
            keep_first = (
                " QUALIFY row_number() OVER"
                " (PARTITION BY insert_id ORDER BY list_position(?, filename)) = 1"
            )
            parameters.append(paths)
        try:
            with self._lock:
                before = self._count("pull_events")
                self._con.execute(
                    f'INSERT OR IGNORE INTO "pull_events" ({quoted}) SELECT {select} FROM '
                    "read_csv(?, header = false, delim = ',', quote = '\"', escape = '\"', "
                    f"nullstr = '', auto_detect = false, columns = {{{spec}}}, "
                    f"filename = true){keep_first}",
                    parameters,
                )
                return self._count("pull_events") - before
        except duckdb.Error as exc:
            raise StoreError(f"recording pull events: {exc}") from exc

    def record_copy(self, result: CopyResult) -> None:
        self.record_copies([result])

    def record_copies(self, results: Iterable[CopyResult]) -> None:
        rows = [copy_row(r) for r in results]
        if not rows:
            return
        try:
            self._insert("copies", rows)  # one INSERT: each costs DuckDB ~20 ms
        except duckdb.Error as exc:
            raise StoreError(f"recording copies: {exc}") from exc

    def record_redeploys(self, records: Iterable[RedeployRecord]) -> None:
        try:
            self._insert("redeploys", [redeploy_row(r) for r in records])
        except duckdb.Error as exc:
            raise StoreError(f"recording redeploys: {exc}") from exc

    def _insert_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        try:
            self._insert(table, rows)
        except duckdb.Error as exc:
            raise StoreError(f"recording {table}: {exc}") from exc

    # -- reading -------------------------------------------------------------------------

    def _rows(self, sql: str) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._con.execute(sql)
            names = [d[0] for d in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def count_rows(self, table: str) -> int:
        """Rows in a table (for tests and the benchmark)."""
        if table not in KEYS:
            raise ValueError(table)
        with self._lock:
            return self._count(table)

    # -- the local queue's journal (queue.local.JobJournal) ------------------------------
    # Only the embedded store keeps pending jobs: in the cloud, Cloud Tasks holds them.

    def _jobs_table(self) -> None:
        self._con.execute(
            "CREATE TABLE IF NOT EXISTS pending_jobs "
            "(job_id VARCHAR PRIMARY KEY, job VARCHAR NOT NULL, queued_at TIMESTAMPTZ)"
        )

    def add_pending_job(self, job_id: str, job: dict[str, Any]) -> None:
        with self._lock:
            self._jobs_table()
            self._con.execute(
                "INSERT OR IGNORE INTO pending_jobs VALUES (?, ?, now())",
                [job_id, json.dumps(job)],
            )

    def remove_pending_job(self, job_id: str) -> None:
        with self._lock:
            self._jobs_table()
            self._con.execute("DELETE FROM pending_jobs WHERE job_id = ?", [job_id])

    def pending_jobs(self) -> list[dict[str, Any]]:
        with self._lock:
            self._jobs_table()
            rows = self._con.execute("SELECT job FROM pending_jobs ORDER BY queued_at").fetchall()
        return [json.loads(row[0]) for row in rows]


class _Ticket:
    """One caller's small batch, waiting to be written with others'."""

    __slots__ = ("added", "done", "error", "rows", "table")

    def __init__(self, table: str, rows: Sequence[dict[str, Any]]) -> None:
        self.table = table
        first: dict[Any, dict[str, Any]] = {}
        for row in rows:  # a key repeated in one batch keeps its first row, as INSERT OR IGNORE
            first.setdefault(row[KEYS[table]], row)
        self.rows = list(first.values())
        self.added = 0
        self.done = False
        self.error: Exception | None = None
