"""Manifest, tag and referrer calls of the distribution API.

Each is one request through :meth:`RegistrySession.request`, which retries; only
``put_manifest`` widens what is retried, by the registry's error code.
"""

from __future__ import annotations

from armirror.reference import Reference
from armirror.registry.errors import (
    DigestMismatch,
    NotFound,
    PermanentError,
    RegistryError,
)
from armirror.registry.manifest import ACCEPT, Descriptor, Manifest, parse_manifest
from armirror.registry.session import RegistrySession, is_retryable

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


class ManifestCalls(RegistrySession):
    """HEAD, GET and PUT of manifests; tags/list; referrers."""

    async def head_manifest(
        self, ref: Reference, identifier: str | None = None
    ) -> Descriptor | None:
        """The digest and media type at a tag or digest, with a HEAD (not a Docker Hub pull)."""
        ident = identifier or ref.identifier
        try:
            response = await self.request(
                ref.registry,
                "HEAD",
                f"/v2/{ref.repository}/manifests/{ident}",
                what=f"HEAD {ref.name}:{ident}",
                headers={"Accept": ACCEPT},
            )
        except NotFound:
            return None
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            return None  # the caller falls back to a GET
        return Descriptor(
            media_type=response.headers.get("Content-Type", "").split(";")[0],
            digest=digest,
            size=int(response.headers.get("Content-Length") or 0),
        )

    async def get_manifest(self, ref: Reference, identifier: str | None = None) -> Manifest:
        """Fetch a manifest's exact bytes; check them against the digest that named them."""
        ident = identifier or ref.identifier
        response = await self.request(
            ref.registry,
            "GET",
            f"/v2/{ref.repository}/manifests/{ident}",
            what=f"manifest {ref.name}:{ident}",
            headers={"Accept": ACCEPT},
        )
        expected = ident if ident.startswith("sha256:") else None
        return parse_manifest(response.content, response.headers.get("Content-Type"), expected)

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
        self, ref: Reference, *, page_size: int = TAGS_PAGE_SIZE
    ) -> list[str] | None:
        """The repository's tags from one page of ``tags/list`` (a GET, but not a pull).

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

    async def referrers(self, ref: Reference, digest: str) -> list[Descriptor] | None:
        """OCI 1.1 referrers of a digest, or None where the registry lacks the API."""
        try:
            response = await self.request(
                ref.registry,
                "GET",
                f"/v2/{ref.repository}/referrers/{digest}",
                what=f"referrers of {ref.name}@{digest}",
                headers={"Accept": "application/vnd.oci.image.index.v1+json"},
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
