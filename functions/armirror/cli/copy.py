"""``armirror copy``: copy images, every platform and signature, to the mirror."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

import click

from armirror.cli import (
    check_prefix,
    copy_plan,
    destination_option,
    format_option,
    image_file_option,
    make_registry_client,
    output,
    read_image_list,
    registry_options,
)
from armirror.cli.store import check_store, open_store, store_option

if TYPE_CHECKING:
    from armirror.reference import Reference
    from armirror.registry import CopyResult, RegistryClient


@click.command()
@click.argument("images", nargs=-1)
@image_file_option
@destination_option(
    "Destination prefix, e.g. us-docker.pkg.dev/PROJECT/REPOSITORY "
    "(env ARMIRROR_DESTINATION). Images land at PREFIX/<source host>/<repository>."
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan and copy nothing: would-copy or up-to-date, bytes to move, "
    "and the manifest GETs the copy will cost at each registry.",
)
@click.option("--all-tags", is_flag=True, help="Copy every tag of each named repository.")
@click.option(
    "--tags",
    "tag_pattern",
    metavar="REGEX",
    help="Copy the tags of each named repository that REGEX matches in full, "
    "e.g. '1\\.2[0-9]\\..*'.",
)
@click.option(
    "--max-tags",
    default=100,
    show_default=True,
    type=click.IntRange(1, 10000),
    help="Refuse a repository where more tags than this match --all-tags/--tags.",
)
@click.option(
    "-j",
    "--jobs",
    default=8,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Blobs in flight at once (up to 32 images are checked at once whatever this is).",
)
@store_option
@click.option("--no-record", is_flag=True, help="Do not record the results in the store.")
@format_option
@registry_options
def copy(
    images: tuple[str, ...],
    image_file: str | None,
    prefix: str,
    dry_run: bool,
    all_tags: bool,
    tag_pattern: str | None,
    max_tags: int,
    jobs: int,
    store_url: str | None,
    no_record: bool,
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
    HEAD requests only (a HEAD is not a Docker Hub pull). Results are recorded in the
    store that `pulls` and `report` use (--no-record to skip), so `report` counts them.
    An interrupted copy resumes where it stopped when run again.
    \b
    Behind a proxy: HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY are honoured as
    curl reads them (credentials in the proxy URL; loopback always direct).
    \b
    Exit status 1 when any image failed (or, with --dry-run, could not be planned),
    2 for bad input, 130 when interrupted.
    """
    pattern = copy_plan.tag_pattern(all_tags, tag_pattern)
    pairs = _pairs(read_image_list(images, image_file), prefix, expand=pattern is not None)
    record = not (dry_run or no_record)
    if record:  # a wrong --store or missing credentials stop the run before any copy
        check_store(store_url, hint=NO_RECORD_HINT)
    if pattern is not None:
        pairs = asyncio.run(copy_plan.expand(pairs, pattern, max_tags, upstreams, insecure, prefix))
    if dry_run:
        plans = asyncio.run(copy_plan.plan(pairs, upstreams, insecure, jobs))
        copy_plan.show_plan(plans, output_format)
        sys.exit(output.EXIT_FAILURE if any(p.error for p in plans) else output.EXIT_OK)
    results = _copy(pairs, upstreams, insecure, jobs, show_progress=output_format == "table")
    unrecorded = _record(results, store_url) if record else None
    if output_format == "json":
        output.emit_json([result.to_json() for result in results])
    else:
        _print_copy_table(results, prefix.rstrip("/"))
    if unrecorded:
        output.error(f"the copies are done but could not be recorded in the store: {unrecorded}")
    failed = unrecorded or any(r.status == "failed" for r in results)
    sys.exit(output.EXIT_FAILURE if failed else output.EXIT_OK)


NO_RECORD_HINT = "--no-record copies without recording"
#: How long recording waits for another armirror process to let go of a DuckDB file.
RECORD_WAIT_SECONDS = 30.0


def _pairs(names: list[str], prefix: str, *, expand: bool) -> list[tuple[Reference, Reference]]:
    from armirror.reference import InvalidReference, destination_for, parse

    check_prefix(prefix)
    if not names:
        output.bad_input("name at least one image, or a file with -f")
    pairs, problems = [], []
    for name in dict.fromkeys(names):
        try:
            source = parse(name)
            if expand and (source.digest or name.rsplit("/", 1)[-1].count(":")):
                problems.append(f"{name}: --all-tags/--tags take a repository, without tag")
                continue
            pairs.append((source, destination_for(source, prefix)))
        except InvalidReference as exc:
            problems.append(str(exc))
    for problem in problems[:-1]:
        output.error(problem)
    if problems:
        output.bad_input(problems[-1])
    return pairs


def _copy(
    pairs: list[tuple[Reference, Reference]],
    upstreams: tuple[str, ...],
    insecure: tuple[str, ...],
    jobs: int,
    *,
    show_progress: bool,
) -> list[CopyResult]:
    from armirror.cli.progress import PlainCopyProgress, RichCopyProgress

    progress: Any = None
    if show_progress and output.verbosity >= output.NORMAL:
        sources = [str(source) for source, _ in pairs]
        progress = (RichCopyProgress if sys.stderr.isatty() else PlainCopyProgress)(sources)

    named = [ref for pair in pairs for ref in pair]

    async def run() -> list[CopyResult]:
        async with make_registry_client(upstreams, insecure, jobs, named=named) as client:
            return await _copy_all(client, pairs, jobs, progress)

    if progress is None:
        return asyncio.run(run())
    with progress:
        return asyncio.run(run())


async def _copy_all(
    client: RegistryClient, pairs: list[tuple[Reference, Reference]], jobs: int, progress: Any
) -> list[CopyResult]:
    """Copier.copy_many, telling the display when each image leaves the queue."""
    from armirror.registry import Copier

    copier = Copier(client, jobs=jobs, progress=progress)
    # Images in flight: as many as the copier checks at once (32), whatever -j says; -j
    # bounds the blobs moving (issue 13 §3).
    slots = asyncio.Semaphore(copier.checks)

    async def one(source: Reference, destination: Reference) -> CopyResult:
        async with slots:
            if progress is not None:
                progress.started(str(source))
            return await copier.copy(source, destination)

    return list(await asyncio.gather(*(one(s, d) for s, d in pairs)))


def _record(results: list[CopyResult], store_url: str | None) -> str | None:
    """Record every result so `report` counts it; why not, when the store refused.

    The store is opened only now, for a moment: a DuckDB file has one writer at a time,
    so two copies running side by side take turns here instead of one failing at start.
    """
    import time

    from armirror.store import StoreError

    deadline = time.monotonic() + RECORD_WAIT_SECONDS
    while True:
        try:
            store = open_store(store_url, hint=NO_RECORD_HINT)
            break
        except click.ClickException as exc:
            if time.monotonic() >= deadline:
                return exc.format_message()
            time.sleep(0.2)
    try:
        store.record_copies(results)
    except StoreError as exc:
        return str(exc)
    finally:
        store.close()
    output.detail(f"recorded {len(results)} results in {store_url or 'the default store'}")
    return None


STYLES = {"copied": "green", "up-to-date": "cyan", "failed": "bold red"}


def _print_copy_table(results: list[CopyResult], prefix: str) -> None:
    from rich.console import Console

    from armirror.cli.progress import short_digest, short_reference
    from armirror.cli.tables import Cell, Column, print_table

    console = Console()
    print_table(
        console,
        [
            Column("image"),
            Column("status", whole=True),
            Column("digest", whole=True),
            Column("copied", justify="right", whole=True),
        ],
        [
            [
                short_reference(r.source),
                Cell(r.status, STYLES[r.status]),
                short_digest(r.digest),
                output.human_bytes(r.bytes_copied),
            ]
            for r in results
        ],
    )
    for r in results:
        if r.error:
            output.error(f"{short_reference(r.source)}: {r.error}")
    counts = {s: sum(1 for r in results if r.status == s) for s in STYLES}
    output.info(
        f"{counts['copied']} copied, {counts['up-to-date']} up-to-date, {counts['failed']} failed; "
        f"{output.human_bytes(sum(r.bytes_copied for r in results))} moved; "
        f"destination {prefix}/<registry>/<repository>"
    )
