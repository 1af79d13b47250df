"""``armirror rewrite``: point files at the mirror, changing only the references."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import click

from armirror.cli import (
    check_prefix,
    destination_option,
    format_option,
    make_registry_client,
    output,
    registry_options,
)

if TYPE_CHECKING:
    from armirror.reference import Reference
    from armirror.registry import RegistryClient
    from armirror.rewrite import RewriteResult


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@destination_option(
    "Destination prefix, e.g. us-docker.pkg.dev/PROJECT/REPOSITORY "
    "(env ARMIRROR_DESTINATION); the same mapping `armirror copy` uses."
)
@click.option("--dry-run", is_flag=True, help="Print a unified diff; write nothing.")
@click.option(
    "--pin-digests",
    is_flag=True,
    help="Write tag@digest, the digest read at the destination with HEAD.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Rewrite references without asking the mirror whether it has them.",
)
@click.option(
    "--include-first-party",
    is_flag=True,
    help="Also move Container Registry (gcr.io) references to PREFIX.",
)
@format_option
@registry_options
def rewrite(
    paths: tuple[str, ...],
    prefix: str,
    dry_run: bool,
    pin_digests: bool,
    force: bool,
    include_first_party: bool,
    output_format: str,
    upstreams: tuple[str, ...],
    insecure: tuple[str, ...],
) -> None:
    """Point every third-party reference in PATHs at its copy under PREFIX.

    \b
    Only the references change: comments, quoting, key order, indentation and line
    endings stay as they were. Writes are atomic; a second run changes nothing.
    \b
    A reference is pointed at the mirror only when the mirror has it: each destination
    gets one HEAD first (--force skips the check), so a typo such as `ngnix` is left
    alone instead of naming an image that will never exist. Every reference left alone
    (not in the mirror, unresolved template) is named on stderr with the reason.
    \b
    Exit status 1 when a file could not be read, parsed or written, 2 for bad input.
    """
    from armirror.rewrite import rewrite_paths

    check_prefix(prefix)
    heads = _MirrorHeads(upstreams, insecure)
    result = rewrite_paths(
        paths,
        prefix,
        dry_run=dry_run,
        include_first_party=include_first_party,
        resolve_digests=heads.digests if pin_digests else None,
        check_mirror=None if force else heads.unusable,
    )
    for error in result.errors:
        output.error(f"{error.file}: {error.message}")
    if output_format == "json":
        output.emit_json({"dry_run": dry_run, **result.to_json()})
    elif dry_run and result.diff:
        click.echo(result.diff, nl=False)
    _tell(result, dry_run)
    sys.exit(output.EXIT_FAILURE if result.errors else output.EXIT_OK)


class _MirrorHeads:
    """One HEAD per destination, shared by the presence check and digest pinning."""

    def __init__(self, upstreams: tuple[str, ...], insecure: tuple[str, ...]) -> None:
        self.upstreams, self.insecure = upstreams, insecure
        self.found: dict[Reference, str | None] = {}
        self.problems: dict[Reference, str] = {}

    def _ask(self, refs: list[Reference]) -> None:
        wanted = [ref for ref in refs if ref not in self.found and ref not in self.problems]
        if not wanted:
            return
        from armirror.registry import RegistryError

        async def one(client: RegistryClient, ref: Reference) -> None:
            try:
                head = await client.head_manifest(ref)
                if head is None:
                    self.found[ref] = None
                    return
                self.found[ref] = head.digest or (await client.get_manifest(ref)).digest
            except RegistryError as exc:
                self.problems[ref] = f"the mirror could not be asked about {ref}: {exc}"

        async def run() -> None:
            named = wanted  # the mirror's own references, which the operator asked about
            async with make_registry_client(self.upstreams, self.insecure, named=named) as client:
                await asyncio.gather(*(one(client, ref) for ref in wanted))

        asyncio.run(run())

    def unusable(self, refs: list[Reference]) -> Mapping[Reference, str]:
        self._ask(refs)
        reasons = dict(self.problems)
        for ref in refs:
            if ref in self.found and self.found[ref] is None:
                reasons[ref] = f"{ref} is not in the mirror: copy it first (or --force)"
        return {ref: reasons[ref] for ref in refs if ref in reasons}

    def digests(self, refs: list[Reference]) -> Mapping[Reference, str | None]:
        self._ask(refs)
        return {ref: self.found.get(ref) for ref in refs}


def _tell(result: RewriteResult, dry_run: bool) -> None:
    """What was left alone, and a one-line summary, on stderr."""
    changed = {(c.file, c.line, c.source) for c in result.changes}
    left_alone = 0
    for item in result.skipped:
        f = item.finding
        if (f.file, f.line, str(f.reference)) in changed:  # rewritten, with a remark
            output.info(f"note {f.file}:{f.line} {f.image}: {item.reason}")
        else:
            left_alone += 1
            output.warn(f"left alone {f.file}:{f.line} {f.image}: {item.reason}")
    for f in result.unresolved:
        output.info(f"unresolved {f.file}:{f.line} {f.image!r}: {f.problem}")
    verb = "would change" if dry_run else "changed"
    output.info(
        f"{len(result.files_changed)} files {verb}, {len(result.changes)} references "
        f"rewritten, {left_alone} left alone, {len(result.unresolved)} unresolved"
        + (f", {len(result.errors)} errors" if result.errors else "")
    )
