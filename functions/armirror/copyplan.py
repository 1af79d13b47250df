"""What a copy would do, without doing it; and which tags of a repository to copy.

``copy --dry-run`` asks each registry the cheapest questions that answer it:

1. HEAD the source and the destination.  Equal digests mean ``up-to-date``: no GET at
   all, so an up-to-date mirror costs no Docker Hub pull to check.
2. Otherwise the image ``would-copy``.  Its size needs its manifests, so the source is
   asked for them with GETs (the top manifest and each platform's); every blob is then
   HEADed at the destination, and the bytes to move are those of the blobs it lacks.
   The copy will GET the same manifests again, plus a signature manifest for each
   cosign signature tag the tag list shows for the image: the ``manifest_gets`` of the
   plan (per registry host) is that cost.  Docker Hub counts each manifest GET
   against its pull rate limit; HEADs and tag lists are free.

``--all-tags`` and ``--tags REGEX`` go through one function, :func:`select_tags`: one
``tags/list`` of the repository, filtered, cosign signature tags left out (they travel
with their image), refused when more than ``max_tags`` match.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from armirror.reference import Reference
from armirror.registry import RegistryClient, RegistryError
from armirror.registry.manifest import Descriptor

PlanStatus = Literal["would-copy", "up-to-date", "cannot-plan"]
_SIGNATURE_TAG = re.compile(r"^sha256-[0-9a-f]{64}\.(?:sig|att|sbom)$")


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
        if not _SIGNATURE_TAG.match(tag) and (pattern is None or pattern.fullmatch(tag))
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
    """One image's plan; registry failures become ``cannot-plan`` with the reason."""
    plan = PlannedCopy(str(source), str(destination), "cannot-plan")
    try:
        head, current = await asyncio.gather(
            client.head_manifest(source),
            client.head_manifest(destination, destination.tag or destination.digest),
        )
        digest = source.digest or (head.digest if head else None)
        if current is not None and digest is not None and current.digest == digest:
            plan.status, plan.digest = "up-to-date", digest
            return plan
        gets: Counter[str] = Counter()
        top = await client.get_manifest(source, digest)
        gets[source.registry] += 1
        plan.digest = top.digest
        manifests = [top]
        for child in top.children():
            manifests.append(await client.get_manifest(source, child.digest))
            gets[source.registry] += 1
        tags = await client.list_tags(source) or []
        digests = {m.digest.replace(":", "-") for m in manifests}
        gets[source.registry] += sum(
            1 for tag in tags if _SIGNATURE_TAG.match(tag) and tag.rsplit(".", 1)[0] in digests
        )
        blobs: dict[str, Descriptor] = {}
        for manifest in manifests:
            for blob in manifest.blobs():
                blobs.setdefault(blob.digest, blob)
        plan.bytes_to_move = await _bytes_missing(client, destination, list(blobs.values()), jobs)
        plan.manifest_gets = dict(gets)
        plan.status = "would-copy"
    except RegistryError as exc:
        plan.error = str(exc)
    return plan


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
