"""``copy --dry-run``, ``--all-tags`` and ``--tags``: the plan, and the tags to copy."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import click

from armirror.cli import make_registry_client, output

if TYPE_CHECKING:
    from armirror.copyplan import PlannedCopy
    from armirror.reference import Reference


def tag_pattern(all_tags: bool, tag_pattern: str | None) -> re.Pattern[str] | None:
    if all_tags and tag_pattern:
        output.bad_input("give --all-tags or --tags REGEX, not both")
    if tag_pattern is None:
        return re.compile(".*") if all_tags else None
    try:
        return re.compile(tag_pattern)
    except re.error as exc:
        raise click.BadParameter(f"{tag_pattern!r}: {exc}", param_hint="--tags") from None


async def expand(
    pairs: list[tuple[Reference, Reference]],
    pattern: re.Pattern[str],
    max_tags: int,
    upstreams: tuple[str, ...],
    insecure: tuple[str, ...],
    prefix: str,
) -> list[tuple[Reference, Reference]]:
    """Each named repository's matching tags, from one tag list per repository."""
    from armirror.copyplan import TooManyTags, select_tags
    from armirror.reference import destination_for
    from armirror.registry import RegistryError

    expanded: list[tuple[Reference, Reference]] = []
    named = [ref for pair in pairs for ref in pair]
    async with make_registry_client(upstreams, insecure, named=named) as client:
        for source, _ in pairs:
            try:
                tags = await select_tags(client, source, pattern, max_tags)
            except TooManyTags as exc:
                output.bad_input(str(exc))
            except RegistryError as exc:
                output.failure(f"cannot list the tags of {source.name}: {exc}")
            if not tags:
                output.warn(f"{source.name}: no tag matches")
            output.detail(f"{source.name}: {len(tags)} tags")
            expanded += [(tag, destination_for(tag, prefix)) for tag in tags]
    return expanded


async def plan(
    pairs: list[tuple[Reference, Reference]],
    upstreams: tuple[str, ...],
    insecure: tuple[str, ...],
    jobs: int,
) -> list[PlannedCopy]:
    from armirror.copyplan import plan_copies

    named = [ref for pair in pairs for ref in pair]
    async with make_registry_client(upstreams, insecure, jobs, named=named) as client:
        return await plan_copies(client, pairs, jobs=jobs)


def show_plan(plans: list[PlannedCopy], output_format: str) -> None:
    from collections import Counter

    if output_format == "json":
        output.emit_json([plan.to_json() for plan in plans])
    else:
        from rich.console import Console

        from armirror.cli.progress import short_reference
        from armirror.cli.tables import Cell, Column, print_table

        styles = {"would-copy": "yellow", "up-to-date": "cyan", "cannot-plan": "bold red"}
        print_table(
            Console(),
            [
                Column("image"),
                Column("plan", whole=True),
                Column("to move", justify="right", whole=True),
                Column("manifest GETs"),
            ],
            [
                [
                    short_reference(p.source),
                    Cell(p.status, styles[p.status]),
                    output.human_bytes(p.bytes_to_move) if p.status == "would-copy" else "",
                    ", ".join(f"{host} {n}" for host, n in sorted(p.manifest_gets.items())),
                ]
                for p in plans
            ],
        )
        for plan in plans:
            if plan.error:
                output.error(f"{short_reference(plan.source)}: {plan.error}")
    gets: Counter[str] = Counter()
    for plan in plans:
        gets.update(plan.manifest_gets)
    would = [p for p in plans if p.status == "would-copy"]
    output.info(
        f"dry run: {len(would)} would copy "
        f"({output.human_bytes(sum(p.bytes_to_move for p in would))} to move), "
        f"{sum(1 for p in plans if p.status == 'up-to-date')} up-to-date, "
        f"{sum(1 for p in plans if p.status == 'cannot-plan')} cannot be planned; "
        "manifest GETs the copy will send: "
        + (", ".join(f"{host} {n}" for host, n in sorted(gets.items())) or "none")
    )
