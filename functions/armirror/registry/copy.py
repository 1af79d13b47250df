"""Copy one image, all its platforms and signatures, registry to registry.

The copy is planned from manifests before any byte moves:

1. HEAD the source (at each of its registry's endpoints; the first that has the image
   serves it) and the destination.  Equal digests (and equal signature tags) mean the
   image is ``up-to-date``, found without a single GET, so without a Docker Hub pull.
2. GET by digest what the destination lacks: the top manifest, the platforms of an
   index, signatures and referrers (:mod:`armirror.registry.plan`), each checked
   against its digest and kept as the exact bytes received, after checking that the
   GETs fit in what the endpoint says remains of its rate limit.
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
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from armirror.reference import Reference
from armirror.registry import budget
from armirror.registry.client import RegistryClient
from armirror.registry.errors import NotFound, RateLimited, RegistryError, TransientError
from armirror.registry.manifest import IMAGE_TYPES, Descriptor, Manifest
from armirror.registry.plan import Planner, signature_tags
from armirror.registry.resumable import Deadline, UploadSessions

log = logging.getLogger(__name__)

CopyStatus = Literal["copied", "up-to-date", "failed"]
#: Images whose up-to-date checks run at once, whatever the number of blob jobs.
DEFAULT_CHECKS = 32

__all__ = ["CopyProgress", "CopyResult", "Copier", "copy_images", "signature_tags"]


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
    #: The source endpoint that served the image (the first of the registry's
    #: endpoints that had it), and the manifest GETs the copy made per registry host:
    #: what Docker Hub counts as pulls.
    endpoint: str | None = None
    manifest_gets: dict[str, int] = field(default_factory=dict)

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


class Copier:
    """Copy images with one shared client, bounded concurrency and run-wide blob dedup."""

    def __init__(
        self,
        client: RegistryClient,
        *,
        jobs: int = 8,
        checks: int = DEFAULT_CHECKS,
        progress: CopyProgress | None = None,
        signatures: bool = True,
        deadline: Deadline | None = None,
        sessions: UploadSessions | None = None,
    ) -> None:
        """``jobs`` bounds blob transfers; ``checks`` bounds images in flight, so many
        images' up-to-date HEADs go out at once while few blobs move (issue 13 §3).

        With ``deadline``, no transfer or chunk starts that it would cut short, and the
        copy fails as retryable (DeadlineReached) instead; with ``sessions``, large blobs
        go up in recorded chunks that a later copy resumes (issue 13 §5)."""
        self.client = client
        self.jobs = max(1, jobs)
        self.checks = max(self.jobs, checks)
        self.progress = progress
        self.signatures = signatures
        self.planner = Planner(client, signatures=signatures)
        self.deadline = deadline
        self.sessions = sessions
        self._blob_slots = asyncio.Semaphore(self.jobs)
        # (destination endpoint, repository, digest) -> the task placing that blob there.
        self._placements: dict[tuple[str, str, str], asyncio.Task[int]] = {}
        # (destination endpoint, digest) -> repository that first received the blob.
        self._homes: dict[tuple[str, str], asyncio.Future[str | None]] = {}

    # -- public ------------------------------------------------------------------------

    async def copy_many(self, pairs: Iterable[tuple[Reference, Reference]]) -> list[CopyResult]:
        """Copy every (source, destination) pair, at most ``checks`` images at a time."""
        slots = asyncio.Semaphore(self.checks)

        async def one(source: Reference, destination: Reference) -> CopyResult:
            async with slots:
                return await self.copy(source, destination)

        return list(await asyncio.gather(*(one(s, d) for s, d in pairs)))

    async def copy(self, source: Reference, destination: Reference) -> CopyResult:
        """Copy one image; never raises for registry failures, reports them instead."""
        result = CopyResult(str(source), str(destination), "failed", started_at=_now())
        ledger = budget.manifest_gets.set(result.manifest_gets)
        try:
            await self._copy(source, destination, result)
        except RegistryError as exc:
            result.status = "failed"
            result.error = str(exc)
            result.retryable = isinstance(exc, TransientError)
            result.rate_limited = isinstance(exc, RateLimited)
            result.retry_after = exc.retry_after
        finally:
            budget.manifest_gets.reset(ledger)
        result.finished_at = _now()
        if self.progress:
            self.progress.finished(result)
        return result

    # -- steps -------------------------------------------------------------------------

    async def _copy(self, source: Reference, destination: Reference, result: CopyResult) -> None:
        # Three cheap questions at once: what the source names (and which endpoint has
        # it), what the destination names, and which signature tags the source has.
        resolved, current, source_tags = await asyncio.gather(
            self.client.resolve(source),
            self.client.head_manifest(destination, destination.tag or destination.digest),
            self.planner.source_tags(source),
        )
        if resolved is None:
            endpoints = ", ".join(self.client.candidates(source.registry))
            raise NotFound(f"{source}: not found at {endpoints}")
        endpoint = result.endpoint = resolved.endpoint
        source_tags = await self.planner.tags_at(source, endpoint, source_tags)
        head = resolved.descriptor
        if not head.digest:  # a HEAD without Docker-Content-Digest: the GET tells us
            fetched = await self.client.get_manifest(source, endpoint=endpoint)
            head = Descriptor(fetched.media_type, fetched.digest, len(fetched.raw))
        digest = source.digest or head.digest
        result.digest = digest
        destination = destination if destination.tag else destination.with_digest(digest)
        result.destination = str(destination)

        up_to_date = current is not None and current.digest == digest
        children: list[str] = []
        # Only a HEAD that names a single image rules out platforms: a registry that
        # leaves Content-Type out (or says something vague) may be serving an index.
        if up_to_date and current is not None and current.media_type not in IMAGE_TYPES:
            children = await self.planner.children_if_signed(destination, digest, source_tags)
        planner = self.planner
        # Whether the destination holds the digest under another tag is asked at once
        # with the signature HEADs, when the tag does not already name it.
        signatures, held = await asyncio.gather(
            planner.source_signatures(source, endpoint, [digest, *children], source_tags),
            planner.holds(destination, digest, known=up_to_date),
        )
        if up_to_date and len(await planner.present_at(destination, signatures)) == len(signatures):
            result.status = "up-to-date"
            return

        plan = await planner.plan(
            source,
            endpoint,
            destination,
            Descriptor(head.media_type, digest, head.size),
            signatures,
            source_tags,
            platforms_looked_up=bool(children),
            top_held=held,
        )
        blobs = _unique_blobs(plan.manifests())
        if self.progress:
            self.progress.planned(str(source), sum(b.size for b in blobs))
        copied = await asyncio.gather(
            *(self._ensure_blob(source, endpoint, destination, b) for b in blobs)
        )
        result.bytes_copied = sum(copied)

        await asyncio.gather(
            *(self.client.put_manifest(destination, c.digest, c) for c in plan.children)
        )
        # The tag moves last: until here it still names whatever it named before.
        await self.client.put_manifest(destination, destination.tag or digest, plan.top)
        for referrer in plan.referrers:
            await self.client.put_manifest(destination, referrer.digest, referrer)
        for tag, signature in plan.signatures.items():
            await self.client.put_manifest(destination, tag, signature)
        result.status = "copied"

    # -- blobs -------------------------------------------------------------------------

    async def _ensure_blob(
        self, source: Reference, endpoint: str, destination: Reference, blob: Descriptor
    ) -> int:
        """Bytes this call moved for ``blob`` (0 when skipped, mounted or already done)."""
        origin = endpoint  # the source endpoint serving this image
        endpoint = self.client.base_url(destination.registry)
        key = (endpoint, destination.repository, blob.digest)
        task = self._placements.get(key)
        if task is not None:
            await task
            return 0
        task = asyncio.ensure_future(self._place_blob(source, origin, destination, blob, endpoint))
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
        self,
        source: Reference,
        origin: str,
        destination: Reference,
        blob: Descriptor,
        endpoint: str,
    ) -> int:
        home_key = (endpoint, blob.digest)
        home = self._homes.get(home_key)
        if home is not None:
            holder = await asyncio.shield(home)
            elsewhere = holder if holder != destination.repository else None
            if elsewhere and await self.client.mount_blob(destination, blob.digest, elsewhere):
                return 0
            return await self._transfer(source, origin, destination, blob)
        home = asyncio.get_running_loop().create_future()
        self._homes[home_key] = home
        try:
            moved = await self._transfer(source, origin, destination, blob)
        except BaseException:
            home.set_result(None)
            del self._homes[home_key]
            raise
        home.set_result(destination.repository)
        return moved

    async def _transfer(
        self, source: Reference, origin: str, destination: Reference, blob: Descriptor
    ) -> int:
        # Control requests take no transfer slot: every blob's HEAD goes out at once,
        # and a slot is held only while bytes move.
        if await self.client.blob_exists(destination, blob.digest):
            return 0
        same = origin == self.client.base_url(destination.registry)
        if same and await self.client.mount_blob(destination, blob.digest, source.repository):
            return 0
        report = self.progress
        on_bytes = (lambda n: report.advanced(str(source), n)) if report else None
        async with self._blob_slots:
            return await self.client.copy_blob(
                source,
                destination,
                blob,
                on_bytes,
                source_endpoint=origin,
                deadline=self.deadline,
                sessions=self.sessions,
            )


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
    checks: int = DEFAULT_CHECKS,
    progress: CopyProgress | None = None,
) -> list[CopyResult]:
    """Copy a batch of images with one :class:`Copier`."""
    return await Copier(client, jobs=jobs, checks=checks, progress=progress).copy_many(pairs)
