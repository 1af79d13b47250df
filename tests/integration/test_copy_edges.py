"""Copy edges against real docker-registry servers and the fault proxy, in process.

- ``copy_images`` keeps its bounds: with ``checks=1`` one image at a time, with
  ``jobs=1`` one blob upload at a time, and the progress display hears of each.
- A resumable upload goes on from what the destination already holds, moving only the
  rest; a blob the source lacks fails the copy at once (no retries, not "try again").
- A registry that refuses chunks gets the blob whole even when cancelling its abandoned
  upload fails.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest
from armirror.reference import Reference, destination_for, parse
from armirror.registry import CopyResult, RegistryClient
from armirror.registry.copy import Copier, copy_images
from armirror.registry.errors import TransientError
from armirror.registry.resumable import ChunkedUpload, MemoryUploadSessions
from faultproxy import FaultProxy
from registry_checks import credentials, fast_retry, unique, verify_image
from standins import images
from standins.registry import Registry

UPLOADS = "/blobs/uploads/"


class Heard:
    """A progress display that writes down what it hears, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.moved: dict[str, int] = {}
        self._lock = threading.Lock()  # bytes are reported from transfer threads

    def planned(self, source: str, total_bytes: int) -> None:
        self.events.append(("planned", source))

    def advanced(self, source: str, nbytes: int) -> None:
        with self._lock:
            self.moved[source] = self.moved.get(source, 0) + nbytes

    def finished(self, result: CopyResult) -> None:
        self.events.append(("finished", result.source))


@pytest.fixture
def dest_proxy(dest_registry: Registry) -> Iterator[FaultProxy]:
    """The destination behind the fault proxy, its upload locations pointing back at it."""
    with FaultProxy(dest_registry.url, rewrite_location=True) as proxy:
        yield proxy


def _client(source_url: str, dest_host: str, dest_url: str, **options: object) -> RegistryClient:
    return RegistryClient(
        upstreams={"docker.io": source_url, dest_host: dest_url},
        credentials=credentials(),
        retry=fast_retry(),
        allow_private_hosts=True,
        **options,  # type: ignore[arg-type]
    )


# -- copy_images keeps its bounds -----------------------------------------------------------


def test_copy_images_one_image_and_one_upload_at_a_time(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    batch = [
        images.single_image(unique("library/one-by-one"), "1", seed=18701 + n,
                            layer_sizes=(20_000, 30_000, 40_000))
        for n in range(2)
    ]  # fmt: skip
    for image in batch:
        images.push(source_registry.url, image)
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    sources = [parse(f"docker.io/{image.repository}:1") for image in batch]
    pairs = [(s, destination_for(s, prefix)) for s in sources]
    heard = Heard()

    async def main() -> list[CopyResult]:
        async with _client(source_registry.url, dest_registry.host, dest_proxy.url) as client:
            return await copy_images(pairs, client=client, jobs=1, checks=1, progress=heard)

    results = asyncio.run(asyncio.wait_for(main(), timeout=120))

    assert [(r.source, r.status) for r in results] == [(str(s), "copied") for s in sources]
    # checks=1: the second image is not begun before the first has finished.
    first, second = (str(s) for s in sources)
    assert heard.events == [
        ("planned", first),
        ("finished", first),
        ("planned", second),
        ("finished", second),
    ]
    for image, source in zip(batch, sources, strict=True):
        total = sum(b.size for b in image.all_blobs())
        assert heard.moved[str(source)] == total
        assert results[sources.index(source)].bytes_copied == total
    # jobs=1: each upload is started only after the one before it was sent.
    uploads = [m for _, m, p in dest_proxy.arrivals if m in ("POST", "PUT") and UPLOADS in p]
    blobs = sum(len(image.all_blobs()) for image in batch)
    assert uploads == ["POST", "PUT"] * blobs
    for image, (_, destination) in zip(batch, pairs, strict=True):
        verify_image(dest_registry.url, destination.repository, image.digest)


# -- resumable uploads ------------------------------------------------------------------------


def test_a_recorded_upload_goes_on_from_what_the_destination_holds(
    source_registry: Registry, dest_registry: Registry
) -> None:
    image = images.single_image(unique("library/resumed"), "1", seed=18710, layer_sizes=(500_000,))
    images.push(source_registry.url, image)
    layer = next(b for b in image.blobs if b.size == 500_000)
    content = b"".join(layer.chunks())
    source = parse(f"docker.io/{image.repository}:1")
    destination = destination_for(source, f"{dest_registry.host}/{unique('mirror')}")
    # An earlier attempt sent the first 123,456 bytes and recorded where it stood.
    held = 123_456
    with httpx.Client(base_url=dest_registry.url) as http:
        started = http.post(f"/v2/{destination.repository}/blobs/uploads/")
        assert started.status_code == 202
        sent = http.patch(
            started.headers["Location"],
            content=content[:held],
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"0-{held - 1}",
            },
        )
        assert sent.status_code == 202 and sent.headers["Range"] == f"0-{held - 1}"
    sessions = MemoryUploadSessions()
    key = f"{dest_registry.url}/{destination.repository}"
    sessions.save_upload_session(key, layer.digest, sent.headers["Location"], held)
    heard = Heard()

    async def main() -> CopyResult:
        async with _client(
            source_registry.url,
            dest_registry.host,
            dest_registry.url,
            resumable_min_size=layer.size,  # only the layer goes up in chunks
        ) as client:
            copier = Copier(client, sessions=sessions, progress=heard)
            return await copier.copy(source, destination)

    result = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert result.status == "copied", result.error
    config_size = sum(b.size for b in image.all_blobs()) - layer.size
    assert result.bytes_copied == config_size + layer.size - held  # only the rest moved
    assert heard.moved[str(source)] == config_size + layer.size
    assert sessions.upload_session(key, layer.digest) is None  # finished and forgotten
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_blob_the_source_lacks_fails_the_chunked_copy_at_once(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    image = images.single_image(unique("library/lacking"), "1", seed=18720, layer_sizes=(70_000,))
    images.push(source_registry.url, image)
    layer = next(b for b in image.blobs if b.size == 70_000)
    hub.add("GET", f"/blobs/{layer.digest}", "serve", status=404, times=20)
    source = parse(f"docker.io/{image.repository}:1")
    destination = destination_for(source, f"{dest_registry.host}/{unique('mirror')}")

    async def main() -> CopyResult:
        async with _client(
            hub.url, dest_registry.host, dest_registry.url, resumable_min_size=1
        ) as client:
            return await Copier(client, sessions=MemoryUploadSessions()).copy(source, destination)

    result = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.startswith(f"download blob {layer.digest}: not found at {hub.url}")
    assert not result.retryable  # not found is not "try again"
    assert hub.count("GET", f"/blobs/{layer.digest}") == 1  # and not asked again
    assert _tag_absent(dest_registry.url, destination)


def _tag_absent(url: str, destination: Reference) -> bool:
    answer = httpx.head(f"{url}/v2/{destination.repository}/manifests/{destination.tag}")
    return answer.status_code == 404


def test_chunked_upload_on_its_own_says_what_the_source_answered(
    source_registry: Registry, dest_registry: Registry
) -> None:
    missing = "sha256:" + "e" * 64
    with httpx.Client() as http:
        upload = ChunkedUpload(
            client=http,
            digest=missing,
            size=10,
            download=(httpx.URL(f"{source_registry.url}/v2/library/none/blobs/{missing}"), None),
            upload=(httpx.URL(f"{dest_registry.url}/v2/library/none/blobs/uploads/x"), None),
            offset=0,
            deadline=None,
            record=lambda location, offset: None,
        )
        with pytest.raises(TransientError) as caught:
            upload.run()
    assert str(caught.value) == f"download blob {missing}: answered 404"
    assert upload.moved == 0


# -- a registry that refuses chunks -----------------------------------------------------------


def test_refused_chunks_go_whole_even_when_cancelling_the_upload_fails(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    image = images.single_image(unique("library/nocancel"), "1", seed=18730, layer_sizes=(90_000,))
    images.push(source_registry.url, image)
    dest_proxy.add("PATCH", UPLOADS, "serve", status=405, times=100)
    # The abandoned upload's DELETE gets an answer that cannot be read.
    dest_proxy.add(
        "DELETE", UPLOADS, "serve", status=200, headers={"Content-Encoding": "gzip"},
        body=b"not gzip", times=100,
    )  # fmt: skip
    source = parse(f"docker.io/{image.repository}:1")
    destination = destination_for(source, f"{dest_registry.host}/{unique('mirror')}")

    async def main() -> CopyResult:
        async with _client(
            source_registry.url, dest_registry.host, dest_proxy.url, resumable_min_size=1
        ) as client:
            return await Copier(client, sessions=MemoryUploadSessions()).copy(source, destination)

    result = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert result.status == "copied", result.error
    assert dest_proxy.count("DELETE", UPLOADS) >= 1  # it was tried
    verify_image(dest_registry.url, destination.repository, image.digest)
