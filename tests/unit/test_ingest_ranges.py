"""Workers that read byte ranges of a plain file see every line exactly once, whatever
the lines hold (multi-byte text, blank lines, an endless line, no final newline)."""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from armirror import pulls
from armirror.events import MAX_ENTRY_BYTES, parse_log_entry
from armirror.ingest_worker import line_boundary, parse_lines, parse_range
from armirror.store import StoreError
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


def test_a_file_that_shrinks_while_read_is_an_error_not_a_loop(
    jsonl: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = jsonl
    monkeypatch.setattr(pulls, "TASK_BYTES", 50_000)
    ranges = pulls._file_ranges(str(path))
    first = next(ranges)
    assert first[1:] == (0, line_boundary(path.open("rb"), 50_000))
    os.truncate(path, 60_000)  # log rotation, say, while the workers read it
    with pytest.raises(OSError, match="shrank"):
        list(itertools.islice(ranges, 100))


def test_one_checkpoint_for_all_the_files_of_an_ingest(
    tmp_path: Path, jsonl: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, lines = jsonl
    small = []
    for number in range(3):
        small.append(tmp_path / f"small-{number}.jsonl")
        small[-1].write_text("\n".join(lines[number * 50 : number * 50 + 50]) + "\n")
    monkeypatch.setattr(pulls, "TASK_BYTES", 50_000)
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        checkpoints = []
        real = store._con

        class Spy:
            def execute(self, sql: str, *args: object) -> object:
                if sql.strip().upper() == "CHECKPOINT":
                    checkpoints.append(sql)
                return real.execute(sql, *args)

            def __getattr__(self, name: str) -> object:
                return getattr(real, name)

        store._con = Spy()  # type: ignore[assignment]
        summary = pulls.ingest(store, [*map(str, small), str(path)])
        store._con = real
        assert store.count_rows("pull_events") == 300
    assert summary.recorded == 300
    assert len(checkpoints) == 1


def test_a_descriptor_path_is_read_here_not_by_the_workers(
    tmp_path: Path, jsonl: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``armirror pulls /dev/fd/3 3<file`` (or ``<(zcat …)``): a worker process has no
    descriptor 3 of ours, so the file is handed out as lines."""
    path, _ = jsonl
    monkeypatch.setattr(pulls, "TASK_BYTES", 50_000)
    monkeypatch.setattr(pulls, "TASK_LINES", 40)
    with path.open("rb") as handle, DuckDBStore(tmp_path / "s.duckdb") as store:
        summary = pulls.ingest(store, [f"/dev/fd/{handle.fileno()}"])
        assert store.count_rows("pull_events") == 300
    assert summary.recorded == 300 and summary.entries == 302


def test_a_bulk_load_commits_its_rows_and_checkpoints_at_the_end(tmp_path: Path) -> None:
    wal = tmp_path / "s.duckdb.wal"
    events = [
        event
        for n in range(200)
        for event in parse_log_entry(
            kubelet_entry(f"id-{n}", WHEN, "Pulling", f"nginx:1.{n}")
        ).events
    ]
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        with store.bulk_load():
            assert store.record(events) == 200
            assert wal.exists() and wal.stat().st_size > 0  # committed, not yet checkpointed
        assert not wal.exists() or wal.stat().st_size == 0
        setting = store._con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()
    assert setting is not None and setting[0] != "1.0 GiB"
    with DuckDBStore(tmp_path / "s.duckdb") as again:
        assert again.count_rows("pull_events") == 200


def test_a_failed_load_is_not_hidden_by_the_checkpoint_after_it(tmp_path: Path) -> None:
    class DiskFull:
        """The store's connection, but a checkpoint fails as on a full disk."""

        def __init__(self, real: duckdb.DuckDBPyConnection) -> None:
            self.real = real

        def execute(self, sql: str, *args: object) -> object:
            if sql.strip().upper() == "CHECKPOINT":
                raise duckdb.IOException("could not write: No space left on device")
            return self.real.execute(sql, *args)

        def __getattr__(self, name: str) -> object:
            return getattr(self.real, name)

    with DuckDBStore(tmp_path / "s.duckdb") as store:
        real = store._con
        store._con = DiskFull(real)  # type: ignore[assignment]
        with pytest.raises(ValueError, match="the load's own error"), store.bulk_load():
            raise ValueError("the load's own error")
        with (
            pytest.raises(StoreError, match=r"checkpoint after loading: .*No space"),
            store.bulk_load(),
        ):
            pass
        store._con = real
