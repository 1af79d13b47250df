"""Manifest, tag and referrer calls of the distribution API.

Each is one request through :meth:`RegistrySession.request`, which retries; only
``put_manifest`` widens what is retried, by the registry's error code.

A registry with several endpoints (``docker.io=https://mirror.gcr.io,
https://registry-1.docker.io``) is read through :meth:`ManifestCalls.resolve`: the first
endpoint that has the image serves it, a later one only when the earlier ones answer
"not found"; any other answer is an error, never a fall-through.  Endpoints that name
different digests for one tag are an error too: a stale mirror is not copied from.
Content addressed by digest falls through to later endpoints on "not found" only.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from armirror.reference import Reference, digest_problem
from armirror.registry.errors import (
    DigestMismatch,
    NotFound,
    PermanentError,
    RegistryError,
    TransientError,
    is_retryable,
)
from armirror.registry.manifest import ACCEPT, Descriptor, Manifest, parse_manifest
from armirror.registry.session import RegistrySession

log = logging.getLogger(__name__)

#: distribution's answer to a manifest that names a blob it does not (yet) see.
BLOB_UNKNOWN_CODES = frozenset({"MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN"})
#: One page of tags/list: the most distribution 3.1 serves by default; it answers a larger
#: ``n`` with 400 PAGINATION_NUMBER_INVALID (distribution/distribution#4844).  A
#: repository with more tags than one page is asked about tag by tag instead.
TAGS_PAGE_SIZE = 1000


def _blob_unknown_or_retryable(error: RegistryError) -> bool:
    """put_manifest retries MANIFEST_BLOB_UNKNOWN as well (see its docstring)."""
    return is_retryable(error) or (
        error.status == 400 and bool(BLOB_UNKNOWN_CODES.intersection(error.codes))
    )


class EndpointsDisagree(TransientError):
    """Two endpoints of one registry name different digests for the same tag (a mirror
    that has not caught up yet); nothing is copied until they agree."""


@dataclass(frozen=True)
class Resolved:
    """What a reference names, and the endpoint that answered for it.  ``descriptor``
    has an empty digest when that endpoint left Docker-Content-Digest out."""

    descriptor: Descriptor
    endpoint: str


class ManifestCalls(RegistrySession):
    """HEAD, GET and PUT of manifests; tags/list; referrers."""

    async def _head(self, ref: Reference, ident: str, endpoint: str | None) -> Descriptor | None:
        try:
            response = await self.request(
                ref.registry,
                "HEAD",
                f"/v2/{ref.repository}/manifests/{ident}",
                what=f"HEAD {ref.name}:{ident}",
                headers={"Accept": ACCEPT},
                endpoint=endpoint,
            )
        except NotFound:
            return None
        # A digest that is not one is no digest (the GET's bytes tell it instead): it
        # would name URL paths of both registries.
        digest = response.headers.get("Docker-Content-Digest") or ""
        return Descriptor(
            media_type=response.headers.get("Content-Type", "").split(";")[0],
            digest="" if digest_problem(digest) else digest,
            size=int(response.headers.get("Content-Length") or 0),
        )

    async def head_manifest(
        self, ref: Reference, identifier: str | None = None, *, endpoint: str | None = None
    ) -> Descriptor | None:
        """The digest and media type at a tag or digest, with a HEAD (not a Docker Hub pull)."""
        head = await self._head(ref, identifier or ref.identifier, endpoint)
        return head if head is not None and head.digest else None  # no digest: GET instead

    async def resolve(self, ref: Reference, identifier: str | None = None) -> Resolved | None:
        """The first of the registry's endpoints that has ``ref``, with what it names;
        None when none has it.  A tag is HEADed at every endpoint at once (HEADs are no
        pulls), so that endpoints naming different digests are caught."""
        ident = identifier or ref.identifier
        endpoints = self.candidates(ref.registry)
        if len(endpoints) == 1 or ident.startswith("sha256:"):
            for endpoint in endpoints:
                head = await self._head(ref, ident, endpoint)
                if head is not None:
                    return Resolved(head, endpoint)
            return None
        answers = await asyncio.gather(
            *(self._head(ref, ident, e) for e in endpoints), return_exceptions=True
        )
        for n, (endpoint, answer) in enumerate(zip(endpoints, answers, strict=True)):
            if isinstance(answer, BaseException):
                raise answer  # an earlier endpoint failing is no reason to go further
            if answer is None:
                continue
            for other, later in zip(endpoints[n + 1 :], answers[n + 1 :], strict=True):
                if isinstance(later, Descriptor) and later.digest and answer.digest:
                    if later.digest != answer.digest:
                        raise EndpointsDisagree(
                            f"{ref}: {endpoint} names {answer.digest} but {other} names "
                            f"{later.digest}; not copying until they agree"
                        )
                elif isinstance(later, BaseException):
                    log.info("%s: could not compare with %s: %s", ref, other, later)
            return Resolved(answer, endpoint)
        return None

    async def get_manifest(
        self, ref: Reference, identifier: str | None = None, *, endpoint: str | None = None
    ) -> Manifest:
        """Fetch a manifest's exact bytes; check them against the digest that named them.

        By digest, an endpoint that does not have it is followed by the registry's
        later endpoints; the bytes are checked against the digest either way.
        """
        ident = identifier or ref.identifier
        expected = ident if ident.startswith("sha256:") else None
        endpoints = [endpoint or self.base_url(ref.registry)]
        if expected:
            later = self.candidates(ref.registry)
            if endpoints[0] in later:
                endpoints += list(later[later.index(endpoints[0]) + 1 :])
        for n, base in enumerate(endpoints):
            try:
                response = await self.request(
                    ref.registry,
                    "GET",
                    f"/v2/{ref.repository}/manifests/{ident}",
                    what=f"manifest {ref.name}:{ident}",
                    headers={"Accept": ACCEPT},
                    endpoint=base,
                )
            except NotFound:
                if n + 1 < len(endpoints):
                    continue
                raise
            return parse_manifest(response.content, response.headers.get("Content-Type"), expected)
        raise AssertionError("unreachable")  # pragma: no cover

    async def put_manifest(self, ref: Reference, identifier: str, manifest: Manifest) -> None:
        """Push the exact bytes; the registry must agree on the digest.

        Callers push a manifest only after everything it names is in place, so a 400
        ``MANIFEST_BLOB_UNKNOWN`` here is the registry briefly not seeing it: eventual
        consistency, or another client pushing the same image at the same moment
        (distribution's filesystem storage rewrites link files in place).  That answer
        is retried within the retry budget like a transient error.
        """
        response = await self.request(
            ref.registry,
            "PUT",
            f"/v2/{ref.repository}/manifests/{identifier}",
            what=f"push manifest {ref.name}:{identifier}",
            ok=(200, 201, 202),
            headers={"Content-Type": manifest.media_type},
            content=manifest.raw,
            retryable=_blob_unknown_or_retryable,
        )
        echoed = response.headers.get("Docker-Content-Digest")
        if echoed and echoed != manifest.digest:
            raise DigestMismatch(
                f"{ref.name}:{identifier} was stored as {echoed}, expected {manifest.digest}"
            )

    async def list_tags(
        self, ref: Reference, *, page_size: int = TAGS_PAGE_SIZE, endpoint: str | None = None
    ) -> list[str] | None:
        """The repository's tags from one page of ``tags/list`` (a GET, but not a pull), at
        ``endpoint`` (the registry's first by default).

        None when the repository is missing, or has more tags than one page holds:
        callers then ask about the tags they care about with HEADs instead.
        """
        try:
            response = await self.request(
                ref.registry,
                "GET",
                f"/v2/{ref.repository}/tags/list",
                what=f"tags of {ref.name}",
                params={"n": str(page_size)},
                endpoint=endpoint,
            )
        except NotFound:
            return None
        if "next" in response.headers.get("Link", ""):
            return None
        try:
            tags = response.json().get("tags") or []
        except (ValueError, AttributeError, RecursionError):
            return None
        if not isinstance(tags, list):
            return None
        return [str(tag) for tag in tags]

    async def referrers(
        self, ref: Reference, digest: str, *, endpoint: str | None = None
    ) -> list[Descriptor] | None:
        """OCI 1.1 referrers of a digest, or None where the registry lacks the API."""
        try:
            response = await self.request(
                ref.registry,
                "GET",
                f"/v2/{ref.repository}/referrers/{digest}",
                what=f"referrers of {ref.name}@{digest}",
                headers={"Accept": "application/vnd.oci.image.index.v1+json"},
                endpoint=endpoint,
            )
        except (NotFound, PermanentError):
            return None
        if "application/vnd.oci.image.index.v1+json" not in response.headers.get(
            "Content-Type", ""
        ):
            return None
        manifests = response.json().get("manifests") or []
        return [
            Descriptor(m.get("mediaType", ""), m["digest"], int(m.get("size", 0)))
            for m in manifests
            if isinstance(m, dict) and "digest" in m
        ]
