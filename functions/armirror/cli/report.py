"""``armirror report``: migration progress from the store, in text, JSON or HTML."""

from __future__ import annotations

from typing import Any

import click

from armirror.cli import FORMAT_TABLE_JSON, When
from armirror.cli.output import emit_json


@click.command()
@click.option(
    "--store", "store_url", envvar="ARMIRROR_STORE", metavar="URL",
    help="duckdb:///PATH (the default file) or bigquery://PROJECT/DATASET (env ARMIRROR_STORE).",
)  # fmt: skip
@click.option(
    "--since", type=When(), help="First day (YYYY-MM-DD or an age like 30d; default 30d)."
)
@click.option("--until", type=When(), help="Last day (default today).")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False),
    help="Also write a self-contained HTML report here.",
)
@click.option("--top", default=10, show_default=True, type=click.IntRange(1))
@click.option(
    "--format", "output_format", type=FORMAT_TABLE_JSON, default="table", show_default=True
)
def report(
    store_url: str | None,
    since: Any,
    until: Any,
    html_file: str | None,
    top: int,
    output_format: str,
) -> None:
    """Show migration progress: are new pulls coming from Artifact Registry?

    \b
    Daily pulls by registry class (third-party, Artifact Registry, other Google), the
    share still third-party, the top remaining third-party images, rate-limit failures
    over time, and copies done and failed. --html writes one file with inline SVG
    charts and no scripts, fonts or network: readable anywhere, attachable to a ticket.
    """
    from datetime import UTC, datetime, timedelta

    from armirror import report as report_module
    from armirror.store import StoreError, open_store

    last = (until or datetime.now(UTC)).date()
    first = since.date() if since else last - timedelta(days=29)
    if first > last:
        raise click.UsageError(f"--since {first} is after --until {last}")
    try:
        store = open_store(store_url)
        try:
            progress = report_module.gather(store, first, last, top=top)
        finally:
            store.close()
    except (StoreError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if html_file:
        from pathlib import Path

        Path(html_file).write_text(report_module.html_report(progress), encoding="utf-8")
    if output_format == "json":
        emit_json(progress.to_json())
    else:
        click.echo(report_module.terminal_summary(progress))
        if html_file:
            click.echo(f"HTML report: {html_file}")
