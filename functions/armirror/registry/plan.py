"""What copying an image takes, found with as few source manifest GETs as possible.

A manifest GET is what Docker Hub counts as a pull; a HEAD is not.  So the planner:

- GETs by digest only what the destination lacks: a platform manifest, referrer or
  signature already at the destination (a HEAD there says so) is not fetched again, and
  neither is a top manifest the destination holds under another tag (it is read from
  the destination instead, which has no pull limit);
- before GETting from an endpoint that reports ``ratelimit-remaining``, checks that the
  GETs fit (:func:`armirror.registry.budget.check`) and otherwise fails the image as
  rate limited, with a retry time, without spending anything;
- reads from the endpoint that answered for the image (the first of the registry's
  endpoints that has it), falling through to the next only when one does not have a
  digest.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from armirror.reference import Reference
from armirror.registry import budget
from armirror.registry.client import RegistryClient
from armirror.registry.errors import RegistryError, UnsupportedManifest
from armirror.registry.manifest import INDEX_TYPES, Descriptor, Manifest

SIGNATURE_SUFFIXES = ("sig", "att", "sbom")
SIGNATURE_TAG_RE = re.compile(r"^sha256-[0-9a-f]{64}\.(?:sig|att|sbom)$")


def signature_tags(digest: str) -> list[str]:
    """Cosign's tag scheme: ``sha256:abc`` -> ``sha256-abc.sig`` (and .att, .sbom)."""
    stem = digest.replace(":", "-")
    return [f"{stem}.{suffix}" for suffix in SIGNATURE_SUFFIXES]


@dataclass
class Plan:
    """The manifests a copy pushes: only those the destination lacks."""

    top: Manifest
    children: list[Manifest] = field(default_factory=list)
    signatures: dict[str, Manifest] = field(default_factory=dict)
    referrers: list[Manifest] = field(default_factory=list)

    def manifests(self) -> list[Manifest]:
        return [self.top, *self.children, *self.signatures.values(), *self.referrers]


class Planner:
    """Plans copies for one :class:`~armirror.registry.copy.Copier` (shares its caches)."""

    def __init__(self, client: RegistryClient, *, signatures: bool = True) -> None:
        self.client = client
        self.signatures = signatures
        # (source repository name, endpoint) -> its tags/list (None when unavailable).
        self._tag_lists: dict[tuple[str, str | None], asyncio.Future[list[str] | None]] = {}

    # -- signatures --------------------------------------------------------------------

    async def source_tags(self, source: Reference, endpoint: str | None = None) -> list[str] | None:
        """One tags/list per source repository, endpoint and run, shared by its images.
        Without ``endpoint``, the registry's first: asked before the image is resolved."""
        if not self.signatures:
            return []
        key = (source.name, endpoint)
        task = self._tag_lists.get(key)
        if task is None:
            task = asyncio.ensure_future(self.client.list_tags(source, endpoint=endpoint))
            self._tag_lists[key] = task
        try:
            return await asyncio.shield(task)
        except RegistryError:
            return None

    async def tags_at(
        self, source: Reference, endpoint: str, first: list[str] | None
    ) -> list[str] | None:
        """The tag list of the endpoint that has the image: ``first`` (the registry's first
        endpoint's, asked at once) when that is the one.  A pull-through mirror lists only
        what it has cached, so a later endpoint's signature tags are not in its list."""
        if endpoint == self.client.base_url(source.registry):
            return first
        return await self.source_tags(source, endpoint)

    async def source_signatures(
        self, source: Reference, endpoint: str, digests: list[str], tags: list[str] | None
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
        found = await asyncio.gather(
            *(self.client.head_manifest(source, t, endpoint=endpoint) for t in candidates)
        )
        return {
            tag: head.digest
            for tag, head in zip(candidates, found, strict=True)
            if head is not None
        }

    async def present_at(self, destination: Reference, wanted: dict[str, str]) -> set[str]:
        """Which of ``wanted`` (tag -> digest) the destination has at that digest (HEADs)."""
        heads = await asyncio.gather(
            *(self.client.head_manifest(destination, tag) for tag in wanted)
        )
        return {
            tag
            for (tag, digest), head in zip(wanted.items(), heads, strict=True)
            if head is not None and head.digest == digest
        }

    async def children_if_signed(
        self, destination: Reference, digest: str, tags: list[str] | None
    ) -> list[str]:
        """The platform digests of an index that is already mirrored, when the source's
        tag list has signature tags for digests other than the index's own (else []).

        They come from the mirror's copy of the index, which has the same digest, so
        asking costs no pull from the source.
        """
        own = set(signature_tags(digest))
        if not tags or not any(SIGNATURE_TAG_RE.match(t) and t not in own for t in tags):
            return []
        mirrored = await self.client.get_manifest(destination, digest)
        return [child.digest for child in mirrored.children()]

    # -- manifests ---------------------------------------------------------------------

    async def holds(self, destination: Reference, digest: str, *, known: bool = False) -> bool:
        """Whether the destination has ``digest`` (a HEAD; ``known`` skips asking)."""
        return known or not await self._missing(destination, [digest])

    async def _missing(self, destination: Reference, digests: list[str]) -> list[str]:
        heads = await asyncio.gather(*(self.client.head_manifest(destination, d) for d in digests))
        return [d for d, head in zip(digests, heads, strict=True) if head is None]

    def _check(self, endpoint: str, needed: int, what: str) -> None:
        host = endpoint.split("://", 1)[-1]
        budget.check(self.client.ratelimit(endpoint), needed, what, host)

    async def plan(
        self,
        source: Reference,
        endpoint: str,
        destination: Reference,
        head: Descriptor,
        signatures: dict[str, str],
        tags: list[str] | None,
        *,
        platforms_looked_up: bool = False,
        top_held: bool | None = None,
    ) -> Plan:
        """Fetch what the destination lacks of ``head`` (the image the source named), of
        its platforms, referrers and ``signatures`` (tag -> digest at the source; the
        platforms' signature tags are added from ``tags`` unless ``platforms_looked_up``).
        ``top_held`` says whether the destination has the digest, when already asked.
        """
        digest = head.digest
        held = await self.holds(destination, digest) if top_held is None else top_held
        top_missing = not held
        # Known before the top manifest is read: it (unless the destination has it under
        # another tag), and for an index at least one platform.
        needed = int(top_missing) * (2 if head.media_type in INDEX_TYPES else 1)
        self._check(endpoint, needed, f"copy {source}")
        holder, where = (source, endpoint) if top_missing else (destination, None)
        top, listed = await asyncio.gather(  # one round trip for both
            self.client.get_manifest(holder, digest, endpoint=where),
            self.client.referrers(source, digest, endpoint=endpoint),
        )
        referrers = listed or []
        children = [c.digest for c in top.children()]
        if children and not platforms_looked_up and tags is not None:
            found = await self.source_signatures(source, endpoint, children, tags)
            signatures = {**signatures, **found}
        missing, signed_already, missing_referrers = await asyncio.gather(
            self._missing(destination, children),
            self.present_at(destination, signatures),
            self._missing(destination, [d.digest for d in referrers]),
        )
        wanted = [t for t in sorted(signatures) if t not in signed_already]
        self._check(endpoint, len(missing) + len(wanted) + len(missing_referrers), f"copy {source}")
        fetched = await asyncio.gather(
            *(self.client.get_manifest(source, d, endpoint=endpoint) for d in missing),
            *(self.client.get_manifest(source, t, endpoint=endpoint) for t in wanted),
            *(self.client.get_manifest(source, d, endpoint=endpoint) for d in missing_referrers),
        )
        platforms = list(fetched[: len(missing)])
        for child in platforms:
            if child.is_index:
                raise UnsupportedManifest(f"{source}: nested indexes are not supported")
        signed = fetched[len(missing) : len(missing) + len(wanted)]
        return Plan(
            top=top,
            children=platforms,
            signatures=dict(zip(wanted, signed, strict=True)),
            referrers=list(fetched[len(missing) + len(wanted) :]),
        )
