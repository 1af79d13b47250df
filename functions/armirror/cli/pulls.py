"""``armirror pulls``: record exported kubelet pull logs and rank images by demand."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from armirror.cli import output
from armirror.cli.params import When
from armirror.cli.store import store_option

if TYPE_CHECKING:
    from armirror.store import ImageRanking


@click.command()
@click.argument(
    "files",
    nargs=-1,
    metavar="[FILE...|-]",
    type=click.Path(exists=True, dir_okay=False, readable=True, allow_dash=True),
)
@store_option
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
    type=click.Choice(["table", "json", "csv", "images"]),
    default="table",
    show_default=True,
    help="images: the third-party references, most pulled first, one a line, for "
    "`armirror copy -f -`.",
)
def pulls(
    files: tuple[str, ...],
    store_url: str | None,
    since: datetime | None,
    until: datetime | None,
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
    recorded, and input without a single log entry is refused. Without FILE, only the
    store is queried.
    \b
    Window (the same as `report`'s): the last 30 days, or the 30 up to the newest
    recorded pull when that is older, unless --since/--until say otherwise; an empty
    window names the range that has data. With --sink-table, every shard unless
    --since/--until say otherwise.
    \b
    One row per normalised reference (nginx = docker.io/library/nginx:latest):
    pulls (pulls started), rate_limited (refused with 429/toomanyrequests), failures
    (all failed pulls), distinct clusters, first and last seen. "Already present on
    machine" is not a pull. Rate-limited images are marked in the table.
    A summary of what was read and skipped goes to stderr.
    """
    if sink_table and files:
        output.bad_input("give FILEs or --sink-table, not both")
    if since and until and since >= until:
        output.bad_input(f"--since {since.isoformat()} is not before --until {until.isoformat()}")
    if sink_table:
        ranking, summary, note = _from_sink_table(sink_table, since, until, third_party_only, top)
    else:
        ranking, summary, note = _from_store(files, store_url, since, until, third_party_only, top)
    if summary is not None:
        skipped = ", ".join(f"{code} {n}" for code, n in sorted(summary.skipped.items()))
        output.info(
            f"read {summary.entries} entries: {summary.events} events, "
            f"{summary.recorded} new; skipped {sum(summary.skipped.values())}"
            + (f" ({skipped})" if skipped else "")
        )
    rows = [row.to_json() for row in ranking]
    if output_format == "json":
        output.emit_json(rows)
    elif output_format == "csv":
        output.emit_csv(rows, fields=_CSV_FIELDS)
    elif output_format == "images":
        for row in ranking:
            if row.third_party:
                click.echo(row.reference)
    else:
        _print_pulls_table(ranking)
    if not ranking:
        output.info(note)


#: Skip codes of input that holds no log entry at all (a YAML file, a CSV, a README).
_NOT_LOG_ENTRIES = ("bad_json", "not_a_log_entry", "too_large")

_CSV_FIELDS = [
    "reference",
    "registry",
    "third_party",
    "pulls",
    "rate_limited",
    "failures",
    "clusters",
    "first_seen",
    "last_seen",
]


def _from_store(
    files: tuple[str, ...],
    store_url: str | None,
    since: datetime | None,
    until: datetime | None,
    third_party_only: bool,
    top: int,
) -> tuple[list[ImageRanking], Any, str]:
    from armirror import pulls as pulls_module
    from armirror.cli.store import empty_window_note, open_store, window
    from armirror.store import StoreError

    store = open_store(store_url)
    try:
        summary = None
        if files:
            try:
                summary = pulls_module.ingest(store, files)
            except ValueError as exc:
                output.bad_input(str(exc))
            except (StoreError, OSError) as exc:
                output.failure(str(exc))
            not_entries = sum(summary.skipped.get(code, 0) for code in _NOT_LOG_ENTRIES)
            if summary.entries - not_entries == 0:
                output.bad_input(
                    f"no log entries in {', '.join(files)}: expected `gcloud logging read "
                    "--format=json` output, JSON lines, or a sink table export"
                )
        span = window(since, until, store)
        try:
            ranking = store.top_images(
                since or span.since, until or span.until, third_party_only, top
            )
        except StoreError as exc:
            output.failure(str(exc))
        note = empty_window_note(store, span) if not ranking else ""
    finally:
        store.close()
    return ranking, summary, note


def _from_sink_table(
    sink_table: str,
    since: datetime | None,
    until: datetime | None,
    third_party_only: bool,
    top: int,
) -> tuple[list[ImageRanking], Any, str]:
    from armirror import pulls as pulls_module

    try:
        ranking, summary = pulls_module.rank_sink_table(
            sink_table, since=since, until=until, third_party_only=third_party_only, limit=top
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sink-table") from None
    except Exception as exc:
        if type(exc).__name__ == "DefaultCredentialsError":
            output.failure(
                "no Google credentials for BigQuery: run `gcloud auth application-default "
                "login` or set GOOGLE_APPLICATION_CREDENTIALS"
            )
        if type(exc).__module__.startswith(("google.", "armirror.store")):
            output.failure(f"reading {sink_table}: {exc}")
        raise
    return ranking, summary, f"no pull events in {sink_table} for that window"


def _print_pulls_table(ranking: list[ImageRanking]) -> None:
    if not ranking:
        return
    from rich.console import Console

    from armirror.cli.progress import short_reference
    from armirror.cli.tables import Column, print_table

    console = Console()
    rows = []
    styles = []
    for row in ranking:
        limited = row.rate_limited > 0
        rows.append(
            [
                ("⚠ " if limited else "") + short_reference(row.reference),
                str(row.pulls),
                str(row.rate_limited),
                str(row.failures),
                str(row.clusters),
                row.last_seen.strftime("%Y-%m-%d %H:%M"),
            ]
        )
        styles.append("red" if limited else ("" if row.third_party else "dim"))
    print_table(
        console,
        [
            Column("image"),
            *(Column(name, justify="right", whole=True) for name in _NUMBERS),
            Column("last seen (UTC)", whole=True),
        ],
        rows,
        row_styles=styles,
    )
    limited_count = sum(1 for row in ranking if row.rate_limited)
    if limited_count:
        output.info(
            f"⚠ {limited_count} image(s) rate-limited: mirror them first "
            "(armirror copy IMAGE --to PREFIX)"
        )


_NUMBERS = ("pulls", "rate_limited", "failed", "clusters")
