"""``armirror copy``: copy images, every platform and signature, to the mirror."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import click

from armirror.cli import FORMAT_TABLE_JSON, make_registry_client, read_image_list, registry_options
from armirror.cli.output import RichCopyProgress, emit_json, human_bytes

if TYPE_CHECKING:
    from armirror.registry import CopyResult


@click.command()
@click.argument("images", nargs=-1)
@click.option(
    "-f", "--file", "image_file", metavar="FILE", help="Read images, one a line ('-' for stdin)."
)
@click.option(
    "--to",
    "prefix",
    envvar="ARMIRROR_DESTINATION",
    required=True,
    metavar="PREFIX",
    help="Destination prefix, e.g. us-docker.pkg.dev/PROJECT/REPOSITORY "
    "(env ARMIRROR_DESTINATION). Images land at PREFIX/<source host>/<repository>.",
)
@click.option(
    "-j",
    "--jobs",
    default=8,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Images and blobs in flight at once.",
)
@click.option(
    "--format", "output_format", type=FORMAT_TABLE_JSON, default="table", show_default=True
)
@registry_options
def copy(
    images: tuple[str, ...],
    image_file: str | None,
    prefix: str,
    jobs: int,
    output_format: str,
    upstreams: tuple[str, ...],
    insecure: tuple[str, ...],
) -> None:
    """Copy images, every platform and signature, digest-exact, to PREFIX.

    \b
    Destination: PREFIX/<source registry host>/<repository>, same tag or digest; a
    registry port becomes "_PORT" (localhost:5000 -> localhost_5000).
    \b
    An image already at the destination with the same digest is "up-to-date", found with
    HEAD requests only (a HEAD is not a Docker Hub pull). Exit status 1 when any image
    failed, 2 for bad input.
    """
    from armirror.reference import InvalidReference, destination_for, parse
    from armirror.registry import copy_images

    names = read_image_list(images, image_file)
    if not names:
        raise click.UsageError("name at least one image, or a file with -f")
    pairs, problems = [], []
    for name in dict.fromkeys(names):
        try:
            source = parse(name)
            pairs.append((source, destination_for(source, prefix)))
        except InvalidReference as exc:
            problems.append(str(exc))
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(2)

    progress = RichCopyProgress() if output_format == "table" and sys.stderr.isatty() else None

    async def run() -> list[CopyResult]:
        async with make_registry_client(upstreams, insecure, jobs) as client:
            return await copy_images(pairs, client=client, jobs=jobs, progress=progress)

    if progress:
        with progress.progress:
            results = asyncio.run(run())
    else:
        results = asyncio.run(run())

    if output_format == "json":
        emit_json([result.to_json() for result in results])
    else:
        _print_copy_table(results, prefix.rstrip("/"))
    sys.exit(1 if any(r.status == "failed" for r in results) else 0)


def _print_copy_table(results: list[CopyResult], prefix: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from armirror.reference import parse

    table = Table(show_edge=False, caption=f"destination: {prefix}/<registry>/<repository>")
    table.add_column("image", overflow="fold")
    table.add_column("status")
    table.add_column("digest")
    table.add_column("copied", justify="right")
    styles = {"copied": "green", "up-to-date": "cyan", "failed": "bold red"}
    for r in results:
        table.add_row(
            parse(r.source).familiar(),
            f"[{styles[r.status]}]{r.status}[/]",
            (r.digest or "")[:19],
            human_bytes(r.bytes_copied),
        )
    console = Console()
    console.print(table)
    for r in results:
        if r.error:
            console.print(f"[red]{r.source}[/]: {r.error}", highlight=False)
    counts = {s: sum(1 for r in results if r.status == s) for s in styles}
    console.print(
        f"{counts['copied']} copied, {counts['up-to-date']} up-to-date, {counts['failed']} failed; "
        f"{human_bytes(sum(r.bytes_copied for r in results))} moved"
    )
