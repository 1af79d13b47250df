"""``armirror pulls``: record exported kubelet pull logs and rank images by demand."""

from __future__ import annotations

import sys
from typing import Any

import click

from armirror.cli import When
from armirror.cli.output import emit_json


@click.command()
@click.argument("files", nargs=-1, metavar="[FILE...|-]")
@click.option(
    "--store",
    "store_url",
    envvar="ARMIRROR_STORE",
    metavar="URL",
    help="duckdb:///PATH (default $XDG_DATA_HOME/armirror/armirror.duckdb) or "
    "bigquery://PROJECT/DATASET (env ARMIRROR_STORE).",
)
@click.option("--since", type=When(), help="Rank events from this time on (e.g. 2026-10-01, 7d).")
@click.option("--until", type=When(), help="Rank events before this time.")
@click.option("--top", default=20, show_default=True, type=click.IntRange(1), help="Rows to show.")
@click.option("--third-party-only", is_flag=True, help="Leave out Artifact/Container Registry.")
@click.option(
    "--sink-table",
    metavar="PROJECT.DATASET.events_*",
    help="Rank straight from a log sink's BigQuery tables instead of the store.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
def pulls(
    files: tuple[str, ...],
    store_url: str | None,
    since: Any,
    until: Any,
    top: int,
    third_party_only: bool,
    sink_table: str | None,
    output_format: str,
) -> None:
    """Record exported kubelet pull logs, then rank images by pulls and rate limits.

    \b
    FILE is `gcloud logging read --format=json` output, JSON lines, or a BigQuery
    sink table's newline-delimited export (.gz is fine; '-' is stdin). Files are
    streamed and recording is idempotent: reading a file twice counts nothing twice
    (of one insertId, the first entry read is kept). Many files (hourly exports) are
    read as one input; a FILE that cannot be opened stops the run before anything is
    recorded. Without FILE, only the store is queried.
    \b
    One row per normalised reference (nginx = docker.io/library/nginx:latest):
    pulls (pulls started), rate_limited (refused with 429/toomanyrequests), failures
    (all failed pulls), distinct clusters, first and last seen. "Already present on
    machine" is not a pull. Rate-limited images are marked in the table.
    A summary of what was read and skipped goes to stderr.
    """
    from armirror import pulls as pulls_module
    from armirror.store import StoreError, open_store

    if sink_table and files:
        raise click.UsageError("give FILEs or --sink-table, not both")
    summary = None
    try:
        if sink_table:
            ranking, summary = pulls_module.rank_sink_table(
                sink_table,
                since=since,
                until=until,
                third_party_only=third_party_only,
                limit=top,
            )
        else:
            store = open_store(store_url)
            try:
                if files:
                    summary = pulls_module.ingest(store, files)
                ranking = store.top_images(since, until, third_party_only, top)
            finally:
                store.close()
    except (StoreError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if summary is not None:
        skipped = ", ".join(f"{code} {n}" for code, n in sorted(summary.skipped.items()))
        click.echo(
            f"read {summary.entries} entries: {summary.events} events, "
            f"{summary.recorded} new; skipped {sum(summary.skipped.values())}"
            + (f" ({skipped})" if skipped else ""),
            err=True,
        )
    rows = [row.to_json() for row in ranking]
    if output_format == "json":
        emit_json(rows)
    elif output_format == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["reference"])
        writer.writeheader()
        writer.writerows(rows)
    else:
        _print_pulls_table(ranking)


def _print_pulls_table(ranking: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from armirror.reference import parse

    console = Console()
    if not ranking:
        console.print("no pull events recorded for that window")
        return
    table = Table(show_edge=False, caption="⚠ pulls refused by a rate limit; times in UTC")
    table.add_column("image", overflow="fold", min_width=24, ratio=1)
    for name in ("pulls", "limited", "failed", "clusters"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("last seen", no_wrap=True)
    for row in ranking:
        limited = row.rate_limited > 0
        table.add_row(
            ("⚠ " if limited else "") + parse(row.reference).familiar(),
            str(row.pulls),
            f"[bold]{row.rate_limited}[/]" if limited else "0",
            str(row.failures),
            str(row.clusters),
            row.last_seen.strftime("%m-%d %H:%M"),
            style="red" if limited else (None if row.third_party else "dim"),
        )
    console.print(table)
    limited_count = sum(1 for row in ranking if row.rate_limited)
    if limited_count:
        console.print(
            f"[bold red]{limited_count} image(s) rate-limited[/]: mirror them first "
            "(armirror copy IMAGE --to PREFIX)",
            highlight=False,
        )
