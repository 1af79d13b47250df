"""The store's plain values: where the default file lives, the JSON shapes scripts read,
the schema files the package ships, and which query sets are the same."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlglot
from armirror.store import (
    CopyRecord,
    DailyPulls,
    ImageRanking,
    RedeployRecord,
    default_duckdb_path,
    tables,
)
from armirror.store.queries import Queries

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("xdg", [None, ""])
def test_default_path_is_under_the_home_directory_without_xdg_data_home(
    xdg: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_DATA_HOME", xdg)
    assert default_duckdb_path() == tmp_path / ".local" / "share" / "armirror" / "armirror.duckdb"


def test_default_path_follows_xdg_data_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_duckdb_path() == tmp_path / "data" / "armirror" / "armirror.duckdb"


def test_records_as_json() -> None:
    """What ``--format json`` and scripts get: ISO times, every field by name."""
    ranking = ImageRanking(
        "docker.io/library/nginx:1", "docker.io", True, 3, 1, 2, 2, T0, T0 + timedelta(hours=1)
    )
    assert ranking.to_json() == {
        "reference": "docker.io/library/nginx:1",
        "registry": "docker.io",
        "third_party": True,
        "pulls": 3,
        "rate_limited": 1,
        "failures": 2,
        "clusters": 2,
        "first_seen": "2026-10-01T08:00:00+00:00",
        "last_seen": "2026-10-01T09:00:00+00:00",
    }
    daily = DailyPulls(date(2026, 10, 2), "third_party", 5, 1, 0, 2)
    assert daily.to_json() == {
        "day": "2026-10-02",
        "registry_class": "third_party",
        "pulls": 5,
        "rate_limited": 1,
        "failures": 0,
        "deployed": 2,
    }
    done = CopyRecord("docker.io/library/nginx:1", "e/p/m/nginx:1", "copied", "sha256:ab", T0, T0)
    assert done.to_json() == {
        "source": "docker.io/library/nginx:1",
        "destination": "e/p/m/nginx:1",
        "status": "copied",
        "digest": "sha256:ab",
        "requested_at": "2026-10-01T08:00:00+00:00",
        "finished_at": "2026-10-01T08:00:00+00:00",
    }
    running = CopyRecord("docker.io/library/nginx:1", "e/p/m/nginx:1", "copied", None, T0, None)
    assert running.to_json()["finished_at"] is None and running.to_json()["digest"] is None
    moved = RedeployRecord(
        "run-1", "gke", "https://c", "shop", "Deployment", "web", "app", "nginx:1", "m/nginx:1",
        "moved", T0,
    )  # fmt: skip
    assert moved.to_json() == {
        "run_id": "run-1",
        "platform": "gke",
        "target": "https://c",
        "namespace": "shop",
        "kind": "Deployment",
        "name": "web",
        "container": "app",
        "old_image": "nginx:1",
        "new_image": "m/nginx:1",
        "action": "moved",
        "changed_at": "2026-10-01T08:00:00+00:00",
    }
    for record in (ranking, daily, done, running, moved):
        json.dumps(record.to_json())  # nothing a JSON encoder refuses


@pytest.fixture
def fresh_schema_cache() -> Iterator[None]:
    """Read the schema files again (they are cached for the life of the process)."""
    tables.table_schemas.cache_clear()
    tables.view_templates.cache_clear()
    yield
    tables.table_schemas.cache_clear()
    tables.view_templates.cache_clear()


@pytest.mark.usefixtures("fresh_schema_cache")
def test_tables_and_views_come_from_the_package() -> None:
    """The deployed functions have only the package: the schema ships inside it."""
    assert sorted(tables.table_schemas()) == [
        "copies",
        "pull_events",
        "redeploys",
        "upload_sessions",
    ]
    assert sorted(tables.view_templates()) == [
        "image_ranking",
        "mirrors",
        "pulls",
        "pulls_daily",
    ]
    assert [f["name"] for f in tables.table_schemas()["copies"]] == [
        "copy_id",
        "source",
        "destination",
        "registry",
        "repository",
        "status",
        "digest",
        "bytes_copied",
        "error",
        "requested_at",
        "finished_at",
    ]
    assert "`${project}.${dataset}.pull_events`" in tables.view_templates()["pulls"]


def test_query_sets_are_equal_only_for_the_same_dialect_and_place() -> None:
    """Built SQL is cached per query set: a BigQuery dataset must never get another
    dataset's, or DuckDB's, SQL."""
    duck = Queries("duckdb")
    assert duck == Queries("duckdb") and hash(duck) == hash(Queries("duckdb"))
    assert Queries("bigquery", "p", "d") == Queries("bigquery", "p", "d")
    assert duck != Queries("bigquery", "p", "d")
    assert Queries("bigquery", "p", "d") != Queries("bigquery", "p", "other")
    assert Queries("bigquery", "p", "d") != Queries("bigquery", "q", "d")
    assert duck != "duckdb" and duck != ("duckdb", None, None)


@pytest.mark.parametrize("queries", [Queries("bigquery", "p", "d"), Queries("duckdb")], ids=str)
def test_queries_spell_their_columns_as_the_readers_read_them(queries: Queries) -> None:
    """Real BigQuery names a result column as the query spells it (``SELECT CLUSTER``
    gives ``CLUSTER``); DuckDB and the emulator name it as the table does, so the suite's
    stores cannot see a misspelt one.  Each reader's keys, spelt out."""

    def names(sql: str) -> list[str]:
        return sqlglot.parse_one(sql, read=queries.dialect).named_selects

    ranking = [f.name for f in dataclasses.fields(ImageRanking)]
    assert names(queries.top_images(None, None, False, 20)) == ranking
    assert names(queries.third_party_by_workload(None, None, 20)) == [
        "cluster",
        "namespace",
        "pulls",
        "rate_limited",
        "images",
    ]
    assert names(queries.copy_counts(None, None)) == ["status", "copies"]
    assert names(queries.upload_session("id")) == ["location", "bytes_sent", "done"]
    assert names(queries.pull_count("registry.example/names/spelt:1", None)) == ["pulls"]


def test_a_domain_scoped_project_is_one_quoted_name_in_the_queries() -> None:
    """Project IDs such as ``example.com:my-project`` hold a dot and a colon: each part
    of a table's name is quoted, so BigQuery reads them as the project, not a path."""
    queries = Queries("bigquery", "example.com:my-project", "mirror-stats")
    for sql in (queries.top_images(None, None, False, 20), queries.upload_session("id")):
        tables = list(sqlglot.parse_one(sql, read="bigquery").find_all(sqlglot.exp.Table))
        assert {(t.catalog, t.db) for t in tables if t.db} == {
            ("example.com:my-project", "mirror-stats")
        }, sql


def test_a_view_table_keeps_its_alias_when_named_in_full() -> None:
    """qualify swaps a placeholder for the real table and keeps the name the query gave
    it, which the rest of the query reads by (no view uses one yet)."""
    from armirror.store.tables import qualify

    tree = sqlglot.parse_one(
        "SELECT t.reference FROM __armirror_table__pull_events AS t WHERE t.reason = 'x'",
        read="bigquery",
    )
    assert qualify(tree, "p", "d").sql(dialect="bigquery") == (
        "SELECT t.reference FROM `p`.`d`.`pull_events` AS t WHERE t.reason = 'x'"
    )
    assert qualify(tree, None, None).sql(dialect="duckdb") == (
        "SELECT t.reference FROM \"pull_events\" AS t WHERE t.reason = 'x'"
    )


def test_the_sink_query_spells_its_columns_as_a_log_entry_does() -> None:
    from armirror.store.bigquery import sink_query

    project, sql = sink_query("my-project.logs.events_*")
    assert project == "my-project"
    assert sqlglot.parse_one(sql, read="bigquery").named_selects == [
        "insertId",
        "logName",
        "timestamp",
        "resource",
        "jsonPayload",
    ]
