"""Workers that read byte ranges of a plain file see every line exactly once, whatever
the lines hold (multi-byte text, blank lines, an endless line, no final newline)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from armirror import pulls
from armirror.events import MAX_ENTRY_BYTES
from armirror.ingest_worker import line_boundary, parse_lines, parse_range
from armirror.store.duckdb import DuckDBStore
from standins.logentries import kubelet_entry

FIELDS = DuckDBStore.event_csv_fields()
WHEN = datetime(2026, 10, 1, 8, 0, 1, tzinfo=UTC)


def _entry(number: int) -> str:
    entry = kubelet_entry(f"id-{number:05d}", WHEN, "Pulling", f"nginx:1.{number}")
    entry["jsonPayload"]["note"] = "é€😀" * (number % 7)  # multi-byte characters
    return json.dumps(entry, ensure_ascii=False)


@pytest.fixture
def jsonl(tmp_path: Path) -> tuple[Path, list[str]]:
    lines = [_entry(n) for n in range(300)]
    lines.insert(40, "")  # blank
    lines.insert(90, "   ")  # whitespace only
    lines.insert(150, '{"x": "' + "y" * (3 * MAX_ENTRY_BYTES) + '"}')  # endless line
    lines.insert(200, '{"broken')
    path = tmp_path / "entries.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")  # no final newline
    return path, lines


def _csv_rows(result: tuple[int, dict[str, int], int, str | None]) -> list[str]:
    path = result[3]
    assert path is not None
    try:
        return Path(path).read_text().splitlines()
    finally:
        os.unlink(path)


def test_a_boundary_is_the_start_of_a_line(jsonl: tuple[Path, list[str]]) -> None:
    path, _ = jsonl
    data = path.read_bytes()
    with path.open("rb") as handle:
        for offset in (1, 2, 777, 5_000, len(data) // 2, len(data) - 1):
            boundary = line_boundary(handle, offset)
            assert boundary >= offset
            assert boundary == len(data) or data[boundary - 1 : boundary] == b"\n"
            assert b"\n" not in data[offset - 1 : boundary - 1]
        assert line_boundary(handle, 0) == 0
        assert line_boundary(handle, len(data) + 10) == len(data)


@pytest.mark.parametrize("step", [1, 997, 4096, 100_000, 1 << 30])
def test_ranges_together_parse_as_the_whole_file(jsonl: tuple[Path, list[str]], step: int) -> None:
    path, lines = jsonl
    whole = parse_lines(lines, FIELDS)
    expected = _csv_rows(whole)
    size = path.stat().st_size
    got: list[str] = []
    entries, found, skipped = 0, 0, {}  # type: ignore[var-annotated]
    with path.open("rb") as handle:
        start = 0
        while start < size:
            end = line_boundary(handle, start + step)
            result = parse_range(str(path), start, end, FIELDS)
            entries += result[0]
            found += result[2]
            for code, count in result[1].items():
                skipped[code] = skipped.get(code, 0) + count
            if result[3] is not None:
                got.extend(_csv_rows(result))
            start = end
    assert got == expected
    assert (entries, skipped, found) == whole[:3]
    assert skipped == {"too_large": 1, "bad_json": 1}
    assert len(expected) == 300


def test_ingest_hands_a_plain_file_to_workers_in_ranges(
    tmp_path: Path, jsonl: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = jsonl
    monkeypatch.setattr(pulls, "TASK_BYTES", 50_000)
    seen: list[object] = []
    real = pulls._ingest_parallel

    def spy(store: object, tasks: object, summary: object) -> None:
        def recorded():  # type: ignore[no-untyped-def]
            for task in tasks:  # type: ignore[attr-defined]
                seen.append(task)
                yield task

        real(store, recorded(), summary)  # type: ignore[arg-type]

    monkeypatch.setattr(pulls, "_ingest_parallel", spy)
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        summary = pulls.ingest(store, [str(path)])
        assert store.count_rows("pull_events") == 300
    assert summary.recorded == 300 and summary.entries == 302
    assert len(seen) > 3 and all(isinstance(task, tuple) for task in seen)
    starts = [task[1] for task in seen]  # type: ignore[index]
    ends = [task[2] for task in seen]  # type: ignore[index]
    assert starts[0] == 0 and ends[-1] == path.stat().st_size and starts[1:] == ends[:-1]


def test_a_bulk_load_checkpoints_at_the_end(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        with store.bulk_load():
            threshold = store._con.execute(
                "SELECT current_setting('checkpoint_threshold')"
            ).fetchone()
        after = store._con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()
    assert threshold is not None and after is not None
    assert threshold[0] != after[0]
    assert (
        not (tmp_path / "s.duckdb.wal").exists() or (tmp_path / "s.duckdb.wal").stat().st_size == 0
    )
