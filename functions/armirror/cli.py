"""The ``armirror`` command: parse options, call one function, format its output.

Every subcommand that reports results takes ``--format`` (``table`` for people, ``json``
for scripts); logic lives in the modules the subcommands call, never here.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import click

from armirror import __version__
from armirror.config import ConfigError, parse_upstreams

if TYPE_CHECKING:
    from armirror.registry import CopyResult, RegistryClient

FORMAT_TABLE_JSON = click.Choice(["table", "json"])


def emit_json(value: Any) -> None:
    """Print a JSON document for scripts (dates and paths become strings)."""
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def read_image_list(images: Iterable[str], image_file: str | None) -> list[str]:
    """Images from arguments plus ``-f FILE`` (``-`` is stdin), skipping blanks and comments."""
    names = list(images)
    if image_file:
        stream = sys.stdin if image_file == "-" else open(image_file, encoding="utf-8")  # noqa: SIM115
        with stream:
            for line in stream:
                line = line.split("#", 1)[0].strip()
                if line:
                    names.append(line)
    return names


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="armirror")
def cli() -> None:
    """Move container images off third-party registries onto Artifact Registry.

    \b
    The usual order:
      armirror scan .                       find third-party image references
      armirror pulls logs.json              rank them by pulls and rate-limit failures
      armirror copy -f images.txt --to PREFIX
      armirror rewrite . --to PREFIX        point files at the mirror
      armirror verify . --to PREFIX         prove it is complete and readable
      armirror report --html report.html    show that new pulls come from the mirror
    """


def registry_options[F: Callable[..., Any]](command: F) -> F:
    """The options every command that talks to registries shares."""
    command = click.option(
        "--insecure-registry",
        "insecure",
        multiple=True,
        metavar="HOST",
        help="Speak plain HTTP to HOST (loopback registries always use plain HTTP).",
    )(command)
    return click.option(
        "--upstream",
        "upstreams",
        multiple=True,
        metavar="REGISTRY=URL",
        help="Send requests for REGISTRY to URL while references keep their name, "
        "e.g. docker.io=https://mirror.gcr.io (repeatable; env ARMIRROR_UPSTREAMS).",
    )(command)


def make_registry_client(
    upstreams: tuple[str, ...], insecure: tuple[str, ...], jobs: int = 8
) -> RegistryClient:
    """A RegistryClient from the shared options plus ARMIRROR_UPSTREAMS."""
    from armirror.registry import RegistryClient

    env_items = [i for i in os.environ.get("ARMIRROR_UPSTREAMS", "").split(",") if i.strip()]
    try:
        mapping = parse_upstreams(env_items, "ARMIRROR_UPSTREAMS")
        mapping.update(parse_upstreams(list(upstreams), "--upstream"))
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None
    return RegistryClient(
        upstreams=mapping, insecure=set(insecure), max_connections=jobs, blob_threads=jobs
    )


class _RichCopyProgress:
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


@cli.command()
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

    progress = _RichCopyProgress() if output_format == "table" and sys.stderr.isatty() else None

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
            _human_bytes(r.bytes_copied),
        )
    console = Console()
    console.print(table)
    for r in results:
        if r.error:
            console.print(f"[red]{r.source}[/]: {r.error}", highlight=False)
    counts = {s: sum(1 for r in results if r.status == s) for s in styles}
    console.print(
        f"{counts['copied']} copied, {counts['up-to-date']} up-to-date, {counts['failed']} failed; "
        f"{_human_bytes(sum(r.bytes_copied for r in results))} moved"
    )


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
def serve(host: str, port: int) -> None:
    """Serve on_pull_event, copy_image, request_copy and refresh at POST /<name>.

    \b
    Configuration comes from the ARMIRROR_* environment, as in the cloud; by default
    the embedded store (DuckDB) and the in-process queue. ARMIRROR_DESTINATION is
    required. One log line per request and per copy.
    """
    import logging
    import signal

    from armirror.config import load
    from armirror.runtime import build_pipeline
    from armirror.server import serve as run_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = load()
        if not settings.destination:
            raise ConfigError("ARMIRROR_DESTINATION: set it to the destination prefix")
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    from armirror import pipeline

    pipeline.install(build_pipeline(settings))
    signal.signal(signal.SIGTERM, _raise_interrupt)
    run_server(host, port)


def _raise_interrupt(signum: int, frame: object) -> None:
    """SIGTERM stops `serve` the way Ctrl-C does, so the queue is closed cleanly."""
    raise KeyboardInterrupt


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
