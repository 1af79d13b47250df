"""``armirror rewrite``: point files at the mirror, changing only the references."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from armirror.cli import FORMAT_TABLE_JSON, make_registry_client, registry_options
from armirror.cli.output import emit_json


@click.command()
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
