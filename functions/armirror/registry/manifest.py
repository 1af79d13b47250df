"""Manifest media types and what each manifest refers to.

armirror copies OCI indexes and manifests, Docker manifest lists and Docker v2 schema 2
manifests, byte for byte.  This module only reads them: which child manifests an index
names, which blobs a manifest needs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from armirror.reference import digest_problem
from armirror.registry.errors import DigestMismatch, UnsupportedManifest

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])

#: Layers that Docker never pushes (Windows base layers); their ``urls`` say where they live.
NON_DISTRIBUTABLE = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """Raw manifest bytes with their media type and digest; ``raw`` is never re-encoded."""

    raw: bytes
    media_type: str
    digest: str

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def _body(self) -> dict[str, Any]:
        body = _load(self.raw, f"manifest {self.digest}")
        if not isinstance(body, dict):
            raise UnsupportedManifest(f"manifest {self.digest} is not a JSON object")
        return body

    def children(self) -> list[Descriptor]:
        """Child manifests of an index (every platform and attestation)."""
        if not self.is_index:
            return []
        return [
            _descriptor(e, self.digest) for e in _entries(self._body(), "manifests", self.digest)
        ]

    def blobs(self) -> list[Descriptor]:
        """Config and layers of an image manifest, minus non-distributable layers."""
        if self.is_index:
            return []
        body = self._body()
        found = []
        if "config" in body:
            found.append(_descriptor(body["config"], self.digest))
        for layer in _entries(body, "layers", self.digest):
            descriptor = _descriptor(layer, self.digest)
            if descriptor.media_type not in NON_DISTRIBUTABLE:
                found.append(descriptor)
        return found

    def subject(self) -> str | None:
        """The digest this manifest refers to (an OCI 1.1 referrer), if any."""
        subject = self._body().get("subject")
        return subject.get("digest") if isinstance(subject, dict) else None


def _load(raw: bytes, what: str) -> Any:
    """JSON from a registry: a clear refusal for bytes that are not JSON, and for JSON
    nested too deeply for Python's parser (issue 12 §7: that was a 500)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise UnsupportedManifest(f"{what} is nested too deeply") from None
    except ValueError:  # a registry sent bytes that are not JSON under a manifest type
        raise UnsupportedManifest(f"{what} is not valid JSON") from None


def _entries(body: dict[str, Any], key: str, parent: str) -> list[Any]:
    entries = body.get(key, [])
    if not isinstance(entries, list):  # e.g. "layers": null would otherwise be a TypeError
        raise UnsupportedManifest(f"manifest {parent} has a malformed {key!r} list")
    return entries


def _descriptor(entry: Any, parent: str) -> Descriptor:
    """A descriptor whose digest is a digest: it names URL paths, and a hostile one
    ("sha256:../../…") would reach other paths of both registries."""
    try:
        found = Descriptor(
            media_type=str(entry.get("mediaType", "")),
            digest=str(entry["digest"]),
            size=int(entry.get("size", 0)),
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        raise UnsupportedManifest(f"manifest {parent} has a malformed descriptor") from None
    if digest_problem(found.digest) or found.size < 0:
        raise UnsupportedManifest(f"manifest {parent} has a malformed descriptor")
    return found


#: Content-Types that say nothing about a manifest (a static file server, a proxy, a
#: registry storing what it was given): the type comes from the body instead.
_VAGUE_TYPES = frozenset(
    {"", "application/json", "text/plain", "application/octet-stream", "binary/octet-stream"}
)


def parse_manifest(raw: bytes, content_type: str | None, expected_digest: str | None) -> Manifest:
    """Check a fetched manifest's digest and type; refuse schema 1 with a clear message."""
    digest = sha256_digest(raw)
    if expected_digest and expected_digest.startswith("sha256:") and digest != expected_digest:
        raise DigestMismatch(f"manifest content hashes to {digest}, expected {expected_digest}")
    media_type = (content_type or "").split(";", 1)[0].strip()
    if media_type in _VAGUE_TYPES:
        body = _load(raw, "manifest")
        media_type = str(body.get("mediaType", "")) if isinstance(body, dict) else ""
        if not media_type and isinstance(body, dict):
            if body.get("schemaVersion") == 1:
                media_type = DOCKER_SCHEMA1[0]
            elif "manifests" in body:
                media_type = OCI_INDEX
            elif "config" in body:
                media_type = OCI_MANIFEST
    if media_type in DOCKER_SCHEMA1:
        raise UnsupportedManifest(
            "Docker schema 1 manifests are not supported (deprecated since 2017, and "
            "their digests cannot be preserved); rebuild or re-push the image"
        )
    if media_type not in INDEX_TYPES and media_type not in IMAGE_TYPES:
        raise UnsupportedManifest(f"unsupported manifest media type {media_type!r}")
    return Manifest(raw=raw, media_type=media_type, digest=digest)
