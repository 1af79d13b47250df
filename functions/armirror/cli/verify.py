"""``armirror verify``: prove the mirror is complete, current and readable."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from armirror.cli import (
    destination_option,
    format_option,
    image_file_option,
    output,
    read_image_list,
    registry_options,
)
from armirror.cli.mirror_checks import check_images, reader_checker

if TYPE_CHECKING:
    from armirror.iam import PermissionFinding
    from armirror.reference import Reference
    from armirror.verify import ImageCheck


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@image_file_option
@destination_option("Destination prefix the images were copied to (env ARMIRROR_DESTINATION).")
@click.option(
    "--consumer", "consumers", multiple=True, metavar="PRINCIPAL",
    help="A principal that must be able to pull, e.g. "
    "serviceAccount:NAME@PROJECT.iam.gserviceaccount.com (repeatable).",
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
@format_option
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
    Images: every image reference `scan` finds in PATH..., and/or -f FILE. Third-party
    references and references already under PREFIX (as `rewrite` leaves files) are
    both checked: PREFIX/<host>/<repository> is mapped back to <host>/<repository>.
    \b
    Each image is
      ok          at the destination, whole, at the digest the upstream tag names
      missing     not at the destination
      stale       the upstream tag moved since the copy
      incomplete  a child manifest or blob is absent at the destination
      unknown     could not be checked (refused login, DNS, unreachable registry);
                  the detail says why
    A digest-pinned reference is ok or missing, never stale. Upstreams get HEADs only.
    \b
    Permissions (Artifact Registry destinations): every --consumer (plus discovered
    ones) must hold roles/artifactregistry.reader, or a role containing it, on the
    repository or its project. Missing grants come with the gcloud command and the
    Terraform `consumers` entry that fix them.
    \b
    Exit status: 0 all ok; 1 anything missing, stale, incomplete or without a grant;
    3 nothing proven wrong but something could not be checked; 2 bad input.
    """
    from armirror.verify import PROBLEMS

    pairs = _image_pairs(paths, image_file, prefix)
    everyone = _consumers(prefix, consumers, project_numbers, node_accounts)
    if not pairs and not everyone:
        if paths:
            output.bad_input(f"no third-party or mirrored image references in {', '.join(paths)}")
        output.bad_input("name PATHs to scan, a file of images with -f, or consumers")

    checks = check_images(pairs, upstreams, insecure, jobs) if pairs else []
    findings = reader_checker(prefix, iam_endpoint)(everyone) if everyone else []

    problems = any(c.status in PROBLEMS for c in checks) or any(
        f.status == "missing" for f in findings
    )
    unknown = any(c.status == "unknown" for c in checks) or any(
        f.status not in ("ok", "missing") for f in findings
    )
    from armirror.verify import summary

    if output_format == "json":
        output.emit_json(
            {
                "images": [c.to_json() for c in checks],
                "permissions": [f.to_json() for f in findings],
                "summary": summary(checks),
                "ok": not problems and not unknown,
            }
        )
    else:
        _print_verify(checks, findings)
    if problems:
        sys.exit(output.EXIT_FAILURE)
    sys.exit(output.EXIT_UNKNOWN if unknown else output.EXIT_OK)


def _image_pairs(
    paths: tuple[str, ...], image_file: str | None, prefix: str
) -> list[tuple[Reference, Reference]]:
    """(upstream, destination) for every image named, whichever side it names."""
    from armirror.reference import InvalidReference, destination_for, parse, upstream_for

    try:
        destination_for(parse("x/y"), prefix)
    except InvalidReference as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from None
    listed = read_image_list((), image_file)  # named on purpose: checked whatever they are
    scanned_names: list[str] = []
    if paths:
        from armirror.scan import scan_paths

        scanned = scan_paths(paths, include_first_party=True)
        for error in scanned.errors:
            output.warn(f"{error.file}: {error.message}")
        scanned_names = [str(f.reference) for f in scanned.findings if f.reference is not None]
    pairs = []
    for name in dict.fromkeys([*listed, *scanned_names]):
        try:
            reference = parse(name)
        except InvalidReference as exc:
            output.bad_input(str(exc))
        upstream = upstream_for(reference, prefix)
        if upstream is not None:
            pairs.append((upstream, reference))
        elif reference.third_party or name in listed:
            pairs.append((reference, destination_for(reference, prefix)))
    return list(dict.fromkeys(pairs))


def _consumers(
    prefix: str,
    consumers: tuple[str, ...],
    project_numbers: tuple[str, ...],
    node_accounts: tuple[str, ...],
) -> list[str]:
    """Every principal to check, each valid, before anything is asked of a registry."""
    if not (consumers or project_numbers or node_accounts):
        return []
    from armirror import iam

    try:
        everyone = [iam.normalise_principal(c) for c in consumers]
        everyone += iam.discover_consumers(project_numbers, node_accounts)
    except iam.InvalidPrincipal as exc:
        output.bad_input(str(exc))
    try:
        iam.parse_repository(prefix)
    except iam.NotArtifactRegistry as exc:
        raise click.BadParameter(
            f"{exc} (reader permissions are checked on Artifact Registry only)",
            param_hint="--to",
        ) from None
    return list(dict.fromkeys(everyone))


STYLES = {
    "ok": "green",
    "missing": "bold red",
    "stale": "yellow",
    "incomplete": "bold red",
    "unknown": "magenta",
}


def _print_verify(checks: list[ImageCheck], findings: list[PermissionFinding]) -> None:
    from rich.console import Console

    from armirror.cli.tables import Cell, Column, print_table
    from armirror.reference import parse
    from armirror.verify import summary

    console = Console()
    if checks:
        print_table(
            console,
            [Column("image"), Column("status", whole=True), Column("detail")],
            [
                [parse(c.source).familiar(), Cell(c.status, STYLES[c.status]), c.detail]
                for c in checks
            ],
            title="images",
        )
        counts = summary(checks)
        output.info(", ".join(f"{n} {state}" for state, n in counts.items() if n))
        if counts["unknown"]:
            output.info(
                f"{counts['unknown']} could not be checked: fix the access named in the "
                "detail and run verify again (re-copying will not help)"
            )
    if findings:
        print_table(
            console,
            [Column("consumer"), Column("status", whole=True), Column("detail")],
            [
                [f.member, Cell(f.status, "green" if f.ok else "bold red"), f.detail]
                for f in findings
            ],
            title="readers",
        )
        fixes = [f for f in findings if f.gcloud]
        if fixes:
            console.print("\nto fix:", style="bold")
            for f in fixes:
                console.print(f.gcloud, highlight=False, soft_wrap=True, markup=False)
            from armirror.iam import terraform_consumers

            console.print("\nor in Terraform:", style="bold")
            console.print(terraform_consumers(fixes), highlight=False, soft_wrap=True, markup=False)
