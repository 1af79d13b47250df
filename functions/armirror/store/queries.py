"""The store's read queries, built once in GoogleSQL from the view files.

Each query is a view of ``infra/bigquery`` with a filter, order or limit added through
sqlglot's builder, so the ranking is defined in one place (``image_ranking.sql``) and
both adapters run it: BigQuery as GoogleSQL, DuckDB transpiled.  Values are added as
sqlglot literals, never pasted into SQL text.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from sqlglot import exp

from armirror.reference import try_parse
from armirror.store import CopyRecord, DailyPulls, ImageRanking, RedeployRecord
from armirror.store.tables import (
    copy_record,
    normalised,
    parse_view,
    qualify,
    quoted_table,
    redeploy_record,
    upload_session_id,
    upload_session_row,
    utc_row,
)

#: Reasons that count as demand for an image in ``pull_count``: a pull started, or
#: Cloud Run deployed it (Cloud Run logs no pulls).
DEMAND_REASONS = ("pulling", "deployed")

_TIMESTAMP = exp.DataType.build("TIMESTAMP", dialect="bigquery")


def timestamp(value: datetime) -> exp.Expression:
    """A TIMESTAMP literal (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return exp.cast(exp.Literal.string(value.astimezone(UTC).isoformat()), _TIMESTAMP)


def _window(
    tree: exp.Select, since: datetime | None, until: datetime | None, column: str = "event_time"
) -> exp.Select:
    if since is not None:
        tree = tree.where(exp.GTE(this=exp.column(column), expression=timestamp(since)))
    if until is not None:
        tree = tree.where(exp.LT(this=exp.column(column), expression=timestamp(until)))
    return tree


class Queries:
    """The queries for one dialect and one place (project and dataset, or none)."""

    def __init__(self, dialect: str, project: str | None = None, dataset: str | None = None):
        self.dialect = dialect
        self.project = project
        self.dataset = dataset

    def _key(self) -> tuple[str, str | None, str | None]:
        return (self.dialect, self.project, self.dataset)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Queries) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def sql(self, tree: exp.Expression) -> str:
        return qualify(tree, self.project, self.dataset).sql(dialect=self.dialect)

    def table(self, name: str) -> exp.Table:
        return quoted_table(name, self.project, self.dataset)

    def top_images(
        self,
        since: datetime | None,
        until: datetime | None,
        third_party_only: bool,
        limit: int | None,
    ) -> str:
        tree = _window(parse_view("image_ranking"), since, until)
        if third_party_only:
            tree = tree.where(exp.column("third_party"))
        tree = tree.order_by("pulls DESC", "rate_limited DESC", "failures DESC", "reference")
        if limit is not None:
            tree = tree.limit(int(limit))
        return self.sql(tree)

    def daily(self, since: datetime | None, until: datetime | None) -> str:
        tree = _window(parse_view("pulls_daily"), since, until)
        return self.sql(tree.order_by("day", "registry_class"))

    def mirrors(self, source: str | None = None, tags_only: bool = False) -> str:
        tree = parse_view("mirrors")
        if source is not None:
            tree = tree.where(
                exp.EQ(this=exp.column("source"), expression=exp.Literal.string(source))
            )
        if tags_only:
            # A reference pinned by digest never moves upstream; refresh checks tags only.
            tree = tree.where(
                exp.Not(
                    this=exp.Like(this=exp.column("source"), expression=exp.Literal.string("%@%"))
                )
            )
        return self.sql(tree.order_by("source"))

    def copy_counts(self, since: datetime | None, until: datetime | None) -> str:
        """Copies per status (copied, up-to-date, failed) requested in [since, until)."""
        tree = (
            exp.select("status", "COUNT(DISTINCT copy_id) AS copies")
            .from_(self.table("copies"))
            .group_by("status")
        )
        return self.sql(_window(tree, since, until, column="requested_at").order_by("status"))

    def redeploys(self, since: datetime | None, until: datetime | None) -> str:
        """Container changes made by redeploy in [since, until), oldest first."""
        # DISTINCT: a row BigQuery took twice (past insertAll's dedup window) is one change.
        tree = exp.select("*").distinct().from_(self.table("redeploys"))
        tree = _window(tree, since, until, column="changed_at")
        return self.sql(tree.order_by("changed_at", "namespace", "name", "container"))

    def upload_session(self, session_id: str) -> str:
        """The latest update of one upload session."""
        tree = (
            exp.select("location", "bytes_sent", "done")
            .from_(self.table("upload_sessions"))
            .where(exp.EQ(this=exp.column("session_id"), expression=exp.Literal.string(session_id)))
            .order_by("updated_at DESC", "bytes_sent DESC")
            .limit(1)
        )
        return self.sql(tree)

    def third_party_by_workload(
        self, since: datetime | None, until: datetime | None, limit: int
    ) -> str:
        """Third-party pulls per (cluster, namespace): who still pulls from Docker Hub."""
        tree = (
            exp.select(
                "cluster",
                "namespace",
                "COUNTIF(reason = 'pulling') AS pulls",
                "COUNTIF(reason = 'rate_limited') AS rate_limited",
                "COUNT(DISTINCT reference) AS images",
            )
            .from_(self.table("pulls"))
            .where(exp.column("third_party"))
            .where("reason IN ('pulling', 'rate_limited')")
            .group_by("cluster", "namespace")
        )
        tree = _window(tree, since, until).order_by(
            "pulls DESC", "rate_limited DESC", "cluster", "namespace"
        )
        return self.sql(tree.limit(int(limit)))

    def pull_count(self, reference: str, since: datetime | None) -> str:
        # Asked once per Pub/Sub message; building it with sqlglot costs milliseconds of
        # CPU, and a few thousand images make up nearly all the questions.
        return _pull_count_sql(self, reference, since)

    def _pull_count(self, reference: str, since: datetime | None) -> str:
        parsed = try_parse(reference)
        if parsed is not None:
            reference = str(parsed)  # "nginx" counts docker.io/library/nginx:latest
        tree = (
            exp.select("COUNT(DISTINCT insert_id) AS pulls")
            .from_(self.table("pull_events"))
            .where(exp.EQ(this=exp.column("reference"), expression=exp.Literal.string(reference)))
            .where(
                exp.In(
                    this=exp.column("reason"),
                    expressions=[exp.Literal.string(r) for r in DEMAND_REASONS],
                )
            )
        )
        if parsed is not None:  # lets BigQuery prune by the clustering columns
            for column, value in (("registry", parsed.registry), ("repository", parsed.repository)):
                tree = tree.where(
                    exp.EQ(this=exp.column(column), expression=exp.Literal.string(value))
                )
        return self.sql(_window(tree, since, None))


@functools.lru_cache(maxsize=4096)
def _pull_count_sql(queries: Queries, reference: str, since: datetime | None) -> str:
    return queries._pull_count(reference, since)


class ViewReads:
    """The read half of :class:`~armirror.store.PullStore`, shared by both adapters.

    An adapter supplies ``_queries`` (its dialect) and ``_rows(sql)``; every read is one
    of the queries above, so DuckDB and BigQuery answer the same question the same way.
    """

    _queries: Queries

    def _rows(self, sql: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _insert_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    # -- unfinished blob uploads (registry.resumable.UploadSessions) ---------------------

    def upload_session(self, destination: str, digest: str) -> tuple[str, int] | None:
        """Where an unfinished upload stands: (location, bytes sent), or None."""
        rows = self._rows(self._queries.upload_session(upload_session_id(destination, digest)))
        if not rows or rows[0]["done"] or not rows[0]["location"]:
            return None
        return str(rows[0]["location"]), int(rows[0]["bytes_sent"])

    def save_upload_session(
        self, destination: str, digest: str, location: str, offset: int
    ) -> None:
        row = upload_session_row(destination, digest, location, offset, False)
        self._insert_rows("upload_sessions", [row])

    def forget_upload_session(self, destination: str, digest: str) -> None:
        self._insert_rows(
            "upload_sessions", [upload_session_row(destination, digest, None, 0, True)]
        )

    def pull_count(self, reference: str, since: datetime | None = None) -> int:
        rows = self._rows(self._queries.pull_count(reference, since))
        return int(rows[0]["pulls"]) if rows else 0

    def top_images(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        third_party_only: bool = False,
        limit: int | None = 20,
    ) -> list[ImageRanking]:
        sql = self._queries.top_images(since, until, third_party_only, limit)
        return [ImageRanking(**utc_row(row)) for row in self._rows(sql)]

    def daily(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[DailyPulls]:
        return [DailyPulls(**row) for row in self._rows(self._queries.daily(since, until))]

    def mirrored(self, reference: str) -> CopyRecord | None:
        rows = self._rows(self._queries.mirrors(normalised(reference)))
        return copy_record(rows[0]) if rows else None

    def copy_counts(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, int]:
        rows = self._rows(self._queries.copy_counts(since, until))
        return {str(row["status"]): int(row["copies"]) for row in rows}

    def third_party_by_workload(
        self, since: datetime | None = None, until: datetime | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        """Third-party pulls per cluster and namespace in [since, until), most first."""
        rows = self._rows(self._queries.third_party_by_workload(since, until, limit))
        return [
            {
                "cluster": row["cluster"],
                "namespace": row["namespace"],
                "pulls": int(row["pulls"]),
                "rate_limited": int(row["rate_limited"]),
                "images": int(row["images"]),
            }
            for row in rows
        ]

    def mirrored_tags(self) -> list[tuple[str, str]]:
        rows = self._rows(self._queries.mirrors(tags_only=True))
        return [(row["source"], row["digest"]) for row in rows if row["digest"]]

    def redeploys(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[RedeployRecord]:
        return [redeploy_record(row) for row in self._rows(self._queries.redeploys(since, until))]
