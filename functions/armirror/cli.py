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
@click.argument("paths", nargs=-1, type=click.Path(exists=True, file_okay=True, dir_okay=True))
@click.option("--cluster", is_flag=True, help="Also list the images of every pod in the cluster.")
@click.option("--context", metavar="CTX", help="kubeconfig context for --cluster.")
@click.option("--all", "include_all", is_flag=True, help="Report first-party references too.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "images"]),
    default="table",
    show_default=True,
    help="images: one normalised reference a line, unique, for `armirror copy -f`.",
)
def scan(
    paths: tuple[str, ...],
    cluster: bool,
    context: str | None,
    include_all: bool,
    output_format: str,
) -> None:
    """Find third-party image references in PATHs (default .) and, with --cluster, pods.

    \b
    Reads Dockerfiles/Containerfiles (FROM, ARG defaults, COPY --from, RUN --mount
    from=), Kubernetes and Cloud Run manifests (YAML/JSON, every pod template),
    docker-compose, cloudbuild, kustomization and Helm values files, honouring
    .gitignore. Templates ({{ }}, ${VAR} without a default) are reported as unresolved.
    \b
    Exit status 1 when a file could not be read or parsed (or the cluster could not be
    listed); the scan still reports everything else. 2 for bad input.
    """
    from armirror.scan import scan_paths

    if not paths and not cluster:
        paths = (".",)
    result = scan_paths(paths, include_first_party=include_all)
    if cluster:
        from armirror.scan.cluster import load_api, scan_cluster

        try:
            api = load_api(context)
        except Exception as exc:  # kubeconfig problems surface as several exception types
            raise click.UsageError(f"--cluster: cannot load a Kubernetes config: {exc}") from None
        found, errors = scan_cluster(api, f"cluster:{context}" if context else "cluster")
        result.findings.extend(f for f in found if include_all or f.third_party is not False)
        result.errors.extend(errors)
    for error in result.errors:
        click.echo(f"error: {error.file}: {error.message}", err=True)
    if output_format == "json":
        emit_json([finding.to_json() for finding in result.findings])
    elif output_format == "images":
        for image in result.images():
            click.echo(image)
    else:
        _print_scan_table(result)
    sys.exit(1 if result.errors else 0)


def _print_scan_table(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    groups: dict[str, list[Any]] = {}
    unresolved = []
    for finding in result.findings:
        if finding.reference is None:
            unresolved.append(finding)
        else:
            groups.setdefault(str(finding.reference), []).append(finding)
    table = Table(show_edge=False)
    table.add_column("image", overflow="fold")
    table.add_column("registry")
    table.add_column("uses", justify="right")
    table.add_column("where", overflow="fold")
    for reference, findings in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        places = [f"{f.file}:{f.line}" if f.line else f.file for f in findings]
        shown = ", ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "")
        table.add_row(reference, findings[0].registry, str(len(findings)), shown)
    if groups:
        console.print(table)
    for finding in unresolved:
        place = f"{finding.file}:{finding.line}" if finding.line else finding.file
        console.print(
            f"[yellow]unresolved[/] {place} {finding.image!r}: {finding.problem}", highlight=False
        )
    files = len({f.file for f in result.findings})
    console.print(
        f"{sum(len(v) for v in groups.values())} references to {len(groups)} images in "
        f"{files} files; {len(unresolved)} unresolved; {result.files_scanned} files scanned"
        + (f"; {len(result.errors)} unreadable" if result.errors else ""),
        highlight=False,
    )


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--to",
    "prefix",
    envvar="ARMIRROR_DESTINATION",
    required=True,
    metavar="PREFIX",
    help="Destination prefix, e.g. us-docker.pkg.dev/PROJECT/REPOSITORY "
    "(env ARMIRROR_DESTINATION); the same mapping `armirror copy` uses.",
)
@click.option("--dry-run", is_flag=True, help="Print a unified diff; write nothing.")
@click.option(
    "--pin-digests",
    is_flag=True,
    help="Write tag@digest, the digest read at the destination with HEAD "
    "(a reference missing there is left alone).",
)
@click.option(
    "--include-first-party",
    is_flag=True,
    help="Also move Container Registry (gcr.io) references to PREFIX.",
)
@click.option(
    "--format", "output_format", type=FORMAT_TABLE_JSON, default="table", show_default=True
)
@registry_options
def rewrite(
    paths: tuple[str, ...],
    prefix: str,
    dry_run: bool,
    pin_digests: bool,
    include_first_party: bool,
    output_format: str,
    upstreams: tuple[str, ...],
    insecure: tuple[str, ...],
) -> None:
    """Point every third-party reference in PATHs at its copy under PREFIX.

    \b
    Only the references change: comments, quoting, key order, indentation and line
    endings stay as they were. Writes are atomic; a second run changes nothing.
    Unresolved templates are left alone and listed. Exit status 1 when a file could
    not be read, parsed or written, 2 for bad input.
    """
    from armirror.reference import InvalidReference, parse_prefix
    from armirror.rewrite import destination_digests, rewrite_paths

    try:
        parse_prefix(prefix)
    except InvalidReference as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from None
    resolver = None
    if pin_digests:

        def resolver(refs: list[Any]) -> Any:
            async def run() -> Any:
                async with make_registry_client(upstreams, insecure) as client:
                    return await destination_digests(refs, client)

            return asyncio.run(run())

    result = rewrite_paths(
        paths,
        prefix,
        dry_run=dry_run,
        include_first_party=include_first_party,
        resolve_digests=resolver,
    )
    for error in result.errors:
        click.echo(f"error: {error.file}: {error.message}", err=True)
    if output_format == "json":
        emit_json({"dry_run": dry_run, **result.to_json()})
    else:
        if dry_run and result.diff:
            click.echo(result.diff, nl=False)
        for item in result.skipped:
            f = item.finding
            click.echo(f"skipped {f.file}:{f.line} {f.image}: {item.reason}", err=True)
        for f in result.unresolved:
            click.echo(f"unresolved {f.file}:{f.line} {f.image!r}: {f.problem}", err=True)
        verb = "would change" if dry_run else "changed"
        click.echo(
            f"{len(result.files_changed)} files {verb}, {len(result.changes)} references "
            f"rewritten, {len(result.unresolved)} unresolved left as they are"
            + (f", {len(result.errors)} errors" if result.errors else "")
        )
    sys.exit(1 if result.errors else 0)


class _When(click.ParamType):
    """YYYY-MM-DD, an ISO 8601 time (UTC unless it says), or an age: 7d, 12h, 30m."""

    name = "DATE"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        from datetime import UTC, datetime, timedelta

        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        units = {"d": "days", "h": "hours", "m": "minutes"}
        if text[:-1].isdigit() and text[-1:] in units:
            return datetime.now(UTC) - timedelta(**{units[text[-1]]: int(text[:-1])})
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{text!r}: expected YYYY-MM-DD, an ISO time, or an age like 7d", param, ctx)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@cli.command()
@click.argument("files", nargs=-1, metavar="[FILE...|-]")
@click.option(
    "--store",
    "store_url",
    envvar="ARMIRROR_STORE",
    metavar="URL",
    help="duckdb:///PATH (default $XDG_DATA_HOME/armirror/armirror.duckdb) or "
    "bigquery://PROJECT/DATASET (env ARMIRROR_STORE).",
)
@click.option("--since", type=_When(), help="Rank events from this time on (e.g. 2026-10-01, 7d).")
@click.option("--until", type=_When(), help="Rank events before this time.")
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


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "-f", "--file", "image_file", metavar="FILE", help="Read images, one a line ('-' for stdin)."
)
@click.option(
    "--to", "prefix", envvar="ARMIRROR_DESTINATION", required=True, metavar="PREFIX",
    help="Destination prefix the images were copied to (env ARMIRROR_DESTINATION).",
)  # fmt: skip
@click.option(
    "--consumer", "consumers", multiple=True, metavar="PRINCIPAL",
    help="A principal that must be able to pull, e.g. serviceAccount:NAME@PROJECT.iam."
    "gserviceaccount.com (repeatable).",
)  # fmt: skip
@click.option(
    "--discover-project-number", "project_numbers", multiple=True, metavar="NUMBER",
    help="Add the Cloud Run service agent of this project number as a consumer (repeatable).",
)  # fmt: skip
@click.option(
    "--gke-node-sa", "node_accounts", multiple=True, metavar="EMAIL",
    help="Add a GKE node service account as a consumer (repeatable).",
)  # fmt: skip
@click.option("--iam-endpoint", metavar="HOST:PORT", hidden=True, help="IAM API endpoint override.")
@click.option("-j", "--jobs", default=8, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--format", "output_format", type=FORMAT_TABLE_JSON, default="table", show_default=True
)
@registry_options
def verify(
    paths: tuple[str, ...],
    image_file: str | None,
    prefix: str,
    consumers: tuple[str, ...],
    project_numbers: tuple[str, ...],
    node_accounts: tuple[str, ...],
    iam_endpoint: str | None,
    jobs: int,
    output_format: str,
    upstreams: tuple[str, ...],
    insecure: tuple[str, ...],
) -> None:
    """Prove the mirror is complete, current and readable.

    \b
    Images: every third-party reference `scan` finds in PATH..., and/or -f FILE.
    Each is ok, missing (not at the destination), stale (the upstream tag moved) or
    incomplete (a child manifest or blob is absent). Upstreams get HEADs only.
    \b
    Permissions (Artifact Registry destinations): every --consumer (plus discovered
    ones) must hold roles/artifactregistry.reader, or a role containing it, on the
    repository or its project. Missing grants come with the gcloud command and the
    Terraform `consumers` entry that fix them.
    \b
    Exit status 1 when anything is missing, stale, incomplete or unreadable.
    """
    from armirror.reference import InvalidReference, destination_for, parse
    from armirror.verify import check_images

    names = read_image_list((), image_file)
    if paths:
        from armirror.scan import scan_paths

        scanned = scan_paths(paths)
        for error in scanned.errors:
            click.echo(f"warning: {error.file}: {error.message}", err=True)
        names += [str(f.reference) for f in scanned.findings if f.reference and f.third_party]
    if not names and not (consumers or project_numbers or node_accounts):
        raise click.UsageError("name PATHs to scan, a file of images with -f, or consumers")
    pairs = []
    try:
        for name in dict.fromkeys(names):
            source = parse(name)
            pairs.append((source, destination_for(source, prefix)))
    except InvalidReference as exc:
        raise click.UsageError(str(exc)) from None

    async def run() -> list[Any]:
        async with make_registry_client(upstreams, insecure, jobs) as client:
            return await check_images(client, pairs, jobs=jobs)

    checks = asyncio.run(run()) if pairs else []
    findings: list[Any] = []
    if consumers or project_numbers or node_accounts:
        from armirror import iam

        everyone = list(consumers) + iam.discover_consumers(project_numbers, node_accounts)
        kwargs: dict[str, Any] = {}
        if iam_endpoint:
            kwargs["ar_client"] = iam.artifact_registry_client(endpoint=iam_endpoint)
            kwargs["projects_client"] = iam.projects_client(endpoint=iam_endpoint)
        findings = iam.check_readers(prefix, everyone, **kwargs)

    failed = any(c.status != "ok" for c in checks) or any(not f.ok for f in findings)
    if output_format == "json":
        emit_json(
            {
                "images": [c.to_json() for c in checks],
                "permissions": [f.to_json() for f in findings],
                "ok": not failed,
            }
        )
    else:
        _print_verify(checks, findings)
    sys.exit(1 if failed else 0)


def _print_verify(checks: list[Any], findings: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from armirror.reference import parse

    console = Console()
    styles = {"ok": "green", "missing": "bold red", "stale": "yellow", "incomplete": "bold red"}
    if checks:
        table = Table(show_edge=False, title="images")
        for column in ("image", "status", "detail"):
            table.add_column(column, overflow="fold")
        for c in checks:
            table.add_row(
                parse(c.source).familiar(), f"[{styles[c.status]}]{c.status}[/]", c.detail
            )
        console.print(table)
        counts = {s: sum(1 for c in checks if c.status == s) for s in styles}
        console.print(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no images")
    if findings:
        table = Table(show_edge=False, title="readers")
        for column in ("consumer", "status", "detail"):
            table.add_column(column, overflow="fold")
        for f in findings:
            colour = "green" if f.ok else "bold red"
            table.add_row(f.member, f"[{colour}]{f.status}[/]", f.detail)
        console.print(table)
        fixes = [f for f in findings if f.gcloud]
        if fixes:
            console.print("\nto fix:", style="bold")
            for f in fixes:
                console.print(f.gcloud, highlight=False, soft_wrap=True)
            from armirror.iam import terraform_consumers

            console.print("\nor in Terraform:", style="bold")
            console.print(terraform_consumers(fixes), highlight=False, soft_wrap=True)


@cli.command()
@click.option(
    "--store", "store_url", envvar="ARMIRROR_STORE", metavar="URL",
    help="duckdb:///PATH (the default file) or bigquery://PROJECT/DATASET (env ARMIRROR_STORE).",
)  # fmt: skip
@click.option(
    "--since", type=_When(), help="First day (YYYY-MM-DD or an age like 30d; default 30d)."
)
@click.option("--until", type=_When(), help="Last day (default today).")
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


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
