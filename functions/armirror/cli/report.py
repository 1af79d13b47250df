"""``armirror report``: migration progress from the store, in text, JSON or HTML."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import click

from armirror.cli import format_option, output
from armirror.cli.params import When
from armirror.cli.store import store_option


@click.command()
@store_option
@click.option(
    "--since",
    type=When(),
    help="First day (YYYY-MM-DD or an age like 30d; default: 30 days before --until).",
)
@click.option(
    "--until",
    type=When(),
    help="Last day (default: today, or the newest day with data when that is older than 30 days).",
)
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write a self-contained HTML report here.",
)
@click.option("--top", default=10, show_default=True, type=click.IntRange(1, 1000))
@format_option
def report(
    store_url: str | None,
    since: datetime | None,
    until: datetime | None,
    html_file: str | None,
    top: int,
    output_format: str,
) -> None:
    """Show migration progress: are new pulls coming from Artifact Registry?

    \b
    Daily pulls by registry class (third-party, Artifact Registry, other Google), the
    share still third-party (last day, last 7 days and the window), the top remaining
    third-party images (marked when already mirrored) with when each was last seen,
    third-party pulls by cluster and namespace, rate-limit failures over time, and the
    copies `copy` and the pipeline recorded. A day without data is a gap, not a zero.
    \b
    Window (the same as `pulls`'): the last 30 days, or the 30 up to the newest recorded
    pull when that is older, unless --since/--until say otherwise; an empty window
    names the range that has data.
    --html writes one file with inline SVG charts and no scripts, fonts or network:
    readable anywhere, attachable to a ticket.
    """
    from armirror import report as report_module
    from armirror.cli.store import empty_window_note, open_store, window
    from armirror.store import StoreError

    target = _check_target(html_file) if html_file else None
    if since and until and since.date() > until.date():
        output.bad_input(f"--since {since.date()} is after --until {until.date()}")
    store = open_store(store_url)
    try:
        span = window(since, until, store)
        try:
            progress = report_module.gather(store, span.first, span.last, top=top)
        except StoreError as exc:
            output.failure(str(exc))
        note = empty_window_note(store, span) if progress.empty else ""
    finally:
        store.close()
    if target is not None:
        try:
            target.write_text(report_module.html_report(progress), encoding="utf-8")
        except OSError as exc:
            output.failure(f"cannot write {target}: {exc.strerror or exc}")
    if output_format == "json":
        output.emit_json(progress.to_json())
    else:
        click.echo(report_module.terminal_summary(progress, empty_note=note))
    if note:
        output.info(note)
    if target is not None:
        output.info(f"HTML report: {target}")


def _check_target(html_file: str) -> Path:
    """Refuse an --html path that cannot be written before reading anything (exit 2)."""
    target = Path(html_file)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise click.BadParameter(f"{parent} is not a directory", param_hint="--html")
    if not os.access(parent, os.W_OK):
        raise click.BadParameter(f"{parent} is not writable", param_hint="--html")
    return target
