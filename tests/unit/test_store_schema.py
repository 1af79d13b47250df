"""One schema definition: infra/bigquery is canonical, the store package ships a copy."""

from __future__ import annotations

import filecmp
import re
from pathlib import Path

import duckdb
import pytest
from armirror.store import tables

ROOT = Path(__file__).resolve().parents[2]
CANONICAL = ROOT / "infra" / "bigquery"
SHIPPED = ROOT / "functions" / "armirror" / "store" / "schema"


def schema_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.suffix in (".json", ".sql")}


def test_shipped_copy_is_identical_to_infra_bigquery() -> None:
    fix = f"cp {CANONICAL.relative_to(ROOT)}/*.json {CANONICAL.relative_to(ROOT)}/*.sql " + str(
        SHIPPED.relative_to(ROOT)
    )
    assert schema_files(CANONICAL) == schema_files(SHIPPED), f"out of step; run: {fix}"
    for name in sorted(schema_files(CANONICAL)):
        assert filecmp.cmp(CANONICAL / name, SHIPPED / name, shallow=False), f"{name}: run {fix}"


def test_layout_matches_terraform() -> None:
    text = (ROOT / "terraform" / "modules" / "armirror" / "bigquery.tf").read_text()
    for table, layout in tables.LAYOUT.items():
        match = re.search(
            rf'{table}\s*=\s*{{\s*partition_field\s*=\s*"(\w+)",\s*clustering\s*=\s*\[([^\]]*)\]',
            text,
        )
        assert match, f"{table} not in bigquery.tf's table_layout"
        assert match.group(1) == layout["partition_field"]
        assert re.findall(r'"(\w+)"', match.group(2)) == layout["clustering"]


def test_every_table_has_a_key_and_the_layout_fields_exist() -> None:
    schemas = tables.table_schemas()
    assert set(schemas) == set(tables.KEYS)
    for table, key in tables.KEYS.items():
        fields = {f["name"]: f for f in schemas[table]}
        assert fields[key]["mode"] == "REQUIRED"
    for table, layout in tables.LAYOUT.items():
        names = {f["name"] for f in schemas[table]}
        assert layout["partition_field"] in names
        assert set(layout["clustering"]) <= names


def test_duckdb_tables_have_the_schema_columns_types_and_modes() -> None:
    """Each DuckDB table is the JSON schema's: names and order, types, and NOT NULL
    where the mode is REQUIRED (so a row without its key is refused, as BigQuery does)."""
    duckdb_types = {"STRING": "VARCHAR", "INT64": "BIGINT", "INTEGER": "BIGINT",
                    "FLOAT": "DOUBLE", "FLOAT64": "DOUBLE",
                    "TIMESTAMP": "TIMESTAMP WITH TIME ZONE", "BOOL": "BOOLEAN",
                    "BOOLEAN": "BOOLEAN"}  # fmt: skip
    con = duckdb.connect()
    modes: set[str] = set()
    for table, fields in tables.table_schemas().items():
        con.execute(tables.duckdb_create_table(table))
        made = con.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        wanted = [
            (f["name"], duckdb_types[f["type"].upper()],
             "NO" if f.get("mode", "NULLABLE").upper() == "REQUIRED" else "YES")
            for f in fields
        ]  # fmt: skip
        assert made == wanted, table
        modes |= {m for _, _, m in wanted}
    assert modes == {"NO", "YES"}  # both kinds are checked


@pytest.mark.parametrize("view", sorted(tables.view_templates()))
def test_views_transpile_and_run_on_duckdb(view: str) -> None:
    con = duckdb.connect()
    for table in tables.table_schemas():
        con.execute(tables.duckdb_create_table(table))
    con.execute(f"CREATE VIEW {view} AS {tables.render_duckdb(tables.view_templates()[view])}")
    assert con.execute(f"SELECT * FROM {view}").fetchall() == []


def test_bigquery_rendering_is_what_terraform_templatefile_gives() -> None:
    sql = tables.render_bigquery(tables.view_templates()["pulls"], "my-proj", "armirror")
    assert "`my-proj.armirror.pull_events`" in sql
    assert "${" not in sql
