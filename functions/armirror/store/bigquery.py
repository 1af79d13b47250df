"""The pull store in BigQuery (google-cloud-bigquery).

With ``create=True`` (the CLI, the emulator) opening the store creates what is missing:
the dataset, the tables from the schema files (``pull_events`` partitioned by day on
``event_time`` and clustered by registry and repository, as Terraform does), and the
views.  With ``create=False`` (the deployed functions) it never creates anything: in the
cloud the tables and views come only from Terraform, and the functions' accounts may
only write and read the tables they use.  Opening then makes no call at all (request_copy
never touches the store), a missing table is a :class:`StoreError` that says so, and
:meth:`BigQueryStore.check` verifies they all exist.

Events go in with streaming inserts whose row_ids are the insert_ids; BigQuery drops a
repeat that arrives within about a minute, and the views keep one row per insert_id for
the rest, so a redelivered message never counts twice.

``BIGQUERY_EMULATOR_HOST=http://127.0.0.1:PORT`` (the client library's own variable)
sends everything to a local emulator without credentials.

This module is the one place the BigQuery SDK is imported.  It also reads a log sink's
own tables (:func:`read_sink_entries`) for ``armirror pulls --sink-table``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from armirror.events import PullEvent, first_by_insert_id
from armirror.store import RedeployRecord, StoreError
from armirror.store.queries import Queries, ViewReads
from armirror.store.tables import (
    KEYS,
    LAYOUT,
    copy_row,
    event_row,
    redeploy_row,
    render_bigquery,
    table_schemas,
    view_templates,
)

if TYPE_CHECKING:
    from armirror.registry.copy import CopyResult

_FROM_TERRAFORM = (
    "in the cloud the tables and views come only from Terraform (terraform/modules/armirror: "
    "apply it); the store checks for them and never creates them there"
)

#: Rows per insertAll request (BigQuery recommends at most 500).
INSERT_BATCH = 500


def make_client(project: str, location: str | None = None) -> bigquery.Client:
    """A client for ``project``; with BIGQUERY_EMULATOR_HOST set, anonymous (the client
    itself sends its requests to the emulator that variable names)."""
    if os.environ.get("BIGQUERY_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return bigquery.Client(
            project=project, location=location, credentials=AnonymousCredentials()
        )
    return bigquery.Client(project=project, location=location)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


class BigQueryStore(ViewReads):
    """A :class:`~armirror.store.PullStore` in dataset ``project.dataset``."""

    def __init__(
        self,
        project: str,
        dataset: str,
        *,
        location: str | None = None,
        client: bigquery.Client | None = None,
        create: bool = True,
    ) -> None:
        self.project = project
        self.dataset = dataset
        self.client = client or make_client(project, location)
        self.location = location
        self._queries = Queries("bigquery", project, dataset)
        self.create = create
        if create:
            self.ensure()

    def _table_id(self, name: str) -> str:
        return f"{self.project}.{self.dataset}.{name}"

    # -- setup ---------------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the dataset, tables and views when missing (views are replaced)."""
        try:
            for name in table_schemas():
                self.client.get_table(self._table_id(name))
            views_present = all(self._exists(self._table_id(name)) for name in view_templates())
            if views_present:
                return
        except api_exceptions.NotFound:
            pass
        try:
            dataset = bigquery.Dataset(f"{self.project}.{self.dataset}")
            if self.location:
                dataset.location = self.location
            self.client.create_dataset(dataset, exists_ok=True)
            for name, fields in table_schemas().items():
                table = bigquery.Table(
                    self._table_id(name),
                    schema=[bigquery.SchemaField.from_api_repr(f) for f in fields],
                )
                layout = LAYOUT.get(name)
                if layout:
                    table.time_partitioning = bigquery.TimePartitioning(
                        type_=bigquery.TimePartitioningType.DAY, field=layout["partition_field"]
                    )
                    table.clustering_fields = list(layout["clustering"])
                self.client.create_table(table, exists_ok=True)
            for name, template in view_templates().items():
                view = bigquery.Table(self._table_id(name))
                view.view_query = render_bigquery(template, self.project, self.dataset)
                self.client.delete_table(view, not_found_ok=True)
                self.client.create_table(view)
        except api_exceptions.GoogleAPICallError as exc:
            raise StoreError(f"creating {self.project}.{self.dataset}: {exc}") from exc

    def check(self) -> None:
        """Raise :class:`StoreError` naming every table or view that does not exist."""
        names = [*table_schemas(), *view_templates()]
        try:
            missing = [name for name in names if not self._exists(self._table_id(name))]
        except api_exceptions.GoogleAPICallError as exc:
            raise StoreError(f"checking {self.project}.{self.dataset}: {exc}") from exc
        if missing:
            raise StoreError(
                f"{self.project}.{self.dataset} lacks {', '.join(missing)}: {_FROM_TERRAFORM}"
            )

    def _missing(self, what: str, exc: api_exceptions.NotFound) -> StoreError:
        if self.create:
            return StoreError(f"{what}: {exc}")
        return StoreError(f"{what}: not found ({exc.message}): {_FROM_TERRAFORM}")

    def _exists(self, table_id: str) -> bool:
        try:
            self.client.get_table(table_id)
            return True
        except api_exceptions.NotFound:
            return False

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> BigQueryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------

    def _insert(self, table: str, rows: list[dict[str, Any]]) -> int:
        key = KEYS[table]
        for start in range(0, len(rows), INSERT_BATCH):
            batch = rows[start : start + INSERT_BATCH]
            try:
                errors = self.client.insert_rows_json(
                    self._table_id(table),
                    [{k: _json_value(v) for k, v in row.items()} for row in batch],
                    row_ids=[row[key] for row in batch],
                )
            except api_exceptions.NotFound as exc:
                raise self._missing(f"inserting into {table}", exc) from exc
            except api_exceptions.GoogleAPICallError as exc:
                raise StoreError(f"inserting into {table}: {exc}") from exc
            if errors:
                raise StoreError(f"inserting into {table}: {str(errors)[:500]}")
        return len(rows)

    def record(self, events: Iterable[PullEvent]) -> int:
        now = datetime.now(UTC)
        unique = first_by_insert_id(events)
        return self._insert("pull_events", [event_row(e, now) for e in unique])

    def record_copy(self, result: CopyResult) -> None:
        self._insert("copies", [copy_row(result)])

    def record_copies(self, results: Iterable[CopyResult]) -> None:
        rows = [copy_row(r) for r in results]
        if rows:
            self._insert("copies", rows)

    def record_redeploys(self, records: Iterable[RedeployRecord]) -> None:
        self._insert("redeploys", [redeploy_row(r) for r in records])

    def _insert_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        self._insert(table, rows)

    # -- reading -------------------------------------------------------------------------

    def _rows(self, sql: str) -> list[dict[str, Any]]:
        try:
            return [dict(row.items()) for row in self.client.query_and_wait(sql)]
        except api_exceptions.NotFound as exc:
            raise self._missing("query failed", exc) from exc
        except api_exceptions.GoogleAPICallError as exc:
            raise StoreError(f"query failed: {exc}") from exc


# -- a log sink's own tables ---------------------------------------------------------------

_SINK_TABLE_RE = re.compile(r"^(?P<project>[\w.:-]+)\.(?P<dataset>\w+)\.(?P<table>[\w*]+)$")


def read_sink_entries(
    table: str, *, since: datetime | None = None, until: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Stream the kubelet entries of a log sink's BigQuery tables.

    ``table`` is ``PROJECT.DATASET.events_*`` for date-sharded tables (the default sink
    layout; the shards outside [since, until) are not read) or ``PROJECT.DATASET.TABLE``
    for a partitioned one.  Only rows whose message mentions an image (as the sink filter
    selects) are read, and only the columns the parser needs.  Rows come back in the
    sink's layout (lower-cased payload fields), which
    :func:`armirror.events.parse_log_entry` reads as it reads a LogEntry.
    """
    project, sql = sink_query(table, since=since, until=until)
    client = make_client(project)
    try:
        for row in client.query_and_wait(sql):
            entry = dict(row.items())
            entry["timestamp"] = _json_value(entry.get("timestamp"))
            yield entry
    except api_exceptions.GoogleAPICallError as exc:
        raise StoreError(f"reading {table}: {exc}") from exc
    finally:
        client.close()


def sink_query(
    table: str, *, since: datetime | None = None, until: datetime | None = None
) -> tuple[str, str]:
    """(project, GoogleSQL) reading :func:`read_sink_entries`'s rows; ``ValueError`` for
    a table name that is not one.  BigQuery names each result column as the query spells
    it, so the select list spells them as a LogEntry does."""
    match = _SINK_TABLE_RE.match(table)
    if not match:
        raise ValueError(
            f"expected PROJECT.DATASET.TABLE or PROJECT.DATASET.PREFIX_*, got {table!r}"
        )
    project, dataset, name = match["project"], match["dataset"], match["table"]
    if "*" in name[:-1]:
        raise ValueError(f"a wildcard may only end the table name: {table!r}")
    conditions = ["jsonPayload.message LIKE '%image%'"]
    for column, op, value in (("timestamp", ">=", since), ("timestamp", "<", until)):
        if value is not None:
            conditions.append(f"{column} {op} TIMESTAMP '{value.astimezone(UTC).isoformat()}'")
    if name.endswith("*"):
        # Shards are named PREFIX_YYYYMMDD: skip whole days outside the window.
        if since is not None:
            conditions.append(f"_TABLE_SUFFIX >= '{since.astimezone(UTC):%Y%m%d}'")
        if until is not None:
            conditions.append(f"_TABLE_SUFFIX <= '{until.astimezone(UTC):%Y%m%d}'")
    sql = (
        "SELECT insertId, logName, timestamp, resource, jsonPayload "
        f"FROM `{project}.{dataset}.{name}` WHERE {' AND '.join(conditions)}"
    )
    return project, sql
