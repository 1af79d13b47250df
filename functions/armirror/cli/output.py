"""What commands show: JSON for scripts, tables and progress for people, exit codes.

Data goes to stdout, messages and progress to stderr, so ``armirror scan --format images
| armirror copy -f -`` works while both still talk to the person at the terminal.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from armirror.registry import CopyResult

#: Exit statuses, the same in every command.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
#: verify only: nothing proven wrong, but something could not be checked.
EXIT_UNKNOWN = 3
EXIT_INTERRUPTED = 130

QUIET, NORMAL, VERBOSE = 0, 1, 2
#: How much goes to stderr besides errors (set by -q/-v; reset for each invocation).
verbosity = NORMAL

#: What a person reads after Ctrl-C: every command can be run again without harm.
INTERRUPTED = (
    "interrupted: run the same command again to resume (finished work is kept, "
    "nothing is half written)"
)
MESSAGE_LIMIT = 1000


def set_verbosity(level: int) -> None:
    """-q shows only errors; -v adds the library's log (retries, skipped steps) on stderr."""
    global verbosity
    verbosity = level
    logger = logging.getLogger("armirror")
    for handler in list(logger.handlers):
        if getattr(handler, "armirror_cli", False):
            logger.removeHandler(handler)
    if level >= VERBOSE:
        handler = logging.StreamHandler(sys.stderr)
        handler.armirror_cli = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def one_line(text: object) -> str:
    """A message squeezed onto one bounded line: errors never spill over many."""
    line = " ".join(str(text).split())
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 1] + "…"


def error(message: object) -> None:
    """An error line on stderr, whatever the verbosity."""
    click.echo(f"error: {one_line(message)}", err=True)


def warn(message: object) -> None:
    """A warning line on stderr, whatever the verbosity."""
    click.echo(f"warning: {one_line(message)}", err=True)


def info(message: str) -> None:
    """A message for people on stderr (summaries, hints); -q silences it."""
    if verbosity >= NORMAL:
        click.echo(message, err=True)


def detail(message: str) -> None:
    """Only with -v."""
    if verbosity >= VERBOSE:
        click.echo(message, err=True)


def bad_input(message: str, *, hint: str | None = None) -> NoReturn:
    """Stop with exit status 2: the command line or a file given to it is wrong."""
    raise click.UsageError(message + (f" ({hint})" if hint else ""))


def failure(message: str) -> NoReturn:
    """Stop with exit status 1: the input was fine but the work could not be done."""
    raise click.ClickException(message)


def show_traceback() -> bool:
    """ARMIRROR_TRACEBACK=1 shows where an unexpected error came from (for bug reports)."""
    return os.environ.get("ARMIRROR_TRACEBACK", "") not in ("", "0")


def emit_json(value: Any) -> None:
    """Print a JSON document for scripts (dates and paths become strings)."""
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def json_value(value: Any) -> Any:
    """One spelling for scripts: ISO 8601 times, lowercase booleans (in CSV too)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def emit_csv(rows: list[dict[str, Any]], *, fields: list[str]) -> None:
    """CSV with a header, the same field names and value spellings as the JSON."""
    import csv

    writer = csv.DictWriter(sys.stdout, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: json_value(value) for key, value in row.items()})


def human_bytes(n: float) -> str:
    """1000-based units, as registries and `docker images` show sizes."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class RichCopyProgress:
    """A progress bar per image on stderr, for people at a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[status]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def _task(self, source: str) -> Any:
        if source not in self.tasks:
            self.tasks[source] = self.progress.add_task(source, total=None, status="")
        return self.tasks[source]

    def planned(self, source: str, total_bytes: int) -> None:
        self.progress.update(self._task(source), total=total_bytes, status="copying")

    def advanced(self, source: str, nbytes: int) -> None:
        self.progress.advance(self._task(source), nbytes)

    def finished(self, result: CopyResult) -> None:
        task = self._task(result.source)
        total = self.progress.tasks[task].total or 1
        self.progress.update(task, completed=total, total=total, status=result.status)
