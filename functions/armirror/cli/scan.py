"""``armirror scan``: find third-party image references in files and the cluster."""

from __future__ import annotations

import sys
from typing import Any

import click

from armirror.cli import output
from armirror.cli.output import emit_json


@click.command()
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
    from=), Kubernetes and Cloud Run manifests (YAML/JSON, every pod template, custom
    resources' too), docker-compose (and its .env), cloudbuild, skaffold, kustomization
    (patches; images resolved across bases and overlays) and Helm files, and the
    Dockerfiles build configs name, honouring .gitignore. Templates ({{ }}, ${VAR}
    without a default) are reported as unresolved; images built here (skaffold
    artifacts, compose services with build:) as built, and never copied or rewritten.
    \b
    Exit status 1 when a file could not be read or parsed, or was refused as too costly
    to scan (or the cluster could not be listed); the scan still reports everything
    else. 2 for bad input, such as a FILE named that is none of the kinds above.
    """
    from armirror.scan import scan_paths

    if not paths and not cluster:
        paths = (".",)
    _refuse_unknown_files(paths)
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
        output.error(f"{error.file}: {error.message}")
    if output_format == "json":
        emit_json([finding.to_json() for finding in result.findings])
    elif output_format == "images":
        for image in result.images():
            click.echo(image)
    else:
        _print_scan_table(result)
    sys.exit(output.EXIT_FAILURE if result.errors else output.EXIT_OK)


def _refuse_unknown_files(paths: tuple[str, ...]) -> None:
    """A file named on the command line that no scanner reads is a mistake worth naming."""
    from pathlib import Path

    from armirror.scan.walk import classify

    for given in paths:
        path = Path(given)
        if path.is_file() and classify(path) is None:
            output.bad_input(
                f"{given}: not a file scan reads (Dockerfile or Containerfile, Kubernetes or "
                "Cloud Run YAML/JSON, compose, cloudbuild, skaffold, kustomization, Helm); "
                "name its directory to scan everything in it"
            )


def _print_scan_table(result: Any) -> None:
    from rich.console import Console
    from rich.markup import escape

    from armirror.cli.tables import Column, print_table

    console = Console()
    groups: dict[str, list[Any]] = {}
    unresolved, built = [], []
    for finding in result.findings:
        if finding.built:
            built.append(finding)
        elif finding.reference is None:
            unresolved.append(finding)
        else:
            groups.setdefault(str(finding.reference), []).append(finding)
    rows = []
    for reference, findings in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        places = [f"{f.file}:{f.line}" if f.line else f.file for f in findings]
        shown = ", ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "")
        rows.append([reference, findings[0].registry, str(len(findings)), shown])
    if groups:
        print_table(
            console,
            [
                Column("image"),
                Column("registry", whole=True),
                Column("uses", justify="right", whole=True),
                Column("where"),
            ],
            rows,
        )
    for finding in unresolved:
        place = f"{finding.file}:{finding.line}" if finding.line else finding.file
        console.print(
            f"[yellow]unresolved[/] {escape(f'{place} {finding.image!r}: {finding.problem}')}",
            highlight=False,
        )
    for finding in built:
        place = f"{finding.file}:{finding.line}" if finding.line else finding.file
        console.print(f"[cyan]built[/] {escape(f'{place} {finding.image}')}", highlight=False)
    files = len({f.file for f in result.findings})
    output.info(
        f"{sum(len(v) for v in groups.values())} references to {len(groups)} images in "
        f"{files} files; {len(unresolved)} unresolved; "
        + (f"{len(built)} built here; " if built else "")
        + f"{result.files_scanned} files scanned"
        + (f"; {len(result.errors)} unreadable" if result.errors else "")
    )
