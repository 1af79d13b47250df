"""The pull store's tables and views, from one definition shared with Terraform.

The canonical files are ``infra/bigquery/NAME.json`` (BigQuery JSON schema of table NAME)
and ``infra/bigquery/NAME.sql`` (GoogleSQL of view NAME, a Terraform template naming its
tables ``${project}.${dataset}.TABLE``).  ``functions/`` is the Cloud Functions deploy
unit and cannot reach ``infra/``, so an identical copy ships in ``armirror/store/schema/``;
``tests/unit/test_store_schema.py`` fails when the two differ (fix with
``cp infra/bigquery/*.json infra/bigquery/*.sql functions/armirror/store/schema/``).

BigQuery gets the files as they are; DuckDB gets the same schema with DuckDB types and
a primary key, and the views transpiled by sqlglot.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

from armirror.events import PullEvent, fit_event
from armirror.reference import try_parse

if TYPE_CHECKING:
    from armirror.registry.copy import CopyResult
    from armirror.store import CopyRecord, RedeployRecord

#: Partitioning and clustering per table: the same as terraform/modules/armirror/bigquery.tf
#: (a test compares them).
LAYOUT: dict[str, dict[str, Any]] = {
    "pull_events": {"partition_field": "event_time", "clustering": ["registry", "repository"]},
    "copies": {"partition_field": "requested_at", "clustering": ["registry", "repository"]},
}

#: The column that identifies a row: BigQuery's insertAll row_id, DuckDB's primary key.
KEYS: dict[str, str] = {
    "pull_events": "insert_id",
    "copies": "copy_id",
    "redeploys": "redeploy_id",
    "upload_sessions": "update_id",
}

_DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "BYTES": "BLOB",
    "INTEGER": "BIGINT",
    "INT64": "BIGINT",
    "FLOAT": "DOUBLE",
    "FLOAT64": "DOUBLE",
    "NUMERIC": "DECIMAL(38, 9)",
    "BOOLEAN": "BOOLEAN",
    "BOOL": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
    "DATE": "DATE",
    "DATETIME": "TIMESTAMP",
    "TIME": "TIME",
    "JSON": "JSON",
}

_TABLE_REF_RE = re.compile(r"`\$\{project\}\.\$\{dataset\}\.(\w+)`")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool


def _files() -> Any:
    return resources.files("armirror.store") / "schema"


@functools.cache
def table_schemas() -> dict[str, list[dict[str, Any]]]:
    """Table name -> its BigQuery JSON schema (a list of field dicts)."""
    out = {}
    for item in sorted(_files().iterdir(), key=lambda p: p.name):
        if item.name.endswith(".json"):
            out[item.name.removesuffix(".json")] = json.loads(item.read_text(encoding="utf-8"))
    return out


@functools.cache
def view_templates() -> dict[str, str]:
    """View name -> its GoogleSQL template."""
    out = {}
    for item in sorted(_files().iterdir(), key=lambda p: p.name):
        if item.name.endswith(".sql"):
            out[item.name.removesuffix(".sql")] = item.read_text(encoding="utf-8")
    return out


def columns(table: str) -> list[Column]:
    return [
        Column(f["name"], f["type"].upper(), f.get("mode", "NULLABLE").upper() == "REQUIRED")
        for f in table_schemas()[table]
    ]


def duckdb_create_table(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for DuckDB, with the table's key as primary key."""
    parts = []
    for column in columns(table):
        null = " NOT NULL" if column.required else ""
        parts.append(f'"{column.name}" {_DUCKDB_TYPES[column.type]}{null}')
    parts.append(f'PRIMARY KEY ("{KEYS[table]}")')
    return f'CREATE TABLE IF NOT EXISTS "{table}" (\n  ' + ",\n  ".join(parts) + "\n)"


def render_bigquery(template: str, project: str, dataset: str) -> str:
    """What Terraform's templatefile() makes of a view."""
    return template.replace("${project}", project).replace("${dataset}", dataset)


def render_duckdb(template: str) -> str:
    """A view's GoogleSQL for DuckDB: tables unqualified, then transpiled by sqlglot."""
    sql = _TABLE_REF_RE.sub(r"\1", template)
    return sqlglot.transpile(sql, read="bigquery", write="duckdb", pretty=True)[0]


def parse_view(name: str) -> exp.Select:
    """A view's query as a sqlglot tree, with tables named ``${project}.${dataset}.T``
    replaced by placeholders the adapters fill in (see :func:`qualify`)."""
    sql = _TABLE_REF_RE.sub(r"__armirror_table__\1", view_templates()[name])
    tree = sqlglot.parse_one(sql, read="bigquery")
    assert isinstance(tree, exp.Select), name
    return tree


def quoted_table(
    name: str, project: str | None, dataset: str | None, alias: str | None = None
) -> exp.Table:
    """A table name with every part quoted (project IDs may hold ``-``)."""

    def ident(part: str | None) -> exp.Identifier | None:
        return exp.to_identifier(part, quoted=True) if part else None

    return exp.Table(
        this=ident(name),
        db=ident(dataset),
        catalog=ident(project),
        alias=exp.TableAlias(this=exp.to_identifier(alias)) if alias else None,
    )


def qualify(tree: exp.Expression, project: str | None, dataset: str | None) -> exp.Expression:
    """Put real table names in place of :func:`parse_view`'s placeholders."""

    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.name.startswith("__armirror_table__"):
            name = node.name.removeprefix("__armirror_table__")
            return quoted_table(name, project, dataset, alias=node.alias or None)
        return node

    return tree.transform(swap)


# -- rows --------------------------------------------------------------------------------


def event_row(event: PullEvent, recorded_at: datetime) -> dict[str, Any]:
    """A ``pull_events`` row (timestamps as datetimes); a value that does not fit its
    column is None (:func:`armirror.events.fit_event`)."""
    event = fit_event(event)
    return {
        "insert_id": event.insert_id,
        "event_time": event.event_time,
        "reason": event.reason,
        "image": event.image,
        "reference": event.reference,
        "registry": event.registry,
        "repository": event.repository,
        "registry_class": event.registry_class,
        "third_party": event.third_party,
        "project_id": event.project_id,
        "location": event.location,
        "cluster": event.cluster,
        "namespace": event.namespace,
        "pod": event.pod,
        "node": event.node,
        "service": event.service,
        "image_bytes": event.image_bytes,
        "pull_seconds": event.pull_seconds,
        "source": event.source,
        "recorded_at": recorded_at,
    }


def copy_row(result: CopyResult) -> dict[str, Any]:
    """A ``copies`` row; ``copy_id`` is a hash of what identifies the attempt, so the same
    result recorded twice is one row."""
    source = try_parse(result.source)
    source_text = str(source) if source else result.source
    requested = result.started_at or result.finished_at or datetime.now(UTC)
    key = "\n".join(
        [
            source_text,
            result.destination,
            result.status,
            result.digest or "",
            requested.isoformat(),
        ]
    )
    return {
        "copy_id": hashlib.sha256(key.encode()).hexdigest()[:40],
        "source": source_text,
        "destination": result.destination,
        "registry": source.registry if source else "",
        "repository": source.repository if source else "",
        "status": result.status,
        "digest": result.digest,
        "bytes_copied": int(result.bytes_copied or 0),
        "error": result.error,
        "requested_at": requested,
        "finished_at": result.finished_at,
    }


def utc_row(row: dict[str, Any]) -> dict[str, Any]:
    for key, value in row.items():
        if isinstance(value, datetime):
            row[key] = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return row


def normalised(reference: str) -> str:
    parsed = try_parse(reference)
    return str(parsed) if parsed else reference


def copy_record(row: dict[str, Any]) -> CopyRecord:
    from armirror.store import CopyRecord

    row = utc_row(row)
    return CopyRecord(
        source=row["source"],
        destination=row["destination"],
        status=row["status"],
        digest=row["digest"],
        requested_at=row["requested_at"],
        finished_at=row["finished_at"],
    )


def redeploy_row(record: RedeployRecord) -> dict[str, Any]:
    """A ``redeploys`` row; ``redeploy_id`` makes the same record twice one row."""
    key = "\n".join(
        [
            record.run_id,
            record.platform,
            record.target,
            record.namespace,
            record.kind,
            record.name,
            record.container,
            record.action,
        ]
    )
    return {
        "redeploy_id": hashlib.sha256(key.encode()).hexdigest()[:40],
        "run_id": record.run_id,
        "platform": record.platform,
        "target": record.target,
        "namespace": record.namespace,
        "kind": record.kind,
        "name": record.name,
        "container": record.container,
        "old_image": record.old_image,
        "new_image": record.new_image,
        "action": record.action,
        "changed_at": record.changed_at,
    }


def redeploy_record(row: dict[str, Any]) -> RedeployRecord:
    from armirror.store import RedeployRecord

    row = utc_row(row)
    row.pop("redeploy_id", None)
    return RedeployRecord(**row)


def upload_session_id(destination: str, digest: str) -> str:
    """One unfinished upload: the same destination and digest are the same session."""
    return hashlib.sha256(f"{destination}\n{digest}".encode()).hexdigest()[:40]


def upload_session_row(
    destination: str, digest: str, location: str | None, bytes_sent: int, done: bool
) -> dict[str, Any]:
    """An ``upload_sessions`` row.  Sessions are append-only (BigQuery's streaming buffer
    cannot be updated), so every update is a row and the latest one counts.  Its id
    names the moment too: the same update made again later (a session forgotten a
    second time) is a new row, not a repeat of the first to be ignored."""
    session = upload_session_id(destination, digest)
    now = datetime.now(UTC)
    key = "\n".join([session, location or "", str(bytes_sent), str(done), now.isoformat()])
    return {
        "update_id": hashlib.sha256(key.encode()).hexdigest()[:40],
        "session_id": session,
        "destination": destination,
        "digest": digest,
        "location": location,
        "bytes_sent": int(bytes_sent),
        "done": bool(done),
        "updated_at": now,
    }
