"""Helpers of the blob-transfer contract tests: an image with one layer pushed to the
source, the references of a copy of it into a fresh mirror, a client whose docker.io is
the source, a copy whose layer goes up in recorded chunks, and uploads set up by hand
(other blobs already there, an upload holding its first bytes)."""

from __future__ import annotations

import asyncio

import httpx
from armirror.reference import Reference, destination_for, parse
from armirror.registry import CopyResult, RegistryClient
from armirror.registry.copy import Copier
from armirror.registry.resumable import MemoryUploadSessions
from faultproxy import FaultProxy
from registry_checks import credentials, fast_retry, unique
from standins import images
from standins.registry import Registry

UPLOADS = "/blobs/uploads/"
LAYER = 200_000
DENIED = b'{"errors":[{"code":"DENIED","message":"quota exceeded"}]}'
JSON = {"Content-Type": "application/json"}


def layered_image(
    source_registry: Registry, stem: str, seed: int
) -> tuple[images.Image, images.Blob]:
    """A pushed image with one layer of LAYER bytes (and that layer)."""
    image = images.single_image(unique(f"library/{stem}"), "1", seed=seed, layer_sizes=(LAYER,))
    images.push(source_registry.url, image)
    return image, next(b for b in image.blobs if b.size == LAYER)


def mirror_refs(image: images.Image, dest_host: str) -> tuple[Reference, Reference]:
    source = parse(f"docker.io/{image.repository}:1")
    return source, destination_for(source, f"{dest_host}/{unique('mirror')}")


def closing_path(digest: str) -> str:
    """The path of the PUT that closes an upload of ``digest``."""
    return rf"{UPLOADS}.*digest={digest.replace(':', '%3A')}"


def copy_client(
    source_url: str, dest_host: str, dest_url: str, **options: object
) -> RegistryClient:
    settings: dict[str, object] = {"retry": fast_retry(), **options}
    return RegistryClient(
        upstreams={"docker.io": source_url, dest_host: dest_url},
        credentials=credentials(),
        allow_private_hosts=True,
        **settings,  # type: ignore[arg-type]
    )


def copy_chunked(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy,
    image: images.Image, layer: images.Blob, **options: object,
) -> tuple[CopyResult, Reference]:  # fmt: skip
    """Copy ``image`` through the proxy, its layer going up in recorded chunks."""
    source, destination = mirror_refs(image, dest_registry.host)

    async def main() -> CopyResult:
        async with copy_client(
            source_registry.url, dest_registry.host, dest_proxy.url,
            resumable_min_size=layer.size, **options,
        ) as client:  # fmt: skip
            copier = Copier(client, sessions=MemoryUploadSessions())
            return await copier.copy(source, destination)

    return asyncio.run(asyncio.wait_for(main(), timeout=60)), destination


def blob_path(digest: str) -> str:
    return rf"/blobs/{digest}$"


def place_all_but(
    registry_url: str, repository: str, image: images.Image, layer: images.Blob
) -> None:
    """Put every blob of ``image`` but ``layer`` in ``repository`` (monolithic uploads), so
    the layer's requests are the only uploads a copy sends."""
    with httpx.Client(base_url=registry_url, timeout=30) as http:
        for blob in image.all_blobs():
            if blob.digest == layer.digest:
                continue
            started = http.post(f"/v2/{repository}/blobs/uploads/")
            location = httpx.URL(registry_url + "/").join(started.headers["Location"])
            put = http.put(
                location.copy_merge_params({"digest": blob.digest}),
                content=b"".join(blob.chunks()),
                headers={"Content-Type": "application/octet-stream"},
            )
            assert put.status_code == 201, put.text


def partial_upload(proxy_url: str, repository: str, content: bytes) -> str:
    """Start an upload through the proxy and send ``content`` as its first chunk; the
    location to go on from (what a stopped attempt records)."""
    with httpx.Client(base_url=proxy_url, timeout=30) as http:
        started = http.post(f"/v2/{repository}/blobs/uploads/")
        location = httpx.URL(proxy_url + "/").join(started.headers["Location"])
        patched = http.patch(
            location, content=content,
            headers={"Content-Type": "application/octet-stream",
                     "Content-Range": f"0-{len(content) - 1}"},
        )  # fmt: skip
        assert patched.status_code == 202, patched.text
        return str(location.join(patched.headers["Location"]))
