"""Prove a mirror is complete: every image there, at the upstream's digest, whole.

For each (source, destination) pair:

- ``missing``: the destination has no such tag or digest;
- ``stale``: it has one, but the upstream now names another digest (the tag moved);
- ``incomplete``: a child manifest or a blob the destination manifest refers to is
  absent, so a pull would fail half way;
- ``ok``: none of the above.

The upstream is only ever asked with HEAD requests (not Docker Hub pulls); the
destination is read with GETs for the manifests and HEADs for the blobs.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any, Literal

from armirror.reference import Reference
from armirror.registry import RegistryClient, RegistryError
from armirror.registry.manifest import Manifest

ImageState = Literal["ok", "missing", "stale", "incomplete"]


@dataclass
class ImageCheck:
    source: str
    destination: str
    status: ImageState
    detail: str = ""
    digest: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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
    """Check one mirrored image; registry failures become a ``missing`` with the reason."""
    result = ImageCheck(str(source), str(destination), "missing")
    try:
        at_destination = await client.head_manifest(
            destination, destination.tag or destination.digest
        )
        if at_destination is None:
            result.detail = "not at the destination"
            return result
        result.digest = at_destination.digest
        upstream_digest = source.digest
        if upstream_digest is None:
            upstream = await client.head_manifest(source)
            upstream_digest = upstream.digest if upstream else None
        if upstream_digest is None:
            result.detail = "upstream no longer has this tag; the mirror keeps the last copy"
        elif upstream_digest != at_destination.digest:
            result.status = "stale"
            result.detail = f"upstream is now {upstream_digest}, mirror has {at_destination.digest}"
            return result
        top = await client.get_manifest(destination, at_destination.digest)
        missing = await _missing_parts(client, destination, top)
        if missing:
            result.status = "incomplete"
            shown = ", ".join(missing[:3]) + (
                f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            )
            result.detail = f"missing {shown}"
            return result
        result.status = "ok"
    except RegistryError as exc:
        result.detail = str(exc)
    return result


async def check_images(
    client: RegistryClient, pairs: list[tuple[Reference, Reference]], *, jobs: int = 8
) -> list[ImageCheck]:
    slots = asyncio.Semaphore(jobs)

    async def one(source: Reference, destination: Reference) -> ImageCheck:
        async with slots:
            return await check_image(client, source, destination)

    return list(await asyncio.gather(*(one(s, d) for s, d in pairs)))
