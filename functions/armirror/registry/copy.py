"""Copy one image, all its platforms and signatures, registry to registry.

The copy is planned from manifests before any byte moves:

1. HEAD the source and the destination.  Equal digests (and equal signature tags) mean
   the image is ``up-to-date``, found without a single GET, so without a Docker Hub pull.
2. GET the source manifest by digest, and for an index every child manifest; each is
   checked against its digest and kept as the exact bytes received.
3. Make every blob present at the destination: skip it when a HEAD finds it, mount it
   when the destination registry holds it in another repository (from earlier in this
   run, or because source and destination are the same registry), otherwise stream it.
   A blob is moved at most once per run however many images share it.
4. Push child manifests by digest, then the top manifest by tag, last.  Any failure
   before that point leaves the destination tag where it was, so a tag never points at
   an incomplete image.  Cosign ``sha256-<hex>.sig|.att|.sbom`` tags and OCI referrers
   of the image's digest follow, and the signature tags of each platform's digest
   (``cosign sign --recursive``) where the source's tag list shows some.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from armirror.reference import Reference
from armirror.registry.client import RegistryClient
from armirror.registry.errors import RateLimited, RegistryError, TransientError
from armirror.registry.manifest import IMAGE_TYPES, Descriptor, Manifest

log = logging.getLogger(__name__)

CopyStatus = Literal["copied", "up-to-date", "failed"]
SIGNATURE_SUFFIXES = ("sig", "att", "sbom")
_SIGNATURE_TAG_RE = re.compile(r"^sha256-[0-9a-f]{64}\.(?:sig|att|sbom)$")


@dataclass
class CopyResult:
    """The outcome of copying one image; what ``copy --format json`` prints per image."""

    source: str
    destination: str
    status: CopyStatus
    digest: str | None = None
    bytes_copied: int = 0
    error: str | None = None
    #: For failures: whether trying again later may succeed, whether a registry's rate
    #: limit refused it, and when to try again (seconds) when the registry said.
    retryable: bool = False
    rate_limited: bool = False
    retry_after: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started_at", "finished_at"):
            value = data[key]
            data[key] = value.isoformat() if value else None
        return data


class CopyProgress(Protocol):
    """What a progress display hears from the copier."""

    def planned(self, source: str, total_bytes: int) -> None: ...
    def advanced(self, source: str, nbytes: int) -> None: ...
    def finished(self, result: CopyResult) -> None: ...


@dataclass
class _Plan:
    top: Manifest
    children: list[Manifest]
    signatures: dict[str, Manifest]
    referrers: list[Manifest]

    def manifests(self) -> list[Manifest]:
        return [self.top, *self.children, *self.signatures.values(), *self.referrers]


def signature_tags(digest: str) -> list[str]:
    """Cosign's tag scheme: ``sha256:abc`` -> ``sha256-abc.sig`` (and .att, .sbom)."""
    stem = digest.replace(":", "-")
    return [f"{stem}.{suffix}" for suffix in SIGNATURE_SUFFIXES]


class Copier:
    """Copy images with one shared client, bounded concurrency and run-wide blob dedup."""

    def __init__(
        self,
        client: RegistryClient,
        *,
        jobs: int = 8,
        progress: CopyProgress | None = None,
        signatures: bool = True,
    ) -> None:
        self.client = client
        self.jobs = max(1, jobs)
        self.progress = progress
        self.signatures = signatures
        self._blob_slots = asyncio.Semaphore(self.jobs)
        # (destination endpoint, repository, digest) -> the task placing that blob there.
        self._placements: dict[tuple[str, str, str], asyncio.Task[int]] = {}
        # (destination endpoint, digest) -> repository that first received the blob.
        self._homes: dict[tuple[str, str], asyncio.Future[str | None]] = {}
        # source repository name -> its tags/list (None when unavailable).
        self._tag_lists: dict[str, asyncio.Future[list[str] | None]] = {}

    # -- public ------------------------------------------------------------------------

    async def copy_many(self, pairs: Iterable[tuple[Reference, Reference]]) -> list[CopyResult]:
        """Copy every (source, destination) pair, at most ``jobs`` images at a time."""
        slots = asyncio.Semaphore(self.jobs)

        async def one(source: Reference, destination: Reference) -> CopyResult:
            async with slots:
                return await self.copy(source, destination)

        return list(await asyncio.gather(*(one(s, d) for s, d in pairs)))

    async def copy(self, source: Reference, destination: Reference) -> CopyResult:
        """Copy one image; never raises for registry failures, reports them instead."""
        result = CopyResult(str(source), str(destination), "failed", started_at=_now())
        try:
            await self._copy(source, destination, result)
        except RegistryError as exc:
            result.status = "failed"
            result.error = str(exc)
            result.retryable = isinstance(exc, TransientError)
            result.rate_limited = isinstance(exc, RateLimited)
            result.retry_after = exc.retry_after
        result.finished_at = _now()
        if self.progress:
            self.progress.finished(result)
        return result

    # -- steps -------------------------------------------------------------------------

    async def _copy(self, source: Reference, destination: Reference, result: CopyResult) -> None:
        # Three cheap questions at once: what the source names, what the destination
        # names, and which signature tags the source has.
        head, current, source_tags = await asyncio.gather(
            self.client.head_manifest(source),
            self.client.head_manifest(destination, destination.tag or destination.digest),
            self._source_tags(source),
        )
        digest = source.digest or (head.digest if head else None)
        if digest is None:
            # HEAD without Docker-Content-Digest: the GET below tells us.
            digest = (await self.client.get_manifest(source)).digest
        result.digest = digest
        destination = destination if destination.tag else destination.with_digest(digest)
        result.destination = str(destination)

        up_to_date = current is not None and current.digest == digest
        children: list[str] = []
        # Only a HEAD that names a single image rules out platforms: a registry that
        # leaves Content-Type out (or says something vague) may be serving an index.
        if up_to_date and current is not None and current.media_type not in IMAGE_TYPES:
            children = await self._children_if_signed(destination, digest, source_tags)
        signatures = await self._source_signatures(source, [digest, *children], source_tags)
        if up_to_date and await self._signatures_present(destination, signatures):
            result.status = "up-to-date"
            return

        plan = await self._plan(source, digest)
        if not children and source_tags is not None:  # the platforms' signatures
            signatures |= await self._source_signatures(
                source, [c.digest for c in plan.top.children()], source_tags
            )
        tags = sorted(signatures)  # fetched at once: recursive signing makes one a platform
        fetched = await asyncio.gather(*(self.client.get_manifest(source, t) for t in tags))
        plan.signatures.update(zip(tags, fetched, strict=True))
        blobs = _unique_blobs(plan.manifests())
        if self.progress:
            self.progress.planned(str(source), sum(b.size for b in blobs))
        copied = await asyncio.gather(*(self._ensure_blob(source, destination, b) for b in blobs))
        result.bytes_copied = sum(copied)

        for child in plan.children:
            await self.client.put_manifest(destination, child.digest, child)
        # The tag moves last: until here it still names whatever it named before.
        await self.client.put_manifest(destination, destination.tag or digest, plan.top)
        for referrer in plan.referrers:
            await self.client.put_manifest(destination, referrer.digest, referrer)
        for tag, signature in plan.signatures.items():
            await self.client.put_manifest(destination, tag, signature)
        result.status = "copied"

    async def _children_if_signed(
        self, destination: Reference, digest: str, tags: list[str] | None
    ) -> list[str]:
        """The platform digests of an index that is already mirrored, when the source's
        tag list has signature tags for digests other than the index's own (else []).

        They come from the mirror's copy of the index, which has the same digest, so
        asking costs no pull from the source.
        """
        own = set(signature_tags(digest))
        if not tags or not any(_SIGNATURE_TAG_RE.match(t) and t not in own for t in tags):
            return []
        mirrored = await self.client.get_manifest(destination, digest)
        return [child.digest for child in mirrored.children()]

    async def _source_tags(self, source: Reference) -> list[str] | None:
        """One tags/list per source repository and run, shared by its images."""
        if not self.signatures:
            return []
        task = self._tag_lists.get(source.name)
        if task is None:
            task = asyncio.ensure_future(self.client.list_tags(source))
            self._tag_lists[source.name] = task
        try:
            return await asyncio.shield(task)
        except RegistryError:
            return None

    async def _source_signatures(
        self, source: Reference, digests: list[str], tags: list[str] | None
    ) -> dict[str, str]:
        """Signature tags present at the source for ``digests`` (the image's, then its
        platforms'): tag -> manifest digest.

        With a tag list only the signature tags it names are HEADed; without one (a
        registry that paginates or refuses tags/list) every candidate of the first
        digest is, and the platforms' are not looked for.
        """
        if not self.signatures or not digests:
            return {}
        if tags is None:
            candidates = signature_tags(digests[0])
        else:
            present = set(tags)
            candidates = [t for d in digests for t in signature_tags(d) if t in present]
        found = await asyncio.gather(*(self.client.head_manifest(source, t) for t in candidates))
        return {
            tag: head.digest
            for tag, head in zip(candidates, found, strict=True)
            if head is not None
        }

    async def _signatures_present(self, destination: Reference, wanted: dict[str, str]) -> bool:
        """HEADs only: the destination has every signature tag at the same digest."""
        present = await asyncio.gather(
            *(self.client.head_manifest(destination, tag) for tag in wanted)
        )
        return all(
            head is not None and head.digest == digest
            for head, digest in zip(present, wanted.values(), strict=True)
        )

    async def _plan(self, source: Reference, digest: str) -> _Plan:
        """The manifests to copy (signatures are added by the caller)."""
        top = await self.client.get_manifest(source, digest)
        children = list(
            await asyncio.gather(
                *(self.client.get_manifest(source, c.digest) for c in top.children())
            )
        )
        for child in children:
            if child.is_index:
                raise RegistryError(f"{source}: nested indexes are not supported")
        referrers: list[Manifest] = []
        for descriptor in await self.client.referrers(source, digest) or []:
            referrers.append(await self.client.get_manifest(source, descriptor.digest))
        return _Plan(top, children, {}, referrers)

    # -- blobs -------------------------------------------------------------------------

    async def _ensure_blob(
        self, source: Reference, destination: Reference, blob: Descriptor
    ) -> int:
        """Bytes this call moved for ``blob`` (0 when skipped, mounted or already done)."""
        endpoint = self.client.base_url(destination.registry)
        key = (endpoint, destination.repository, blob.digest)
        task = self._placements.get(key)
        if task is not None:
            await task
            return 0
        task = asyncio.ensure_future(self._place_blob(source, destination, blob, endpoint))
        self._placements[key] = task
        try:
            moved = await task
        except BaseException:
            self._placements.pop(key, None)  # let a later image try again
            raise
        if self.progress and moved < blob.size:
            # Streamed bytes were reported as they went; skipped and mounted ones now.
            self.progress.advanced(str(source), blob.size - moved)
        return moved

    async def _place_blob(
        self, source: Reference, destination: Reference, blob: Descriptor, endpoint: str
    ) -> int:
        home_key = (endpoint, blob.digest)
        home = self._homes.get(home_key)
        if home is not None:
            holder = await asyncio.shield(home)
            if holder and holder != destination.repository:
                async with self._blob_slots:
                    if await self.client.mount_blob(destination, blob.digest, holder):
                        return 0
            return await self._transfer(source, destination, blob)
        home = asyncio.get_running_loop().create_future()
        self._homes[home_key] = home
        try:
            moved = await self._transfer(source, destination, blob)
        except BaseException:
            home.set_result(None)
            del self._homes[home_key]
            raise
        home.set_result(destination.repository)
        return moved

    async def _transfer(self, source: Reference, destination: Reference, blob: Descriptor) -> int:
        async with self._blob_slots:
            if await self.client.blob_exists(destination, blob.digest):
                return 0
            if self.client.same_endpoint(
                source.registry, destination.registry
            ) and await self.client.mount_blob(destination, blob.digest, source.repository):
                return 0
            report = self.progress
            on_bytes = (lambda n: report.advanced(str(source), n)) if report else None
            return await self.client.copy_blob(source, destination, blob, on_bytes)


def _unique_blobs(manifests: list[Manifest]) -> list[Descriptor]:
    unique: dict[str, Descriptor] = {}
    for manifest in manifests:
        for blob in manifest.blobs():
            unique.setdefault(blob.digest, blob)
    return list(unique.values())


def _now() -> datetime:
    return datetime.now(UTC)


async def copy_images(
    pairs: list[tuple[Reference, Reference]],
    *,
    client: RegistryClient,
    jobs: int = 8,
    progress: CopyProgress | None = None,
) -> list[CopyResult]:
    """Copy a batch of images with one :class:`Copier`."""
    return await Copier(client, jobs=jobs, progress=progress).copy_many(pairs)
