"""Prove a mirror is complete: every image there, at the upstream's digest, whole.

For each (source, destination) pair the status is one of:

- ``ok``: at the destination, whole, and (for a tag) at the digest the upstream names;
- ``missing``: the destination answered that it has no such tag or digest;
- ``stale``: it has the tag, but the upstream tag now names another digest;
- ``incomplete``: a child manifest or a blob the destination manifest refers to is
  absent, so a pull would fail half way;
- ``unknown``: something could not be asked (a refused login, a DNS failure, an
  unreachable upstream, a server error); ``detail`` says what and why.  Nothing was
  proven wrong, and nothing was proven right: re-copying will not help, fixing access will.

A digest-pinned reference (``nginx@sha256:…``, ``nginx:1.27@sha256:…``) names content,
not a moving tag: it is ``ok`` (or ``incomplete``) when the destination has that digest
and ``missing`` when it does not; it is never ``stale`` and the upstream is not asked.

The upstream is only ever asked with HEAD requests (not Docker Hub pulls); the
destination is read with GETs for the manifests and HEADs for the blobs.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Literal

from armirror.reference import Reference
from armirror.registry import RegistryClient, RegistryError
from armirror.registry.manifest import Manifest

ImageState = Literal["ok", "missing", "stale", "incomplete", "unknown"]
#: Every status, in the order a summary lists them.
STATES: tuple[ImageState, ...] = ("ok", "missing", "stale", "incomplete", "unknown")
#: Statuses that prove the mirror wrong (re-copy fixes them).
PROBLEMS = frozenset({"missing", "stale", "incomplete"})


@dataclass
class ImageCheck:
    source: str
    destination: str
    status: ImageState
    detail: str = ""
    digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summary(checks: list[ImageCheck]) -> dict[str, int]:
    """How many images have each status (every status present, zeros included)."""
    counts = Counter(check.status for check in checks)
    return {state: counts.get(state, 0) for state in STATES}


async def _missing_parts(
    client: RegistryClient, destination: Reference, top: Manifest
) -> list[str]:
    missing: list[str] = []
    manifests = [top]
    for child in top.children():
        if await client.head_manifest(destination, child.digest) is None:
            missing.append(f"manifest {child.digest}")
        else:
            manifests.append(await client.get_manifest(destination, child.digest))
    seen: set[str] = set()
    for manifest in manifests:
        for blob in manifest.blobs():
            if blob.digest in seen:
                continue
            seen.add(blob.digest)
            if not await client.blob_exists(destination, blob.digest):
                missing.append(f"blob {blob.digest}")
    return missing


async def check_image(
    client: RegistryClient, source: Reference, destination: Reference
) -> ImageCheck:
    """Check one mirrored image; a registry that cannot be asked makes it ``unknown``."""
    result = ImageCheck(str(source), str(destination), "unknown")
    try:
        # A digest names what a pinned reference pulls; a tag may be elsewhere by now.
        at_destination = await client.head_manifest(destination, destination.identifier)
    except RegistryError as exc:
        result.detail = f"could not check the mirror: {exc}"
        return result
    if at_destination is None:
        result.status = "missing"
        result.detail = "not at the destination"
        return result
    result.digest = at_destination.digest

    upstream_note = ""
    if source.digest is None:
        try:
            upstream = await client.head_manifest(source)
        except RegistryError as exc:
            upstream_note = f"in the mirror, but the upstream could not be asked: {exc}"
        else:
            if upstream is None:
                result.detail = "upstream no longer has this tag; the mirror keeps the last copy"
            elif upstream.digest != at_destination.digest:
                result.status = "stale"
                result.detail = (
                    f"upstream is now {upstream.digest}, mirror has {at_destination.digest}"
                )
                return result

    try:
        top = await client.get_manifest(destination, at_destination.digest)
        missing = await _missing_parts(client, destination, top)
    except RegistryError as exc:
        result.detail = f"could not read the mirror's copy: {exc}"
        return result
    if missing:
        result.status = "incomplete"
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        result.detail = f"missing {shown}"
        return result
    if upstream_note:
        result.detail = upstream_note
        return result
    result.status = "ok"
    return result


async def check_images(
    client: RegistryClient, pairs: list[tuple[Reference, Reference]], *, jobs: int = 8
) -> list[ImageCheck]:
    slots = asyncio.Semaphore(jobs)

    async def one(source: Reference, destination: Reference) -> ImageCheck:
        async with slots:
            return await check_image(client, source, destination)

    return list(await asyncio.gather(*(one(s, d) for s, d in pairs)))
