"""`armirror pulls` parses large JSON-lines inputs in worker processes: the store ends up
with the same rows, and the summary and ranking are the same, as parsing in-process."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from armirror import ingest_pool, pulls
from armirror.store.duckdb import DuckDBStore
from standins.logentries import kubelet_entry

ROOT = Path(__file__).resolve().parents[2]
WHEN = datetime(2026, 10, 1, 8, 0, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def entries(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pulls") / "entries.jsonl"
    subprocess.run(
        [sys.executable, str(ROOT / "bench/pulls/generate.py"), str(path), "--entries", "3000"],
        check=True,
    )
    # A blank line, a broken one, and a last line without a newline.
    text = path.read_text()
    cut = text.index("\n", 5000) + 1
    path.write_text(text[:cut] + '\n  \n{"broken\n' + text[cut:].rstrip("\n"))
    return path


def _ingest(tmp_path: Path, name: str, entries: Path) -> tuple[Any, ...]:
    with DuckDBStore(tmp_path / f"{name}.duckdb") as store:
        summary = pulls.ingest(store, [str(entries)])
        rows = store._con.execute(
            "SELECT * EXCLUDE (recorded_at) FROM pull_events ORDER BY insert_id"
        ).fetchall()
        ranking = [row.to_json() for row in store.top_images(limit=None)]
    return summary.to_json(), rows, ranking


def test_workers_give_what_parsing_in_process_gives(
    tmp_path: Path, entries: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_pool, "WORKERS", 1)  # in-process, batch by batch
    expected = _ingest(tmp_path, "serial", entries)
    monkeypatch.setattr(ingest_pool, "WORKERS", 2)
    monkeypatch.setattr(ingest_pool, "TASK_LINES", 400)  # several tasks, so the pool runs
    called: list[int] = []
    real = ingest_pool.ingest_parallel

    def spy(*args: Any) -> None:
        called.append(1)
        real(*args)

    monkeypatch.setattr(ingest_pool, "ingest_parallel", spy)
    assert _ingest(tmp_path, "parallel", entries) == expected
    assert called
    summary, rows, _ = expected
    assert summary["entries"] == 3001 and summary["recorded"] == len(rows) > 2000
    assert summary["skipped"]["bad_json"] > 0


def test_reading_again_with_workers_records_nothing(
    tmp_path: Path, entries: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_pool, "TASK_LINES", 700)
    scratch = tmp_path / "tmp"  # the workers' CSV files go here, not to the shared /tmp
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    with DuckDBStore(tmp_path / "again.duckdb") as store:
        first = pulls.ingest(store, [str(entries)])
        second = pulls.ingest(store, [str(entries)])
    assert first.recorded > 0 and second.recorded == 0
    assert second.events == first.events and second.skipped == first.skipped
    assert tempfile.gettempdir() == str(scratch)
    assert not list(scratch.glob("armirror-*"))


def test_many_small_files_share_tasks_and_keep_their_order(
    tmp_path: Path, entries: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hourly exports: files smaller than a task are gathered into tasks across files
    (so the workers run), a ``gcloud`` JSON array among them is parsed here in its
    place, and the store ends up as if everything were parsed in order in-process."""
    lines = entries.read_text().split("\n")
    paths: list[str] = []
    for number, start in enumerate(range(0, len(lines), 150)):
        part = lines[start : start + 150]
        if number in (5, 7, 9):  # one insertId, three different entries: the first wins
            shared = kubelet_entry("shared", WHEN, "Pulling", f"team/app:{number}")
            part = [json.dumps(shared), *part]
        path = tmp_path / f"part-{number:03d}.jsonl"
        if number == 7:  # one export in gcloud's format
            path = path.with_suffix(".json")
            part = ["[", ",\n".join(line for line in part if line.startswith("{")), "]"]
        elif number == 12:  # and one gzipped
            path = path.with_suffix(".jsonl.gz")
            path.write_bytes(gzip.compress("\n".join(part).encode()))
            paths.append(str(path))
            continue
        path.write_text("\n".join(part))  # no final newline: the next file's first line
        paths.append(str(path))  # must not run into it
    assert len(paths) > 15

    def ingest(name: str) -> tuple[Any, ...]:
        with DuckDBStore(tmp_path / f"{name}.duckdb") as store:
            summary = pulls.ingest(store, paths)
            rows = store._con.execute(
                "SELECT * EXCLUDE (recorded_at) FROM pull_events ORDER BY insert_id"
            ).fetchall()
        return summary.to_json(), rows

    monkeypatch.setattr(ingest_pool, "WORKERS", 1)
    expected = ingest("serial")
    monkeypatch.setattr(ingest_pool, "WORKERS", 2)
    monkeypatch.setattr(ingest_pool, "TASK_LINES", 400)
    tasks: list[Any] = []
    real = ingest_pool.tasks

    def spy(names: Any) -> Any:
        for task in real(names):
            tasks.append(task if isinstance(task, ingest_pool.InProcess) else len(task))
            yield task

    monkeypatch.setattr(ingest_pool, "tasks", spy)
    assert ingest("parallel") == expected
    (shared,) = [row for row in expected[1] if row[0] == "shared"]
    assert "team/app:5" in shared
    assert expected[0]["entries"] > 2900 and expected[0]["skipped"]["bad_json"] > 0
    spanning = [task for task in tasks if isinstance(task, int) and task >= 400]
    assert len(spanning) >= 4  # each gathered from three or more files of 150 lines
    # files 0-6 (150 lines each) in two tasks of three files, what is left, then the array
    assert [task >= 400 for task in tasks[:3]] == [True, True, False]
    assert isinstance(tasks[3], ingest_pool.InProcess)
    assert sum(isinstance(task, ingest_pool.InProcess) for task in tasks) == 1
