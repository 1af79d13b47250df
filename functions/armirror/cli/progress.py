"""Copy progress that tells the truth, on stderr.

At a terminal: one line per image (queued, checking, copying with a bar, then copied,
up-to-date, or failed in red with its reason) and one overall line: images done out of
total, bytes, rate and ETA.  Elsewhere (CI logs, a pipe): a plain overall line every few
seconds, and a line for each failure as it happens.  Digests are shortened on screen
(``sha256:1a2b3c4d5e6f``); the JSON output keeps them whole.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from armirror.cli.output import human_bytes, one_line

if TYPE_CHECKING:
    from armirror.registry import CopyResult

#: Seconds between plain progress lines when stderr is not a terminal
#: (ARMIRROR_PROGRESS_INTERVAL changes it, e.g. for a CI log).
PLAIN_INTERVAL = 5.0


def plain_interval() -> float:
    try:
        return max(0.05, float(os.environ.get("ARMIRROR_PROGRESS_INTERVAL", PLAIN_INTERVAL)))
    except ValueError:
        return PLAIN_INTERVAL


def _stderr_line(text: str) -> None:
    click.echo(text, err=True)


DIGEST_SHOWN = 12


def short_digest(digest: str | None) -> str:
    """``sha256:`` and the first 12 hex digits, as `docker images` shows IDs."""
    if not digest:
        return ""
    algorithm, _, hexdigits = digest.partition(":")
    return f"{algorithm}:{hexdigits[:DIGEST_SHOWN]}" if hexdigits else digest


def short_reference(text: str) -> str:
    """The familiar name with any digest shortened (``nginx:1.27@sha256:1a2b3c4d5e6f``)."""
    from armirror.reference import try_parse

    reference = try_parse(text)
    if reference is None:
        return text
    shown = reference.with_digest(None).familiar()
    return f"{shown}@{short_digest(reference.digest)}" if reference.digest else shown


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds + 0.5)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@dataclass
class _Image:
    state: str = "queued"
    total: int | None = None
    done: int = 0


class Tally:
    """Counts shared by both displays; callbacks may come from blob threads."""

    def __init__(self, sources: list[str]) -> None:
        self.images = {source: _Image() for source in sources}
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.finished = 0

    def overall(self) -> str:
        with self.lock:
            total_known = sum(i.total or 0 for i in self.images.values())
            done = sum(i.done for i in self.images.values())
            unplanned = sum(
                1 for i in self.images.values() if i.total is None and i.state != "finished"
            )
            finished = self.finished
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        eta = (total_known - done) / rate if rate > 0 and not unplanned else None
        total_text = human_bytes(total_known) + ("+" if unplanned else "")
        return (
            f"{finished}/{len(self.images)} images, {human_bytes(done)} of {total_text}, "
            f"{human_bytes(rate)}/s, ETA {eta_text(eta if done < total_known else 0.0)}"
        )

    # What the copier reports, as both displays count it.

    def start(self, source: str) -> None:
        with self.lock:
            self.images[source].state = "checking"

    def plan(self, source: str, total_bytes: int) -> None:
        with self.lock:
            image = self.images[source]
            image.state, image.total = "copying", total_bytes

    def advance(self, source: str, nbytes: int) -> None:
        with self.lock:
            self.images[source].done += nbytes

    def finish(self, source: str) -> None:
        with self.lock:
            image = self.images[source]
            image.state = "finished"
            if image.total is None:
                image.total = image.done
            self.finished += 1


class PlainCopyProgress:
    """For a non-terminal stderr: an overall line every few seconds, failures at once."""

    def __init__(
        self,
        sources: list[str],
        interval: float | None = None,
        write: Callable[[str], None] = _stderr_line,
    ) -> None:
        self.tally = Tally(sources)
        self.interval = plain_interval() if interval is None else interval
        self.write = write
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="armirror-progress", daemon=True)

    def __enter__(self) -> PlainCopyProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self.write(f"copying: {self.tally.overall()}")

    def started(self, source: str) -> None:
        self.tally.start(source)

    def planned(self, source: str, total_bytes: int) -> None:
        self.tally.plan(source, total_bytes)

    def advanced(self, source: str, nbytes: int) -> None:
        self.tally.advance(source, nbytes)

    def finished(self, result: CopyResult) -> None:
        self.tally.finish(result.source)
        if result.status == "failed":
            self.write(f"failed: {short_reference(result.source)}: {one_line(result.error)}")


class RichCopyProgress:
    """For a terminal: a row per image and an overall row, redrawn in place."""

    def __init__(self, sources: list[str], console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, ProgressColumn, TextColumn
        from rich.text import Text

        class StatusColumn(ProgressColumn):
            """The status as given: a Text, never read as markup or emoji (``:ab:``)."""

            def render(self, task: Any) -> Text:
                status = task.fields.get("status", "")
                return status if isinstance(status, Text) else Text(str(status))

        class StatusBar(BarColumn):
            """A bar that turns red where its image failed (it stops where bytes stopped)."""

            def render(self, task: Any) -> Any:
                bar = super().render(task)
                if task.fields.get("failed"):
                    bar.complete_style = bar.finished_style = "red"
                return bar

        self.tally = Tally(sources)
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}", style="bold", markup=False),
            StatusBar(bar_width=24, finished_style="green"),
            DownloadColumn(),
            StatusColumn(),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        for source in sources:
            self.tasks[source] = self.progress.add_task(
                short_reference(source),
                total=None,
                start=False,
                status=Text("queued", style="dim"),
                failed=False,
            )
        self.overall = self.progress.add_task(
            "overall", total=None, start=False, status=Text(self.tally.overall()), failed=False
        )

    def __enter__(self) -> RichCopyProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._refresh_overall()
        self.progress.stop()

    def _refresh_overall(self) -> None:
        from rich.text import Text

        self.progress.update(self.overall, status=Text(self.tally.overall(), style="bold"))

    def started(self, source: str) -> None:
        self.tally.start(source)
        self.progress.update(self.tasks[source], status=_text("checking"))

    def planned(self, source: str, total_bytes: int) -> None:
        self.tally.plan(source, total_bytes)
        task = self.tasks[source]
        self.progress.start_task(task)
        self.progress.update(task, total=total_bytes, status=_text("copying"))
        self._refresh_overall()

    def advanced(self, source: str, nbytes: int) -> None:
        self.tally.advance(source, nbytes)
        self.progress.advance(self.tasks[source], nbytes)
        self._refresh_overall()

    def finished(self, result: CopyResult) -> None:
        from rich.text import Text

        self.tally.finish(result.source)
        task = self.tasks[result.source]
        if result.status == "failed":
            # The bar stops where the bytes stopped, and turns red.
            status = Text.assemble(("failed", "bold red"), (f": {one_line(result.error)}", "red"))
            self.progress.update(task, status=status, failed=True)
        else:
            total = self.progress.tasks[task].total or 1
            colour = "green" if result.status == "copied" else "cyan"
            self.progress.update(
                task, completed=total, total=total, status=Text(result.status, style=colour)
            )
        self._refresh_overall()


def _text(value: str) -> Any:
    from rich.text import Text

    return Text(value)
