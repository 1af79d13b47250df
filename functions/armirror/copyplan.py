"""What a copy would do, without doing it; and which tags of a repository to copy.

``copy --dry-run`` runs the first half of a copy, the planning, with the copier's own
:class:`~armirror.registry.plan.Planner`, and stops before any byte moves:

1. HEAD the source and the destination.  Equal digests (and the same signatures) mean
   ``up-to-date``: found with HEADs only, so an up-to-date mirror costs no Docker Hub
   pull to check.
2. Otherwise the image ``would-copy``.  The planner GETs what the destination lacks (the
   top manifest, platforms, signatures, referrers), exactly as the copy will; those
   GETs, counted per endpoint host as the copy counts them, are the plan's
   ``manifest_gets``: what the copy will send again.  Docker Hub counts each manifest
   GET against its pull limit; HEADs and tag lists are free.  Every blob is then
   HEADed at the destination, and ``bytes_to_move`` is the size of those it lacks.

``--all-tags`` and ``--tags REGEX`` go through one function, :func:`select_tags`: one
``tags/list`` of the repository, filtered, cosign signature tags left out (they travel
with their image), refused when more than ``max_tags`` match.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from armirror.reference import Reference
from armirror.registry import NotFound, RegistryClient, RegistryError, budget
from armirror.registry.manifest import IMAGE_TYPES, Descriptor
from armirror.registry.plan import SIGNATURE_TAG_RE, Planner

PlanStatus = Literal["would-copy", "up-to-date", "cannot-plan"]


@dataclass
class PlannedCopy:
    """One image's line of the plan; what ``copy --dry-run --format json`` prints."""

    source: str
    destination: str
    status: PlanStatus
    digest: str | None = None
    bytes_to_move: int = 0
    #: registry host -> manifest GETs the copy will send there
    manifest_gets: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class TooManyTags(ValueError):
    """More tags match than ``--max-tags`` allows."""


async def select_tags(
    client: RegistryClient, repository: Reference, pattern: re.Pattern[str] | None, max_tags: int
) -> list[Reference]:
    """The repository's tags that ``pattern`` matches in full (all without one), sorted.

    Raises :class:`TooManyTags` beyond ``max_tags`` (nothing is copied by halves) and
    RegistryError when the tag list cannot be read.
    """
    tags = await client.list_tags(repository)
    if tags is None:
        raise TooManyTags(
            f"{repository.name}: the registry did not give one complete tag list (missing, "
            "or more tags than one page holds); name the tags instead"
        )
    chosen = sorted(
        tag
        for tag in tags
        if not SIGNATURE_TAG_RE.match(tag) and (pattern is None or pattern.fullmatch(tag))
    )
    if len(chosen) > max_tags:
        raise TooManyTags(
            f"{repository.name}: {len(chosen)} tags match, more than --max-tags {max_tags}; "
            "raise --max-tags or narrow --tags"
        )
    return [repository.with_digest(None).with_tag(tag) for tag in chosen]


async def plan_copy(
    client: RegistryClient, source: Reference, destination: Reference, *, jobs: int = 8
) -> PlannedCopy:
    """One image's plan; registry failures become ``cannot-plan`` with the reason.

    The steps are :meth:`armirror.registry.copy.Copier.copy`'s up to the first blob
    (tests/integration/test_copy_ux.py checks the prediction against a real copy).
    """
    plan = PlannedCopy(str(source), str(destination), "cannot-plan")
    ledger: dict[str, int] = {}
    token = budget.manifest_gets.set(ledger)
    try:
        await _plan_into(plan, client, Planner(client), source, destination, jobs)
    except RegistryError as exc:
        plan.status, plan.error = "cannot-plan", str(exc)
    finally:
        budget.manifest_gets.reset(token)
    if plan.status == "would-copy":
        plan.manifest_gets = dict(ledger)
    return plan


async def _plan_into(
    plan: PlannedCopy,
    client: RegistryClient,
    planner: Planner,
    source: Reference,
    destination: Reference,
    jobs: int,
) -> None:
    resolved, current, tags = await asyncio.gather(
        client.resolve(source),
        client.head_manifest(destination, destination.tag or destination.digest),
        planner.source_tags(source),
    )
    if resolved is None:
        raise NotFound(f"{source}: not found at {', '.join(client.candidates(source.registry))}")
    endpoint, head = resolved.endpoint, resolved.descriptor
    tags = await planner.tags_at(source, endpoint, tags)
    if not head.digest:  # a HEAD without Docker-Content-Digest: the GET tells us
        fetched = await client.get_manifest(source, endpoint=endpoint)
        head = Descriptor(fetched.media_type, fetched.digest, len(fetched.raw))
    digest = source.digest or head.digest
    plan.digest = digest
    up_to_date = current is not None and current.digest == digest
    children: list[str] = []
    if up_to_date and current is not None and current.media_type not in IMAGE_TYPES:
        children = await planner.children_if_signed(destination, digest, tags)
    signatures = await planner.source_signatures(source, endpoint, [digest, *children], tags)
    if up_to_date and len(await planner.present_at(destination, signatures)) == len(signatures):
        plan.status = "up-to-date"
        return
    target = destination if destination.tag else destination.with_digest(digest)
    manifests = await planner.plan(
        source,
        endpoint,
        target,
        Descriptor(head.media_type, digest, head.size),
        signatures,
        tags,
        platforms_looked_up=bool(children),
    )
    blobs: dict[str, Descriptor] = {}
    for manifest in manifests.manifests():
        for blob in manifest.blobs():
            blobs.setdefault(blob.digest, blob)
    plan.bytes_to_move = await _bytes_missing(client, target, list(blobs.values()), jobs)
    plan.status = "would-copy"


async def _bytes_missing(
    client: RegistryClient, destination: Reference, blobs: list[Descriptor], jobs: int
) -> int:
    slots = asyncio.Semaphore(jobs)

    async def size_if_absent(blob: Descriptor) -> int:
        async with slots:
            return 0 if await client.blob_exists(destination, blob.digest) else blob.size

    return sum(await asyncio.gather(*(size_if_absent(b) for b in blobs)))


async def plan_copies(
    client: RegistryClient, pairs: list[tuple[Reference, Reference]], *, jobs: int = 8
) -> list[PlannedCopy]:
    slots = asyncio.Semaphore(jobs)

    async def one(source: Reference, destination: Reference) -> PlannedCopy:
        async with slots:
            return await plan_copy(client, source, destination, jobs=jobs)

    return list(await asyncio.gather(*(one(s, d) for s, d in pairs)))
