"""What commands show: JSON for scripts, tables and progress for people, exit codes.

Data goes to stdout, messages and progress to stderr, so ``armirror scan --format images
| armirror copy -f -`` works while both still talk to the person at the terminal.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from armirror.registry import CopyResult

#: Exit statuses, the same in every command.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def emit_json(value: Any) -> None:
    """Print a JSON document for scripts (dates and paths become strings)."""
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


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
