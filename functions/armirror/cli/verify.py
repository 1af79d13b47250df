"""``armirror verify``: prove the mirror is complete, current and readable."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from armirror.cli import FORMAT_TABLE_JSON, make_registry_client, read_image_list, registry_options
from armirror.cli.output import emit_json


@click.command()
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
