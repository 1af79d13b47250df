"""The pull store: what was pulled where, and what was copied.

:class:`PullStore` is the protocol the pipeline, the CLI and the report use.  Two
adapters behave the same (one behavioural test suite runs against both):

- :mod:`armirror.store.duckdb`, the embedded default: one DuckDB file, by default
  ``$XDG_DATA_HOME/armirror/armirror.duckdb``;
- :mod:`armirror.store.bigquery`: a BigQuery dataset (``pull_events`` partitioned by day
  on ``event_time`` and clustered by registry and repository).

Choose with a URL (``--store`` or ``ARMIRROR_STORE``): ``duckdb:///path/to/file.duckdb``,
``duckdb:///:memory:``, or ``bigquery://PROJECT/DATASET[?location=EU]``.  For the BigQuery
emulator set ``BIGQUERY_EMULATOR_HOST=http://127.0.0.1:PORT`` (the client library's own
variable); requests then go there without credentials.

Counting is idempotent: an event is identified by its ``insert_id`` and a second copy of
it never changes a count.  DuckDB refuses the duplicate row (primary key); BigQuery's
streaming insert drops it when it comes within about a minute (row_ids), and every read
goes through views that keep one row per insert_id for the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from armirror.events import PullEvent

if TYPE_CHECKING:
    from armirror.registry.copy import CopyResult

__all__ = [
    "CopyRecord",
    "DailyPulls",
    "ImageRanking",
    "PullStore",
    "RedeployRecord",
    "StoreError",
    "default_duckdb_path",
    "open_store",
]


class StoreError(Exception):
    """The store cannot be opened or written right now (a retry may succeed)."""


@dataclass(frozen=True)
class ImageRanking:
    """One row of the ranking: a normalised reference and what happened to it."""

    reference: str
    registry: str
    third_party: bool
    pulls: int
    rate_limited: int
    failures: int
    clusters: int
    first_seen: datetime
    last_seen: datetime

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["first_seen"] = self.first_seen.isoformat()
        data["last_seen"] = self.last_seen.isoformat()
        return data


@dataclass(frozen=True)
class DailyPulls:
    """Pulls on one UTC day from one registry class."""

    day: date
    registry_class: str
    pulls: int
    rate_limited: int
    failures: int
    deployed: int

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "day": self.day.isoformat()}


@dataclass(frozen=True)
class CopyRecord:
    """The latest successful copy of a source reference."""

    source: str
    destination: str
    status: str
    digest: str | None
    requested_at: datetime
    finished_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["requested_at"] = self.requested_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat() if self.finished_at else None
        return data


@dataclass(frozen=True)
class RedeployRecord:
    """One container of a workload moved onto the mirror (or put back by ``--undo``)."""

    run_id: str
    platform: str
    target: str
    namespace: str
    kind: str
    name: str
    container: str
    old_image: str
    new_image: str
    action: str  # moved | restored
    changed_at: datetime

    @property
    def workload(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "changed_at": self.changed_at.isoformat()}


class PullStore(Protocol):
    """Where pull events and copies are kept."""

    def record(self, events: Iterable[PullEvent]) -> int:
        """Store events; idempotent by ``insert_id``.  Returns how many rows were new
        (BigQuery cannot tell cheaply and returns how many distinct events it sent)."""
        ...

    def pull_count(self, reference: str, since: datetime | None = None) -> int:
        """Distinct pulls (reason ``pulling``) and Cloud Run deployments of a reference
        since a time: the demand the mirror threshold compares against."""
        ...

    def top_images(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        third_party_only: bool = False,
        limit: int | None = 20,
    ) -> list[ImageRanking]:
        """One row per reference seen in [since, until), most pulled first."""
        ...

    def daily(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[DailyPulls]:
        """Pulls per UTC day and registry class in [since, until), oldest first."""
        ...

    def record_copy(self, result: CopyResult) -> None:
        """Store the outcome of one copy (idempotent: the same result twice is one row)."""
        ...

    def record_copies(self, results: Iterable[CopyResult]) -> None:
        """Store many outcomes in one write (a CLI run's)."""
        ...

    def mirrored(self, reference: str) -> CopyRecord | None:
        """The latest successful copy of ``reference`` (normalised), or None."""
        ...

    def copy_counts(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, int]:
        """Copies per status (``copied``, ``up-to-date``, ``failed``) in [since, until)."""
        ...

    def mirrored_tags(self) -> list[tuple[str, str]]:
        """(source, digest) of every mirrored source named by tag, for refresh."""
        ...

    def record_redeploys(self, records: Iterable[RedeployRecord]) -> None:
        """Store container changes made by ``armirror redeploy`` (idempotent)."""
        ...

    def redeploys(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[RedeployRecord]:
        """Container changes made in [since, until), oldest first."""
        ...

    def upload_session(self, destination: str, digest: str) -> tuple[str, int] | None:
        """An unfinished blob upload to ``destination`` (endpoint and repository):
        (its location, bytes the registry acknowledged), or None."""
        ...

    def save_upload_session(
        self, destination: str, digest: str, location: str, offset: int
    ) -> None:
        """Record an upload's progress after a chunk; the latest record counts."""
        ...

    def forget_upload_session(self, destination: str, digest: str) -> None:
        """The upload finished or was given up: there is nothing to resume."""
        ...

    def third_party_by_workload(
        self, since: datetime | None = None, until: datetime | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Third-party pulls per (cluster, namespace) in [since, until): ``cluster``,
        ``namespace``, ``pulls``, ``rate_limited``, ``images``; most pulls first."""
        ...

    def close(self) -> None: ...


def default_duckdb_path() -> Path:
    """``$XDG_DATA_HOME/armirror/armirror.duckdb`` (``~/.local/share`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "armirror" / "armirror.duckdb"


def open_store(url: str | None = None, *, create: bool = True) -> PullStore:
    """The store a URL names; None or ``""`` is the default DuckDB file.

    ``duckdb:///abs/path``, ``duckdb://relative/path``, ``duckdb:///:memory:``,
    ``bigquery://PROJECT/DATASET[?location=LOCATION]``.  Raises ``ValueError`` for
    anything else.  ``create=False`` (the deployed functions) opens a BigQuery store that
    never creates its dataset, tables or views: Terraform does.
    """
    if not url:
        from armirror.store.duckdb import DuckDBStore

        return DuckDBStore(default_duckdb_path())
    parts = urlsplit(url)
    if parts.scheme == "duckdb":
        from armirror.store.duckdb import DuckDBStore

        path = unquote(parts.netloc + parts.path)
        if path in ("", "/"):
            return DuckDBStore(default_duckdb_path())
        if path == "/:memory:" or path == ":memory:":
            return DuckDBStore(":memory:")
        return DuckDBStore(Path(path).expanduser())
    if parts.scheme == "bigquery":
        project, dataset = parts.netloc, parts.path.strip("/")
        if not project or not dataset or "/" in dataset:
            raise ValueError(f"expected bigquery://PROJECT/DATASET, got {url!r}")
        options = parse_qs(parts.query)
        location = options.get("location", [None])[0]
        from armirror.store.bigquery import BigQueryStore

        return BigQueryStore(project, dataset, location=location, create=create)
    raise ValueError(
        f"unknown store {url!r}: expected duckdb:///PATH or bigquery://PROJECT/DATASET"
    )
