"""What people see: progress that tells the truth, tables and help that keep names whole.

Issue 15 §5 and §6.  The displays are driven with the events the copier sends and
rendered by rich into a recording console, so what is asserted is the text on screen.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from armirror.cli import cli
from armirror.cli.progress import (
    PlainCopyProgress,
    RichCopyProgress,
    Tally,
    short_digest,
    short_reference,
)
from armirror.cli.tables import Cell, Column, print_table
from armirror.registry import CopyResult
from click.testing import CliRunner
from rich.console import Console

SHA = "sha256:" + "1a2b3c4d5e6f" + "0" * 52
LONG = f"docker.io/library/busybox:1.36@{SHA}"
NAMES = [
    "docker.io/library/busybox:1.36",
    "quay.io/prometheus-operator/prometheus-config-reloader:v0.75.2",
    "us-docker.pkg.dev/my-project/mirror/docker.io/library/nginx:1.27",
]


def result(source: str, status: str, error: str | None = None, size: int = 0) -> CopyResult:
    now = datetime.now(UTC)
    return CopyResult(
        source, "d/" + source, status, digest=SHA, bytes_copied=size, error=error,  # type: ignore[arg-type]
        started_at=now, finished_at=now,
    )  # fmt: skip


def test_digests_are_abbreviated() -> None:
    assert short_digest(SHA) == "sha256:1a2b3c4d5e6f"
    assert short_reference(LONG) == "busybox:1.36@sha256:1a2b3c4d5e6f"
    assert short_reference(f"quay.io/a/b@{SHA}") == "quay.io/a/b@sha256:1a2b3c4d5e6f"
    assert short_digest(None) == ""


def test_the_overall_line_counts_images_bytes_rate_and_eta() -> None:
    tally = Tally(["a", "b", "c"])
    assert tally.overall().startswith("0/3 images, 0 B of 0 B+")  # sizes not known yet
    tally.images["a"].total, tally.images["a"].done = 2_000_000, 2_000_000
    tally.images["b"].total, tally.images["b"].done = 2_000_000, 1_000_000
    tally.images["c"].total = 1_000_000
    tally.finished = 1
    line = tally.overall()
    assert line.startswith("1/3 images, 3.0 MB of 5.0 MB, ")
    assert "/s, ETA " in line and "ETA ?" not in line


def rich_screen(progress: RichCopyProgress) -> str:
    """The last frame drawn (a recording console keeps every refresh)."""
    progress.console.export_text(clear=True)
    progress.progress.refresh()
    return progress.console.export_text(clear=False)


def test_terminal_progress_shows_queued_and_failures_in_red_with_the_reason() -> None:
    console = Console(record=True, width=160, force_terminal=True, color_system="truecolor")
    sources = ["docker.io/library/ok:1", "docker.io/library/bad:1", LONG]
    display = RichCopyProgress(sources, console=console)
    with display:
        console.record = True
        display.started(sources[0])
        display.planned(sources[0], 1000)
        display.advanced(sources[0], 1000)
        display.finished(result(sources[0], "copied", size=1000))
        display.started(sources[1])
        display.planned(sources[1], 4000)
        display.advanced(sources[1], 1000)
        display.finished(result(sources[1], "failed", "blob sha256:ab: upstream answered 502"))
        screen = rich_screen(display)
    rows = {line.split()[0]: line for line in screen.splitlines() if line.strip()}
    assert "copied" in rows["ok:1"]
    assert "failed: blob sha256:ab: upstream answered 502" in rows["bad:1"]
    assert "queued" in rows["busybox:1.36@sha256:1a2b3c4d5e6f"]  # waiting, not "copying ?"
    assert "2/3 images" in rows["overall"]
    # the failed bar is not full and not green: it stopped where the bytes stopped
    assert display.progress.tasks[display.tasks[sources[1]]].completed == 1000
    coloured = [line for line in console.export_text(styles=True).splitlines() if "bad:1" in line]
    assert coloured and "31m" in coloured[-1]  # red (ANSI 31), bold or not


def test_plain_progress_writes_an_overall_line_periodically_and_each_failure() -> None:
    lines: list[str] = []
    ticked = threading.Event()

    def write(text: str) -> None:
        lines.append(text)
        if text.startswith("copying: "):
            ticked.set()

    display = PlainCopyProgress(["a:1", "b:1"], interval=0.05, write=write)
    with display:
        display.started("a:1")
        display.planned("a:1", 10)
        display.advanced("a:1", 5)
        assert ticked.wait(10)
        display.finished(result("b:1", "failed", "denied: HEAD b:1: 403\nsecond line"))
    assert any(line.startswith("copying: 0/2 images, 5 B of 10 B+") for line in lines), lines
    failures = [line for line in lines if line.startswith("failed: ")]
    assert failures == ["failed: b:1: denied: HEAD b:1: 403 second line"]


@pytest.mark.parametrize("width", [40, 60, 80, 120, 200])
def test_tables_never_split_a_name(width: int) -> None:
    console = Console(record=True, width=width)
    print_table(
        console,
        [Column("image"), Column("status", whole=True), Column("detail")],
        [[name, Cell("ok", "green"), "a detail that may fold " * 2] for name in NAMES],
    )
    text = console.export_text()
    for name in NAMES:
        assert name in text, (width, text)  # whole, on one line
    if width >= 120:  # wide enough: a table with a header row
        assert text.splitlines()[0].split()[0] == "image"
    else:  # narrow: one record per line, fields named
        assert "status: ok" in text


def test_copy_and_verify_help_keep_names_whole_at_80_columns() -> None:
    for command in ("copy", "verify", "rewrite", "report", "pulls", "scan"):
        page = CliRunner().invoke(cli, [command, "--help"], env={"COLUMNS": "80"}).stdout
        assert (
            "us-\n" not in page
            and "us-docker.pkg.dev/PROJECT/REPOSITORY" in page.replace("\n", " ")
        ) or command not in ("copy", "rewrite")
        for line in page.splitlines():
            assert not line.rstrip().endswith("-") or line.strip() == "-", (command, line)


def test_every_command_has_quiet_and_verbose() -> None:
    from armirror.cli import COMMANDS

    for name in COMMANDS:
        page = CliRunner().invoke(cli, [name, "--help"]).stdout
        assert "-q, --quiet" in page and "-v, --verbose" in page, name


def test_completion_scripts_complete_commands() -> None:
    for shell, marker in (
        ("bash", "complete -o"),
        ("zsh", "compdef"),
        ("fish", "complete --no-files --command armirror"),
    ):
        script = CliRunner().invoke(cli, ["completion", shell])
        assert script.exit_code == 0 and marker in script.stdout and "armirror" in script.stdout
    import os
    import subprocess
    import sys
    from pathlib import Path

    answer = subprocess.run(
        [str(Path(sys.executable).parent / "armirror")],
        env={**os.environ, "COMP_WORDS": "armirror co", "COMP_CWORD": "1",
             "_ARMIRROR_COMPLETE": "bash_complete"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert set(answer.stdout.split()) >= {"plain,copy", "plain,completion"}
