"""Every command over a matrix of bad inputs: exit status, one line on stderr, no traceback.

Issue 15 §3: bad input exits 2, a failure exits 1, Ctrl-C exits 130 with one line that
says a re-run resumes.  Each case runs the real console entry point in a subprocess, as
a user would, with a private XDG_DATA_HOME that must stay empty (a refused command
writes nothing) and no way to reach Google (so credentials are really missing).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from faultproxy import FaultProxy
from registry_checks import ROOT, cli_env, unique
from standins import images
from standins.registry import Registry
from waiting import wait_for

PREFIX = "localhost:5999/mirror"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad-inputs")
    (root / "notes.yaml").write_text("title: not a log\nitems: [1, 2]\n")
    (root / "README.md").write_text("# hello\n")
    (root / "empty").mkdir()
    (root / "binary.txt").write_bytes(b"\xff\xfe\x00nope")
    return {p.name: p for p in root.iterdir()}


def run(
    args: list[str], home: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ARMIRROR_", "GOOGLE_"))}
    clean.update(
        XDG_DATA_HOME=str(home / "data"),
        HOME=str(home),
        KUBECONFIG=str(home / "no-kubeconfig"),
        NO_GCE_CHECK="True",  # google-auth: no metadata server to ask here
        NO_COLOR="1",
        **(env or {}),
    )
    return subprocess.run(
        [sys.executable, "-m", "armirror.cli", *args],
        capture_output=True, text=True, env=clean, cwd=ROOT, timeout=timeout,
    )  # fmt: skip


def assert_one_line(result: subprocess.CompletedProcess[str], status: int) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == status, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert result.stdout == "", result.stdout
    return lines[0]


# (name, arguments with {placeholders}, the exit status, a word the message must hold)
BAD_INPUT = [
    ("unknown command", ["bogus"], "bogus"),
    ("quiet and verbose", ["scan", "-q", "-v"], "contradict"),
    ("scan: missing path", ["scan", "/nonexistent/path"], "does not exist"),
    ("scan: unknown file type", ["scan", "{README.md}"], "not a file scan reads"),
    ("scan: bad format", ["scan", "--format", "xml"], "xml"),
    ("scan: no kubeconfig", ["scan", "--cluster"], "Kubernetes config"),
    ("pulls: missing file", ["pulls", "nope.json"], "nope.json"),
    ("pulls: a directory", ["pulls", "{empty}"], "directory"),
    ("pulls: no log entries", ["pulls", "{notes.yaml}"], "no log entries"),
    ("pulls: a path as store", ["pulls", "--store", "/path"], "--store"),
    ("pulls: unknown store", ["pulls", "--store", "sqlite:///x"], "unknown store"),
    ("pulls: bad sink table", ["pulls", "--sink-table", "foo"], "PROJECT.DATASET"),
    ("pulls: files and sink", ["pulls", "{notes.yaml}", "--sink-table", "a.b.c"], "not both"),
    ("pulls: bad date", ["pulls", "--since", "last tuesday"], "last tuesday"),
    ("copy: no destination", ["copy", "nginx"], "--to"),
    ("copy: nothing to copy", ["copy", "--to", PREFIX], "at least one image"),
    ("copy: missing list", ["copy", "-f", "nope.txt", "--to", PREFIX], "nope.txt"),
    ("copy: binary list", ["copy", "-f", "{binary.txt}", "--to", PREFIX], "not a text file"),
    ("copy: bad reference", ["copy", "Not/Valid", "--to", PREFIX], "lowercase"),
    ("copy: bad prefix", ["copy", "nginx", "--to", "nohost"], "prefix"),
    ("copy: no jobs", ["copy", "nginx", "--to", PREFIX, "-j", "0"], "--jobs"),
    (
        "copy: tags twice",
        ["copy", "nginx", "--to", PREFIX, "--all-tags", "--tags", "1"],
        "not both",
    ),
    ("copy: bad regex", ["copy", "nginx", "--to", PREFIX, "--tags", "("], "--tags"),
    ("copy: tag and --all-tags", ["copy", "nginx:1", "--to", PREFIX, "--all-tags"], "repository"),
    ("copy: bad store", ["copy", "nginx", "--to", PREFIX, "--store", "/path"], "--store"),
    ("rewrite: no paths", ["rewrite", "--to", PREFIX], "PATHS"),
    ("rewrite: missing path", ["rewrite", "/nonexistent", "--to", PREFIX], "does not exist"),
    ("rewrite: bad prefix", ["rewrite", "{empty}", "--to", "nohost"], "prefix"),
    ("verify: nothing to do", ["verify", "--to", PREFIX], "name PATHs"),
    ("verify: missing list", ["verify", "-f", "nope.txt", "--to", PREFIX], "nope.txt"),
    ("verify: bad consumer", ["verify", "--consumer", "bob", "--to", PREFIX], "bob"),
    ("verify: consumer off AR", ["verify", "--consumer", "user:a@b.co", "--to", PREFIX], "--to"),
    ("verify: missing path", ["verify", "/nonexistent", "--to", PREFIX], "does not exist"),
    ("verify: no references", ["verify", "{empty}", "--to", PREFIX], "no third-party"),
    (
        "verify: project number",
        ["verify", "--to", PREFIX, "--discover-project-number", "p"],
        "number",
    ),
    ("report: a path as store", ["report", "--store", "/path"], "--store"),
    ("report: unwritable html", ["report", "--html", "/nonexistent/dir/r.html"], "/nonexistent"),
    (
        "report: inverted window",
        ["report", "--since", "2026-10-05", "--until", "2026-10-01"],
        "after",
    ),
    ("report: no rows", ["report", "--top", "0"], "--top"),
    ("serve: no destination", ["serve"], "ARMIRROR_DESTINATION"),
    ("serve: bad port", ["serve", "--port", "70000"], "--port"),
    ("completion: unknown shell", ["completion", "tcsh"], "tcsh"),
    ("redeploy: nothing chosen", ["redeploy"], "--cluster"),
]


@pytest.mark.parametrize(("name", "args", "word"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_exits_2_with_one_line(
    name: str, args: list[str], word: str, files: dict[str, Path], tmp_path: Path
) -> None:
    argv = []
    for arg in args:
        for name_, path in files.items():
            arg = arg.replace("{" + name_ + "}", str(path))
        argv.append(arg)
    result = run(argv, tmp_path)
    line = assert_one_line(result, 2)
    assert word in line, line
    # Refused before anything was done: nothing recorded anywhere.
    for path in (tmp_path / "data").rglob("*.duckdb"):
        with duckdb.connect(str(path), read_only=True) as db:
            for table in ("pull_events", "copies"):
                assert db.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)], table


def test_bigquery_without_credentials_is_one_line_exit_1(tmp_path: Path) -> None:
    for command in (["pulls"], ["report"], ["copy", "nginx", "--to", PREFIX]):
        result = run([*command, "--store", "bigquery://proj/ds"], tmp_path)
        line = assert_one_line(result, 1)
        assert "no Google credentials" in line and "gcloud auth application-default" in line


def test_a_taken_port_is_one_line_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(
            ["serve", "--port", str(port)],
            tmp_path,
            env={"ARMIRROR_DESTINATION": PREFIX, "ARMIRROR_STORE": "duckdb:///:memory:"},
        )
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use"]


@pytest.fixture
def black_hole() -> Iterator[tuple[int, threading.Event]]:
    """A TCP server that reads requests and never answers: a registry that hangs."""
    server = socket.create_server(("127.0.0.1", 0))
    asked = threading.Event()
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            held.append(conn)
            conn.settimeout(5)
            try:
                if conn.recv(4096):
                    asked.set()
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], asked
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def _ctrl_c_as_from_a_terminal() -> None:
    """SIGINT at its default in the command, whatever the test runner inherited.

    A job a non-interactive shell starts in the background (``make test &``) has SIGINT
    ignored, the child inherits that through exec, and Python then never raises
    KeyboardInterrupt: as it should, since Ctrl-C at a terminal is not meant for
    background jobs.  The command under test is meant to be in the foreground.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("command", ["copy", "verify"])
def test_ctrl_c_exits_130_with_one_line_saying_a_rerun_resumes(
    command: str, black_hole: tuple[int, threading.Event], tmp_path: Path
) -> None:
    """Both registries hang (the upstream is routed to the black hole too, so no DNS
    answer or failure can end the command first): Ctrl-C lands mid-request."""
    port, asked = black_hole
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARMIRROR_")}
    env.update(XDG_DATA_HOME=str(tmp_path), NO_COLOR="1")
    extra = ["-f", "-"] if command == "verify" else ["library/hang:1"]
    hole = f"127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "armirror.cli", command, *extra, "--to", f"{hole}/m",
         "--upstream", f"docker.io=http://{hole}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, cwd=ROOT, preexec_fn=_ctrl_c_as_from_a_terminal,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout and process.stderr
    process.stdin.write("library/hang:1\n" if command == "verify" else "")
    process.stdin.close()
    assert asked.wait(60), "the command never reached the registry"
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    stdout, stderr = process.stdout.read(), process.stderr.read()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "run the same command again to resume" in errors[0], stderr
    assert stdout == ""


# (what hangs at Ctrl-C: (registry, method, path) rules; the request to wait for)
HANGING_TRANSFERS = {
    "a blob download": ([("source", "GET", r"/blobs/sha256:")], ("source", "GET")),
    "a blob upload": ([("destination", "PUT", r"/blobs/uploads/")], ("destination", "PUT")),
    "a blob download, then the upload's cancel": (
        [("source", "GET", r"/blobs/sha256:"), ("destination", "DELETE", r"/blobs/uploads/")],
        ("source", "GET"),
    ),
}


@pytest.mark.parametrize("moment", list(HANGING_TRANSFERS))
def test_ctrl_c_in_a_blob_transfer_exits_130(
    moment: str, source_registry: Registry, dest_registry: Registry, tmp_path: Path
) -> None:
    """Ctrl-C while a transfer thread waits on a registry that stopped answering: the
    command ends at once, not when the request times out."""
    rules, (waited_side, waited_method) = HANGING_TRANSFERS[moment]
    image = images.single_image(unique("library/stuck"), "1", seed=31337)
    images.push(source_registry.url, image)
    with (
        FaultProxy(source_registry.url) as source,
        FaultProxy(dest_registry.url, rewrite_location=True) as destination,
    ):
        sides = {"source": source, "destination": destination}
        for side, method, path in rules:
            sides[side].add(method, path, "hang", times=100)
        prefix = f"{destination.url.removeprefix('http://')}/{unique('mirror')}"
        process = subprocess.Popen(
            [sys.executable, "-m", "armirror.cli", "copy", f"{image.repository}:1",
             "--to", prefix, "--upstream", f"docker.io={source.url}", "-j", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=cli_env(XDG_DATA_HOME=str(tmp_path)), cwd=ROOT,
            preexec_fn=_ctrl_c_as_from_a_terminal,
        )  # fmt: skip
        try:
            wait_for(
                lambda: sides[waited_side].count(waited_method, "", "hang"),
                f"the copy to wait on a {waited_method} at the {waited_side}",
                timeout=120,
            )
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=30)
        finally:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "run the same command again to resume" in errors[0], stderr
