"""`armirror pulls` given hostile files: a value no column can hold costs only that
value, and JSON too deep to parse is one clear line, exit 2, never a traceback
(issue 12 §5 and §7)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from armirror import ingest_pool
from armirror.cli import cli
from armirror.store.duckdb import DuckDBStore
from click.testing import CliRunner
from standins.logentries import kubelet_entry

ROOT = Path(__file__).resolve().parents[2]
WHEN = datetime(2026, 10, 1, 8, 0, 1, tzinfo=UTC)
HUGE = "Image size: 99999999999999999999 bytes."


def good_entries(count: int) -> list[dict[str, object]]:
    return [
        kubelet_entry(f"good-{n:04d}", WHEN, "Pulled", f"nginx:1.{n % 7}") for n in range(count)
    ]


def huge_size_entry() -> dict[str, object]:
    entry = kubelet_entry("huge", WHEN, "Pulled", "redis:7")
    payload = entry["jsonPayload"]
    assert isinstance(payload, dict)
    payload["message"] = f'Successfully pulled image "redis:7" in 1.2s. {HUGE}'
    return entry


def armirror_pulls(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "armirror.cli", "pulls", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


@pytest.mark.parametrize("layout", ["lines", "lines-in-workers", "array"])
def test_an_unstorable_size_among_300_good_entries_records_all_301(
    tmp_path: Path, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = good_entries(300)
    entries.insert(150, huge_size_entry())
    path = tmp_path / "entries.json"
    if layout == "array":
        path.write_text(json.dumps(entries, indent=1))
    else:
        path.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    if layout == "lines-in-workers":
        monkeypatch.setattr(ingest_pool, "TASK_LINES", 50)  # several tasks, so the pool runs
    store_path = tmp_path / "pulls.duckdb"
    result = CliRunner().invoke(
        cli, ["pulls", str(path), "--store", f"duckdb://{store_path}", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert "read 301 entries: 301 events, 301 new; skipped 0" in result.stderr
    with DuckDBStore(store_path) as store:
        assert store.count_rows("pull_events") == 301
        rows = store._rows(
            "SELECT image_bytes, pull_seconds FROM pull_events WHERE insert_id = 'huge'"
        )
        assert rows == [{"image_bytes": None, "pull_seconds": 1.2}]
        sizes = store._rows(
            "SELECT DISTINCT image_bytes FROM pull_events WHERE insert_id <> 'huge'"
        )
        assert sizes == [{"image_bytes": 48213504}]


def test_a_50000_deep_array_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 50_000 + "]" * 50_000)
    done = armirror_pulls(str(path), "--store", f"duckdb://{tmp_path}/s.duckdb")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "nested too deeply" in lines[0] and "character 1" in lines[0]


def test_a_deep_element_among_good_ones_stops_the_array_cleanly(tmp_path: Path) -> None:
    deep = '{"a": ' * 5_000 + "1" + "}" * 5_000
    good = [json.dumps(entry) for entry in good_entries(3)]
    path = tmp_path / "export.json"
    path.write_text("[" + ",\n".join([*good, deep, good[0]]) + "]")
    done = armirror_pulls(str(path), "--store", f"duckdb://{tmp_path}/s.duckdb")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    offset = path.read_text().index(deep)
    assert f"character {offset} is nested too deeply" in done.stderr


def test_deep_and_huge_json_lines_are_skipped_and_the_rest_recorded(tmp_path: Path) -> None:
    lines = [json.dumps(entry) for entry in good_entries(5)]
    lines.insert(1, "[" * 50_000 + "]" * 50_000)
    lines.insert(3, '{"a": ' * 2_000 + "1" + "}" * 2_000)
    lines.insert(4, '{"insertId": ' + "9" * 5_000 + "}")
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines) + "\n")
    done = armirror_pulls(str(path), "--store", f"duckdb://{tmp_path}/s.duckdb", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "read 8 entries: 5 events, 5 new; skipped 3 (bad_json 3)" in done.stderr


def test_a_huge_integer_in_an_array_costs_only_its_entry(tmp_path: Path) -> None:
    entries = good_entries(3)
    text = json.dumps(entries)[:-1] + ', {"insertId": ' + "9" * 5_000 + "}]"
    path = tmp_path / "export.json"
    path.write_text(text)
    done = armirror_pulls(str(path), "--store", f"duckdb://{tmp_path}/s.duckdb", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert "read 4 entries: 3 events, 3 new; skipped 1 (missing_field 1)" in done.stderr
