"""Workers that read byte ranges of a plain file see every line exactly once, whatever
the lines hold (multi-byte text, blank lines, an endless line, no final newline)."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from armirror import events, ingest_pool, pulls
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
            result = parse_range(str(path), start, end, None, FIELDS)
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
    monkeypatch.setattr(ingest_pool, "TASK_BYTES", 50_000)
    seen: list[object] = []
    real = ingest_pool.ingest_parallel

    def spy(store: object, tasks: object, summary: object) -> None:
        def recorded():  # type: ignore[no-untyped-def]
            for task in tasks:  # type: ignore[attr-defined]
                seen.append(task)
                yield task

        real(store, recorded(), summary)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_pool, "ingest_parallel", spy)
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
    monkeypatch.setattr(ingest_pool, "TASK_BYTES", 50_000)
    ranges = ingest_pool.file_ranges(str(path))
    first = next(ranges)
    with path.open("rb") as handle:
        assert first[1:3] == (0, line_boundary(handle, 50_000))
    os.truncate(path, 60_000)  # cut while the workers read it
    with pytest.raises(OSError, match="shrank"):
        list(itertools.islice(ranges, 100))


def test_a_worker_refuses_a_range_of_a_file_cut_or_replaced_after_it_was_handed_out(
    tmp_path: Path, jsonl: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The main process hands out ranges ahead of the workers, so they check the file
    themselves: fewer lines, or another file's lines, would be recorded silently."""
    path, _ = jsonl
    monkeypatch.setattr(ingest_pool, "TASK_BYTES", 50_000)
    ranges = list(ingest_pool.file_ranges(str(path)))
    assert len(ranges) > 3
    *_, (name, start, end, identity) = ranges
    whole = parse_range(name, start, end, identity, FIELDS)
    assert whole[0] > 0 and whole[3] is not None
    os.unlink(whole[3])
    os.truncate(path, end - 10)
    with pytest.raises(OSError, match="shrank"):
        parse_range(name, start, end, identity, FIELDS)
    rotated = tmp_path / "entries.jsonl.1"
    os.replace(path, rotated)  # logrotate: the old file moves away, a new one takes its name
    path.write_bytes(rotated.read_bytes() + b"\n" * 100)
    with pytest.raises(OSError, match="replaced"):
        parse_range(name, 0, ranges[0][2], identity, FIELDS)


def test_one_checkpoint_for_all_the_files_of_an_ingest(
    tmp_path: Path, jsonl: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, lines = jsonl
    small = []
    for number in range(3):
        small.append(tmp_path / f"small-{number}.jsonl")
        small[-1].write_text("\n".join(lines[number * 50 : number * 50 + 50]) + "\n")
    monkeypatch.setattr(ingest_pool, "TASK_BYTES", 50_000)
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
    monkeypatch.setattr(ingest_pool, "TASK_BYTES", 50_000)
    monkeypatch.setattr(ingest_pool, "TASK_LINES", 40)
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


def test_of_two_different_entries_with_one_insert_id_the_first_is_kept_however_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """insertIds are unique per log, not across projects: when two different entries
    share one, the first in input order wins, in one worker task or across them, in
    workers or in-process (the store keeps the row it already has)."""
    files = []
    for number, image in enumerate(["nginx:1", "redis:7", "busybox:1.36"]):
        lines = [_entry(number * 1000 + n) for n in range(120)]
        lines.insert(60, json.dumps(kubelet_entry("shared", WHEN, "Pulling", image)))
        files.append(tmp_path / f"part-{number}.jsonl")
        files[-1].write_text("\n".join(lines) + "\n")

    def stored(name: str) -> str:
        with DuckDBStore(tmp_path / f"{name}.duckdb") as store:
            pulls.ingest(store, [str(f) for f in files])
            row = store._con.execute(
                "SELECT image FROM pull_events WHERE insert_id = 'shared'"
            ).fetchone()
        assert row is not None
        return str(row[0])

    monkeypatch.setattr(ingest_pool, "WORKERS", 1)
    assert stored("serial") == "nginx:1"
    monkeypatch.setattr(ingest_pool, "WORKERS", 2)
    assert stored("one-task") == "nginx:1"  # all 363 lines in one in-process task
    monkeypatch.setattr(ingest_pool, "TASK_LINES", 200)
    assert stored("workers") == "nginx:1"  # tasks span files; the pool runs


def test_an_unreadable_input_fails_before_anything_is_read(
    tmp_path: Path, jsonl: tuple[Path, list[str]]
) -> None:
    path, _ = jsonl
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
            pulls.ingest(store, [str(path), str(tmp_path / "nope.jsonl")])
        with pytest.raises(ValueError, match="only once"):
            pulls.ingest(store, ["-", str(path), "-"])
        assert store.count_rows("pull_events") == 0


def test_a_failed_ingest_closes_the_file_it_was_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packed = tmp_path / "entries.jsonl.gz"  # more than the first read of an input
    packed.write_bytes(gzip.compress("\n".join(_entry(n) for n in range(5000)).encode()))
    monkeypatch.setattr(ingest_pool, "TASK_LINES", 100)
    monkeypatch.setattr(ingest_pool, "LOAD_FILES", 1)  # the first load fails, mid-file
    monkeypatch.setattr(ingest_pool, "HEAD_CHARS", 20_000)
    monkeypatch.setattr(events.files, "_CHUNK", 20_000)

    def open_files() -> list[str]:
        fds = Path("/proc/self/fd")
        return [str(packed) for fd in fds.iterdir() if _target(fd) == str(packed)]

    with DuckDBStore(tmp_path / "s.duckdb") as store:
        monkeypatch.setattr(store, "record_events_csv", _disk_full)
        with pytest.raises(StoreError, match="disk full") as failure:
            pulls.ingest(store, [str(packed)])
        assert failure.value is not None  # the exception (and its traceback) still held
        assert open_files() == []


def _target(fd: Path) -> str:
    try:
        return os.readlink(fd)
    except OSError:
        return ""


def _disk_full(*args: object, **kwargs: object) -> int:
    raise StoreError("recording pull events: disk full")


def test_a_cut_gzip_file_is_an_error_that_names_it(
    tmp_path: Path, jsonl: tuple[Path, list[str]]
) -> None:
    path, _ = jsonl
    packed = gzip.compress(path.read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    with (
        DuckDBStore(tmp_path / "s.duckdb") as store,
        pytest.raises(OSError, match=r"cut\.jsonl\.gz: not a whole gzip file"),
    ):
        pulls.ingest(store, [str(cut)])


@pytest.mark.parametrize("told", [False, True])
def test_a_statement_of_several_files_keeps_the_first_files_event(
    tmp_path: Path, told: bool
) -> None:
    """INSERT OR IGNORE alone keeps an arbitrary one of a statement's duplicates: the
    store orders the rows by file, or leaves out the later copies it is told of."""
    paths: list[str] = []
    for number, image in enumerate(["nginx:1", "redis:7", "busybox:1.36", "alpine:3"]):
        lines = [_entry(number * 10_000 + n) for n in range(2000)]
        shared = json.dumps(kubelet_entry("shared", WHEN, "Pulling", image))
        # last in the first file, first in the others: a scan reaches the others' first
        lines.insert(len(lines) if number == 0 else 0, shared)
        written = parse_lines(lines, FIELDS)[3]
        assert written is not None
        paths.append(written)
    later = [(path, "shared") for path in paths[1:]] if told else None
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        try:
            assert store.record_events_csv(paths, later_copies=later) == 4 * 2000 + 1
        finally:
            for path in paths:
                os.unlink(path)
        row = store._con.execute("SELECT image FROM pull_events WHERE insert_id = 'shared'")
        assert row.fetchone() == ("nginx:1",)


def test_a_named_pipe_is_read_once_not_opened_to_check_it(
    tmp_path: Path, jsonl: tuple[Path, list[str]]
) -> None:
    """``armirror pulls FIFO`` (or ``<(zcat …)``) reads the pipe once.  The up-front
    check does not open a pipe: a writer quick enough to write between that open and
    the real one would get EPIPE, and the read would wait for a writer that has gone
    (a race this test cannot force; it guards that pipes work at all)."""
    path, _ = jsonl
    fifo = tmp_path / "entries.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        try:
            with fifo.open("wb") as pipe:
                pipe.write(path.read_bytes())
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    store = f"duckdb://{tmp_path}/s.duckdb"
    command = [str(Path(sys.executable).parent / "armirror"), "pulls", str(fifo)]
    done = subprocess.run(
        [*command, "--store", store, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert "read 302 entries" in done.stderr


def test_the_input_check_does_not_open_a_pipe(tmp_path: Path) -> None:
    """Opening a FIFO for reading waits for a writer: a check that opened one would
    still be waiting here."""
    fifo = tmp_path / "entries.fifo"
    os.mkfifo(fifo)
    checker = threading.Thread(target=pulls._check_inputs, args=([str(fifo)],), daemon=True)
    checker.start()
    checker.join(timeout=5)
    waited = checker.is_alive()
    if waited:  # it opened the pipe: be its writer, so that it ends, then fail
        os.close(os.open(fifo, os.O_WRONLY))
        checker.join(timeout=5)
    assert not waited, "the check opened the pipe and waited for a writer"
