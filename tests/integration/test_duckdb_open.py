"""Several armirror processes opening one DuckDB file that does not exist yet.

`armirror copy` records into the default store, so two copies started together (or a
copy beside `pulls`) may both be the first to open it.  DuckDB creates the file and
only then locks it, so the second process could open a file still being written and
fail with "not a valid DuckDB database".  A lock conflict is expected (one writer at a
time; callers wait), an invalid file never.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

OPENER = """
import sys, time
from armirror.store import StoreError
from armirror.store.duckdb import DuckDBStore
path, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    pass
for _ in range(400):
    try:
        DuckDBStore(path).close()
        break
    except StoreError as exc:
        if "lock" not in str(exc):
            print("INVALID", exc, flush=True)
            sys.exit(1)
        time.sleep(0.01)
else:
    sys.exit(2)
"""


def test_processes_racing_to_create_the_store_never_see_a_half_made_file(tmp_path: Path) -> None:
    for round_ in range(3):
        path = tmp_path / f"round{round_}" / "armirror.duckdb"
        start = time.time() + 1.5  # every process is up and spinning by then
        openers = [
            subprocess.Popen(
                [sys.executable, "-c", OPENER, str(path), str(start)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(4)
        ]
        outcomes = [(p.wait(timeout=60), p.stdout.read() if p.stdout else "") for p in openers]
        assert all(code == 0 for code, _ in outcomes), (round_, outcomes)


def test_a_store_file_left_empty_is_made_whole(tmp_path: Path) -> None:
    """The file a creation race (or a crash between create and write) leaves behind:
    zero bytes.  DuckDB calls it "not a valid DuckDB database" on every open after, so
    one unlucky moment broke the default store for good."""
    from armirror.store.duckdb import DuckDBStore

    path = tmp_path / "armirror.duckdb"
    path.touch()
    with DuckDBStore(path) as store:
        assert store.count_rows("pull_events") == 0
    assert path.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["armirror.duckdb"]  # no leftovers


def test_a_store_another_process_made_meanwhile_is_the_one_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race made certain: the file is missing when looked for, and another process
    makes it (and writes to it) while this one prepares its own.  This one's open then
    uses that file as it stands; replacing it would drop what the other wrote, and not
    ignoring the clash would fail the open."""
    import duckdb
    from armirror.store.duckdb import DuckDBStore

    path = tmp_path / "armirror.duckdb"
    connect = duckdb.connect

    def other_process_first(database: str, *args: object, **kwargs: object) -> object:
        if database != str(path) and not path.exists():  # this one's scratch file
            with connect(str(path)) as other:
                other.execute("CREATE TABLE written_by_the_other (n INTEGER)")
        return connect(database, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(duckdb, "connect", other_process_first)
    with DuckDBStore(path) as store:
        tables = store._rows("SELECT table_name FROM information_schema.tables")
    assert "written_by_the_other" in {row["table_name"] for row in tables}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["armirror.duckdb"]  # no leftovers
