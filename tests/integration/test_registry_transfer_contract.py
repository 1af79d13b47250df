"""The blob transfer's side of the distribution API, against real docker-registry servers
and the fault proxy, in process: what closes a chunked upload, which answers to that
close start the blob over and which fail the copy, how often it is sent, who is held back
after a 429 in a transfer, what a persistent 401 in a transfer says, a recorded upload
resumed by a new client of a registry that wants a token, and a declined mount whose
abandoned upload names an address the copier must not reach.

Requests are counted by their arrival at the fault proxy (recorded before it answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from armirror.reference import Reference, destination_for, parse
from armirror.registry import CopyResult, RegistryClient
from armirror.registry.copy import Copier
from armirror.registry.errors import RateLimited
from armirror.registry.manifest import Descriptor
from armirror.registry.resumable import MIN_CHUNK, Deadline, MemoryUploadSessions
from armirror.registry.retry import Backoffs, RetryPolicy
from faultproxy import FaultProxy
from registry_checks import credentials, fast_retry, skopeo_digest, unique, verify_image
from standins import images
from standins.registry import Registry

UPLOADS = "/blobs/uploads/"
LAYER = 200_000
DENIED = b'{"errors":[{"code":"DENIED","message":"quota exceeded"}]}'
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def dest_proxy(dest_registry: Registry) -> Iterator[FaultProxy]:
    """The destination behind the fault proxy, its upload locations pointing back at it."""
    with FaultProxy(dest_registry.url, rewrite_location=True) as proxy:
        yield proxy


def _image(source_registry: Registry, stem: str, seed: int) -> tuple[images.Image, images.Blob]:
    """A pushed image with one layer of LAYER bytes (and that layer)."""
    image = images.single_image(unique(f"library/{stem}"), "1", seed=seed, layer_sizes=(LAYER,))
    images.push(source_registry.url, image)
    return image, next(b for b in image.blobs if b.size == LAYER)


def _refs(image: images.Image, dest_host: str) -> tuple[Reference, Reference]:
    source = parse(f"docker.io/{image.repository}:1")
    return source, destination_for(source, f"{dest_host}/{unique('mirror')}")


def _closing(digest: str) -> str:
    """The path of the PUT that closes an upload of ``digest``."""
    return rf"{UPLOADS}.*digest={digest.replace(':', '%3A')}"


def _client(source_url: str, dest_host: str, dest_url: str, **options: object) -> RegistryClient:
    settings: dict[str, object] = {"retry": fast_retry(), **options}
    return RegistryClient(
        upstreams={"docker.io": source_url, dest_host: dest_url},
        credentials=credentials(),
        allow_private_hosts=True,
        **settings,  # type: ignore[arg-type]
    )


def _copy_chunked(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy,
    image: images.Image, layer: images.Blob, **options: object,
) -> tuple[CopyResult, Reference]:  # fmt: skip
    """Copy ``image`` through the proxy, its layer going up in recorded chunks."""
    source, destination = _refs(image, dest_registry.host)

    async def main() -> CopyResult:
        async with _client(
            source_registry.url, dest_registry.host, dest_proxy.url,
            resumable_min_size=layer.size, **options,
        ) as client:  # fmt: skip
            copier = Copier(client, sessions=MemoryUploadSessions())
            return await copier.copy(source, destination)

    return asyncio.run(asyncio.wait_for(main(), timeout=60)), destination


# -- closing a chunked upload --------------------------------------------------------------


def test_the_put_closing_a_chunked_upload_is_an_empty_octet_stream(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """As the distribution spec writes it: PUT ?digest= with Content-Type
    application/octet-stream and an empty body (every byte went up in the PATCHes)."""
    image, layer = _image(source_registry, "close-headers", 19300)
    result, destination = _copy_chunked(source_registry, dest_registry, dest_proxy, image, layer)
    assert result.status == "copied", result.error
    closing = [h for m, p, h in dest_proxy.requests if m == "PUT" and layer.digest[7:] in p]
    assert len(closing) == 1 and len(dest_proxy.arrived("PATCH", UPLOADS)) == 1
    assert closing[0]["content-type"].lower() == "application/octet-stream"
    assert closing[0].get("content-length") == "0"
    assert not [p for m, p, _ in dest_proxy.bodies if m == "PUT" and layer.digest[7:] in p]
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_close_answered_204_is_taken(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """201 Created is what distribution answers; 204 No Content closes it too."""
    image, layer = _image(source_registry, "close-204", 19310)
    dest_proxy.add("PUT", _closing(layer.digest), "restatus", status=204)
    result, destination = _copy_chunked(source_registry, dest_registry, dest_proxy, image, layer)
    assert result.status == "copied", result.error
    assert dest_proxy.count("PUT", UPLOADS, "restatus") == 1
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_close_that_keeps_failing_is_sent_once_an_attempt(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """The transfer is retried as a whole, so the closing PUT does not retry itself:
    with 3 attempts it is sent 3 times, not 3 x 3."""
    image, layer = _image(source_registry, "close-busy", 19320)
    dest_proxy.add("PUT", _closing(layer.digest), "503", times=100)
    result, _ = _copy_chunked(
        source_registry, dest_registry, dest_proxy, image, layer, retry=fast_retry(3)
    )
    assert result.status == "failed" and result.retryable
    assert len(dest_proxy.arrived("PUT", _closing(layer.digest))) == 3
    assert len(dest_proxy.arrived("PATCH", UPLOADS)) == 1  # the bytes went up once


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "BLOB_UPLOAD_INVALID"),  # any 400 to the close: the upload is not the blob
        (422, "DIGEST_INVALID"),  # the code says so under another status
    ],
)
def test_a_close_refused_as_not_the_blob_starts_the_blob_over(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy,
    status: int, code: str,
) -> None:  # fmt: skip
    image, layer = _image(source_registry, f"close-{status}", 19330 + status)
    body = b'{"errors":[{"code":"%s","message":"no"}]}' % code.encode()
    dest_proxy.add("PUT", _closing(layer.digest), "serve", status=status, body=body, headers=JSON)
    result, destination = _copy_chunked(source_registry, dest_registry, dest_proxy, image, layer)
    assert result.status == "copied", result.error
    # The recorded upload was dropped: the layer's upload started again from byte 0.
    starts = [p for _, m, p in dest_proxy.arrivals if m == "POST" and p.endswith(UPLOADS)]
    assert len(starts) == len(image.all_blobs()) + 1
    assert len(dest_proxy.arrived("PATCH", UPLOADS)) == 2
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_close_refused_otherwise_fails_the_copy_at_once(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    image, layer = _image(source_registry, "close-denied", 19340)
    dest_proxy.add("PUT", _closing(layer.digest), "serve", status=403, body=DENIED,
                   headers=JSON, times=100)  # fmt: skip
    result, destination = _copy_chunked(source_registry, dest_registry, dest_proxy, image, layer)
    assert result.status == "failed" and not result.retryable
    assert result.error is not None
    assert result.error.startswith(f"finish the upload of {layer.digest} to {destination.name}")
    assert "answered 403" in result.error and "(DENIED: quota exceeded)" in result.error
    assert len(dest_proxy.arrived("PUT", _closing(layer.digest))) == 1  # not tried again


# -- errors inside a transfer thread ---------------------------------------------------------


def test_a_401_that_persists_through_every_attempt_says_the_credentials_expired(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    image, _ = _image(source_registry, "expired-always", 19350)
    source, destination = _refs(image, dest_registry.host)
    dest_proxy.add("PUT", UPLOADS, "serve", status=401, times=100)

    async def main() -> CopyResult:
        async with _client(
            source_registry.url, dest_registry.host, dest_proxy.url, retry=fast_retry(2)
        ) as client:
            return await Copier(client, jobs=1).copy(source, destination)

    result = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert result.status == "failed" and result.retryable
    assert result.error is not None and result.error.startswith("upload blob sha256:")
    assert result.error.endswith(
        f" from {source.name} to {destination.name}: credentials expired mid-copy (401)"
    )


def test_a_429_inside_a_transfer_holds_back_the_destination_not_the_source(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """A destination's Retry-After, received by a transfer thread, holds back the other
    jobs writing to that destination (clients sharing Backoffs, as a pipeline's copy jobs
    do); jobs reading the source go on."""
    image, layer = _image(source_registry, "held-dest", 19360)
    source, destination = _refs(image, dest_registry.host)
    dest_proxy.add("PUT", UPLOADS, "429", retry_after="60")
    backoffs = Backoffs()
    patient = RetryPolicy(attempts=2, base_delay=0.02, max_delay=0.2, max_retry_after=120)
    hasty = RetryPolicy(attempts=1, max_retry_after=5)  # reports a long hold at once

    async def main() -> tuple[bool, bool]:
        async with (
            _client(source_registry.url, dest_registry.host, dest_proxy.url,
                    retry=patient, backoffs=backoffs) as copying,
            _client(source_registry.url, dest_registry.host, dest_proxy.url,
                    retry=hasty, backoffs=backoffs) as beside,
        ):  # fmt: skip
            copy = asyncio.create_task(Copier(copying, jobs=1).copy(source, destination))
            try:
                destination_held = await _until_held(beside, destination, layer.digest)
                source_open = await beside.blob_exists(source, layer.digest)
            finally:
                copy.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await copy
        return destination_held, source_open

    destination_held, source_open = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert dest_proxy.count("PUT", UPLOADS, "429") == 1
    assert destination_held and source_open


async def _until_held(client: RegistryClient, ref: Reference, digest: str) -> bool:
    """Ask ``ref``'s registry about ``digest`` until it is reported held back (True), for
    at most 15 s (False)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            await client.blob_exists(ref, digest)
        except RateLimited as held:
            return "asked armirror to wait" in str(held)
        await asyncio.sleep(0.02)
    return False


# -- resuming into a registry that wants a token ---------------------------------------------


def test_a_recorded_upload_into_a_token_registry_goes_on_in_a_new_client(
    source_registry: Registry, token_registry: Registry
) -> None:
    """A later task (a new client, no tokens yet) finds the recorded upload: asking the
    registry where it stands needs a push token, which it fetches first."""
    image, layer = _image(source_registry, "resume-token", 19370)
    source, destination = _refs(image, token_registry.host)
    content = b"".join(layer.chunks())
    held = 80_000
    sessions = MemoryUploadSessions()
    login = credentials({token_registry.host: ("armirror", "s3cret")})

    async def earlier_attempt() -> None:
        """What an attempt that stopped after its first chunk leaves: every other blob
        there, and the layer's upload holding ``held`` bytes, recorded."""
        async with RegistryClient(credentials=login, allow_private_hosts=True) as client:
            base = httpx.URL(client.base_url(destination.registry) + "/")
            for blob in image.blobs:
                if blob is layer:
                    continue
                started = await _start(client, destination)
                await client.request(
                    destination.registry, "PUT",
                    base.join(started).copy_merge_params({"digest": blob.digest}),
                    what="put", ok=(201,), content=b"".join(blob.chunks()),
                    headers={"Content-Type": "application/octet-stream"},
                )  # fmt: skip
            patched = await client.request(
                destination.registry, "PATCH", base.join(await _start(client, destination)),
                what="first chunk", ok=(202,), content=content[:held],
                headers={"Content-Type": "application/octet-stream",
                         "Content-Range": f"0-{held - 1}"},
            )  # fmt: skip
            key = f"{client.base_url(destination.registry)}/{destination.repository}"
            sessions.save_upload_session(key, layer.digest, patched.headers["Location"], held)

    async def later_attempt() -> CopyResult:
        async with RegistryClient(
            upstreams={"docker.io": source_registry.url},
            credentials=login,
            retry=fast_retry(),
            allow_private_hosts=True,
            resumable_min_size=layer.size,
        ) as client:
            return await Copier(client, sessions=sessions).copy(source, destination)

    asyncio.run(asyncio.wait_for(earlier_attempt(), timeout=60))
    result = asyncio.run(asyncio.wait_for(later_attempt(), timeout=60))
    assert result.status == "copied", result.error
    assert result.bytes_copied == layer.size - held  # only the rest moved
    name = f"{destination.repository}:1"
    assert skopeo_digest(token_registry.host, name, "armirror:s3cret") == image.digest


async def _start(client: RegistryClient, destination: Reference) -> str:
    started = await client.request(
        destination.registry, "POST", f"/v2/{destination.repository}/blobs/uploads/",
        what="start", ok=(202,),
    )  # fmt: skip
    return str(started.headers["Location"])


# -- a declined mount's abandoned upload ------------------------------------------------------


def test_a_declined_mount_naming_a_forbidden_address_still_falls_back_to_an_upload(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """The registry declines a mount (202) and names an upload location on the metadata
    server's address.  Cancelling that upload is refused by the host guard, which is no
    reason to fail: the blob is uploaded instead, and nothing is sent to that address."""
    image, _ = _image(source_registry, "mount-forbidden", 19380)
    source = parse(f"docker.io/{image.repository}:1")
    pairs = [(source, destination_for(source, f"{dest_registry.host}/{unique('mirror')}"))
             for _ in range(2)]  # fmt: skip
    forbidden = f"http://169.254.169.254/v2/{pairs[1][1].repository}/blobs/uploads/x"
    dest_proxy.add("POST", r"\?mount=", "serve", status=202, times=100,
                   headers={"Location": forbidden})  # fmt: skip

    async def main() -> list[CopyResult]:
        async with _client(source_registry.url, dest_registry.host, dest_proxy.url) as client:
            return await Copier(client, checks=1).copy_many(pairs)

    results = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert [r.status for r in results] == ["copied", "copied"], [r.error for r in results]
    assert len(dest_proxy.arrived("POST", r"\?mount=")) == len(image.all_blobs())
    assert dest_proxy.arrived("DELETE") == []
    verify_image(dest_registry.url, pairs[1][1].repository, image.digest)


# -- the chunks, and the check after the close -----------------------------------------------


def _blob_path(digest: str) -> str:
    return rf"/blobs/{digest}$"


def test_a_chunk_says_what_it_is_and_where_it_goes(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """Each PATCH is an octet stream with its Content-Range (the spec's chunked upload)."""
    image, layer = _image(source_registry, "chunk-headers", 19410)
    result, _ = _copy_chunked(source_registry, dest_registry, dest_proxy, image, layer)
    assert result.status == "copied", result.error
    (chunk,) = [h for m, _, h in dest_proxy.requests if m == "PATCH"]
    assert chunk["content-type"].lower() == "application/octet-stream"
    assert chunk["content-range"] == f"0-{layer.size - 1}"
    assert chunk["content-length"] == str(layer.size)


def test_a_chunk_the_destination_holds_short_is_a_transient_failure_naming_both_counts(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    image, layer = _image(source_registry, "chunk-short", 19420)
    dest_proxy.add("PATCH", UPLOADS, "headers", headers={"Range": "0-99"}, times=100)
    result, _ = _copy_chunked(
        source_registry, dest_registry, dest_proxy, image, layer, retry=fast_retry(1)
    )
    assert result.status == "failed" and result.retryable
    assert result.error is not None and result.error.endswith(
        f"blob {layer.digest}: the destination holds 100 bytes "
        f"after a chunk that should have made {layer.size}"
    )


def test_a_close_refused_as_not_the_blob_every_time_says_so(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    image, layer = _image(source_registry, "close-never", 19430)
    body = b'{"errors":[{"code":"DIGEST_INVALID","message":"no"}]}'
    dest_proxy.add("PUT", _closing(layer.digest), "serve", status=400, body=body,
                   headers=JSON, times=100)  # fmt: skip
    result, destination = _copy_chunked(
        source_registry, dest_registry, dest_proxy, image, layer, retry=fast_retry(1)
    )
    assert result.status == "failed"
    assert result.error == (
        f"finish the upload of {layer.digest} to {destination.name}: "
        "the registry found another digest"
    )


@pytest.mark.parametrize("length", [0, LAYER - 1])
def test_a_closed_upload_the_registry_reports_at_another_size_fails_the_copy(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy, length: int
) -> None:
    """After the close, the blob's HEAD must show it whole: a registry reporting another
    length (even 0) holds something else, and no tag may point at it."""
    image, layer = _image(source_registry, f"close-size-{length}", 19440 + length % 7)
    path = _blob_path(layer.digest)
    dest_proxy.add("HEAD", path, "headers", headers={})  # the check before the upload
    dest_proxy.add("HEAD", path, "serve", status=200, body=b"x" * length, times=100,
                   headers={"Docker-Content-Digest": layer.digest})  # fmt: skip
    result, destination = _copy_chunked(
        source_registry, dest_registry, dest_proxy, image, layer, retry=fast_retry(1)
    )
    assert result.status == "failed"
    assert result.error == (
        f"finish the upload of {layer.digest} to {destination.name}: "
        f"the registry holds {layer.digest} of {length} bytes"
    )
    tags = httpx.get(f"{dest_registry.url}/v2/{destination.repository}/tags/list")
    assert tags.status_code == 404 or "1" not in (tags.json().get("tags") or [])


def test_a_closed_upload_reported_without_a_length_is_judged_by_its_digest(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """A HEAD answer may leave Content-Length out; the digest it names is then enough."""
    image, layer = _image(source_registry, "close-nolength", 19450)
    path = _blob_path(layer.digest)
    dest_proxy.add("HEAD", path, "headers", headers={})  # the check before the upload
    dest_proxy.add("HEAD", path, "serve", status=200, times=1,
                   headers={"Docker-Content-Digest": layer.digest, "Content-Length": ""})  # fmt: skip
    result, destination = _copy_chunked(
        source_registry, dest_registry, dest_proxy, image, layer, retry=fast_retry(1)
    )
    assert result.status == "copied", result.error
    assert dest_proxy.count("HEAD", path, "serve") == 1
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_chunk_whose_connection_breaks_names_the_blob_and_both_ends(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """A chunk sent into a destination that never answers times out: a transient
    failure naming the blob, where it came from and where it was going."""
    image, layer = _image(source_registry, "chunk-silent", 19460)
    dest_proxy.add("PATCH", UPLOADS, "hang", times=100)
    result, destination = _copy_chunked(
        source_registry, dest_registry, dest_proxy, image, layer,
        retry=fast_retry(1), timeout=0.5,
    )  # fmt: skip
    assert result.status == "failed" and result.retryable
    source = f"docker.io/{image.repository}"
    assert result.error is not None and result.error.startswith(
        f"blob {layer.digest} from {source} to {destination.name}: ReadTimeout"
    )


def test_a_blob_of_two_chunks_goes_in_one_attempt_within_a_roomy_deadline(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """Under a deadline the first chunk is small (nothing measured yet) and the next is
    sized by the rate the first showed: with two minutes to spare, a blob of 2.5 first
    chunks goes in two PATCHes in one attempt, and every byte is counted."""
    size = MIN_CHUNK * 5 // 2
    image = images.single_image(unique("library/two-chunks"), "1", seed=19470, layer_sizes=(size,))
    images.push(source_registry.url, image)
    source, destination = _refs(image, dest_registry.host)

    async def main() -> CopyResult:
        async with _client(
            source_registry.url, dest_registry.host, dest_proxy.url,
            resumable_min_size=size, retry=fast_retry(3),
        ) as client:  # fmt: skip
            copier = Copier(client, sessions=MemoryUploadSessions(), deadline=Deadline.within(150))
            return await copier.copy(source, destination)

    result = asyncio.run(asyncio.wait_for(main(), timeout=120))
    assert result.status == "copied", result.error
    patches = [h for m, _, h in dest_proxy.requests if m == "PATCH"]
    assert [h["content-range"] for h in patches] == [
        f"0-{MIN_CHUNK - 1}",
        f"{MIN_CHUNK}-{size - 1}",
    ]
    assert result.bytes_copied == sum(blob.size for blob in image.blobs)
    verify_image(dest_registry.url, destination.repository, image.digest)


# -- what the source sends into a chunked upload ---------------------------------------------


@pytest.fixture
def source_proxy(source_registry: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(source_registry.url) as proxy:
        yield proxy


def _copy_via(
    source_proxy: FaultProxy, dest_registry: Registry, dest_proxy: FaultProxy,
    image: images.Image, layer: images.Blob, sessions: MemoryUploadSessions,
    refs: tuple[Reference, Reference] | None = None,
) -> CopyResult:  # fmt: skip
    """Copy ``image`` (to ``refs``, or a new mirror) from behind ``source_proxy`` in one
    attempt, its layer chunked."""
    source, destination = refs or _refs(image, dest_registry.host)

    async def main() -> CopyResult:
        async with _client(
            source_proxy.url, dest_registry.host, dest_proxy.url,
            resumable_min_size=layer.size, retry=fast_retry(1),
        ) as client:  # fmt: skip
            return await Copier(client, sessions=sessions).copy(source, destination)

    return asyncio.run(asyncio.wait_for(main(), timeout=60))


def test_a_source_blob_that_does_not_hash_to_its_digest_fails_before_the_close(
    source_registry: Registry, source_proxy: FaultProxy, dest_registry: Registry,
    dest_proxy: FaultProxy,
) -> None:  # fmt: skip
    image, layer = _image(source_registry, "chunk-corrupt", 19480)
    source_proxy.add("GET", _blob_path(layer.digest), "corrupt", times=100)
    result = _copy_via(
        source_proxy, dest_registry, dest_proxy, image, layer, MemoryUploadSessions()
    )
    assert result.status == "failed"
    assert result.error is not None and result.error.endswith(
        f"blob {layer.digest}: content does not match its digest"
    )
    assert not dest_proxy.arrived("PUT", _closing(layer.digest))  # never closed


@pytest.mark.parametrize("content_range", ["bytes 0-199999/200000", ""])
def test_a_resumed_download_answered_with_another_range_fails(
    source_registry: Registry, source_proxy: FaultProxy, dest_registry: Registry,
    dest_proxy: FaultProxy, content_range: str,
) -> None:  # fmt: skip
    """The upload holds 80,000 bytes, so the source is asked for the rest; a 206 whose
    Content-Range starts elsewhere (or is missing) would put the wrong bytes in the blob."""
    image, layer = _image(source_registry, "range-other", 19490 + len(content_range))
    refs = _refs(image, dest_registry.host)
    destination = refs[1]
    sessions = MemoryUploadSessions()
    held = f"/v2/{destination.repository}/blobs/uploads/held"
    sessions.save_upload_session(
        f"{dest_proxy.url}/{destination.repository}", layer.digest, held, 80_000
    )
    dest_proxy.add("GET", f"{held}$", "serve", status=204, times=100,
                   headers={"Range": "0-79999", "Location": held})  # fmt: skip
    source_proxy.add("GET", _blob_path(layer.digest), "headers", times=100,
                     headers={"Content-Range": content_range})  # fmt: skip
    result = _copy_via(source_proxy, dest_registry, dest_proxy, image, layer, sessions, refs)
    assert result.status == "failed" and result.retryable
    assert result.error is not None and result.error.endswith(
        f"blob {layer.digest}: the source answered another range than asked"
    )
    asked = [h.get("range") for m, p, h in source_proxy.requests
             if m == "GET" and p.endswith(layer.digest)]  # fmt: skip
    assert asked == ["bytes=80000-"]


def test_the_status_of_a_recorded_upload_is_asked_once_an_attempt(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """The transfer is retried as a whole, so the GET asking where a recorded upload
    stands does not retry itself: 3 attempts, 3 GETs."""
    image, layer = _image(source_registry, "status-busy", 19500)
    source, destination = _refs(image, dest_registry.host)
    sessions = MemoryUploadSessions()
    held = f"/v2/{destination.repository}/blobs/uploads/held"
    sessions.save_upload_session(
        f"{dest_proxy.url}/{destination.repository}", layer.digest, held, 80_000
    )
    dest_proxy.add("GET", f"{held}$", "503", times=100)

    async def main() -> CopyResult:
        async with _client(
            source_registry.url, dest_registry.host, dest_proxy.url,
            resumable_min_size=layer.size, retry=fast_retry(3),
        ) as client:  # fmt: skip
            return await Copier(client, sessions=sessions).copy(source, destination)

    result = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert result.status == "failed" and result.retryable
    assert len(dest_proxy.arrived("GET", f"{held}$")) == 3


# -- starting an upload, and finding a recorded one ------------------------------------------


def _place_all_but(
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


def _partial_upload(proxy_url: str, repository: str, content: bytes) -> str:
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


def _copy_once(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy,
    refs: tuple[Reference, Reference], layer: images.Blob, sessions: MemoryUploadSessions,
    attempts: int = 1,
) -> CopyResult:  # fmt: skip
    async def main() -> CopyResult:
        async with _client(
            source_registry.url, dest_registry.host, dest_proxy.url,
            resumable_min_size=layer.size, retry=fast_retry(attempts),
        ) as client:  # fmt: skip
            return await Copier(client, sessions=sessions).copy(*refs)

    return asyncio.run(asyncio.wait_for(main(), timeout=60))


@pytest.mark.parametrize("standing", ["lost", "another range"])
def test_a_recorded_upload_that_cannot_go_on_is_forgotten_even_if_no_new_one_starts(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy, standing: str
) -> None:
    """The registry lost the recorded upload (404), or holds a range the record cannot
    be (fewer bytes than recorded): the record is dropped at once, so the next attempt
    does not ask again, even when the new upload is refused at its start."""
    image, layer = _image(source_registry, "forget-" + standing[:4], 19510 + len(standing))
    refs = _refs(image, dest_registry.host)
    destination = refs[1]
    _place_all_but(dest_registry.url, destination.repository, image, layer)
    key = f"{dest_proxy.url}/{destination.repository}"
    held = f"/v2/{destination.repository}/blobs/uploads/held"
    sessions = MemoryUploadSessions()
    sessions.save_upload_session(key, layer.digest, held, 80_000)
    if standing == "another range":
        dest_proxy.add("GET", f"{held}$", "serve", status=204, headers={"Range": "0-5"})
    dest_proxy.add("POST", f"{UPLOADS}$", "serve", status=403, body=DENIED, headers=JSON,
                   times=100)  # fmt: skip
    result = _copy_once(source_registry, dest_registry, dest_proxy, refs, layer, sessions)
    assert result.status == "failed" and not result.retryable
    assert result.error is not None and result.error.startswith(
        f"start upload of blob {layer.digest} from {refs[0].name} to {destination.name}"
    )
    assert sessions.upload_session(key, layer.digest) is None


def test_the_start_of_a_chunked_upload_is_sent_once_an_attempt(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    image, layer = _image(source_registry, "start-busy", 19520)
    refs = _refs(image, dest_registry.host)
    _place_all_but(dest_registry.url, refs[1].repository, image, layer)
    dest_proxy.add("POST", f"{UPLOADS}$", "503", times=100)
    result = _copy_once(
        source_registry, dest_registry, dest_proxy, refs, layer, MemoryUploadSessions(), 3
    )
    assert result.status == "failed" and result.retryable
    assert len(dest_proxy.arrived("POST", f"{UPLOADS}$")) == 3


def test_a_recorded_upload_whose_status_names_no_location_goes_on_where_it_was(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """The status answer should name the upload's location; without one, the recorded
    location still holds, and the upload goes on from there with the rest of the bytes."""
    image, layer = _image(source_registry, "status-nolocation", 19530)
    refs = _refs(image, dest_registry.host)
    destination = refs[1]
    _place_all_but(dest_registry.url, destination.repository, image, layer)
    held = 80_000
    location = _partial_upload(
        dest_proxy.url, destination.repository, b"".join(layer.chunks())[:held]
    )
    key = f"{dest_proxy.url}/{destination.repository}"
    sessions = MemoryUploadSessions()
    sessions.save_upload_session(key, layer.digest, location, held)
    status_path = re.escape(httpx.URL(location).path) + r"(\?|$)"
    dest_proxy.add("GET", status_path, "headers", headers={"Location": ""})
    result = _copy_once(source_registry, dest_registry, dest_proxy, refs, layer, sessions)
    assert result.status == "copied", result.error
    assert dest_proxy.count("GET", status_path, "headers") == 1
    assert result.bytes_copied == layer.size - held
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_chunked_download_from_a_held_source_is_reported_at_once_naming_the_blob(
    source_registry: Registry, source_proxy: FaultProxy, dest_registry: Registry
) -> None:
    """The source asked another job to wait a minute (a 429 with Retry-After: 60, the
    clients sharing Backoffs): a chunked transfer from it does not ask again, and a
    policy that will not wait that long reports the hold, naming the blob."""
    image, layer = _image(source_registry, "held-source", 19540)
    source, destination = _refs(image, dest_registry.host)
    source_proxy.add("HEAD", _blob_path(layer.digest), "429", retry_after="60")
    backoffs = Backoffs()
    hasty = RetryPolicy(attempts=1, max_retry_after=5)
    blob = Descriptor(layer.media_type, layer.digest, layer.size)

    async def main() -> None:
        async with (
            _client(source_proxy.url, dest_registry.host, dest_registry.url,
                    retry=hasty, backoffs=backoffs) as beside,
            _client(source_proxy.url, dest_registry.host, dest_registry.url, retry=hasty,
                    backoffs=backoffs, resumable_min_size=layer.size) as copying,
        ):  # fmt: skip
            with pytest.raises(RateLimited):
                await beside.blob_exists(source, layer.digest)
            await copying.copy_blob(source, destination, blob, sessions=MemoryUploadSessions())

    with pytest.raises(RateLimited) as held:
        asyncio.run(asyncio.wait_for(main(), timeout=60))
    host = httpx.URL(source_proxy.url).netloc.decode()
    assert str(held.value).startswith(
        f"download blob {layer.digest} from {source.name} to {destination.name}: "
        f"{host} asked armirror to wait; "
    )
    assert not source_proxy.arrived("GET", _blob_path(layer.digest))


def test_a_held_later_endpoint_is_not_asked_even_when_the_first_one_is_free(
    source_registry: Registry, source_proxy: FaultProxy, dest_registry: Registry
) -> None:
    """docker.io is a pull-through mirror first, then the source.  The blob is read from
    the source (where the image was found), and it is the source's hold that counts."""
    image, layer = _image(source_registry, "held-later", 19550)
    source, destination = _refs(image, dest_registry.host)
    source_proxy.add("HEAD", _blob_path(layer.digest), "429", retry_after="60")
    backoffs = Backoffs()
    hasty = RetryPolicy(attempts=1, max_retry_after=5)
    blob = Descriptor(layer.media_type, layer.digest, layer.size)

    async def main() -> None:
        with FaultProxy(dest_registry.url) as empty_mirror:
            async with (
                _client(source_proxy.url, dest_registry.host, dest_registry.url,
                        retry=hasty, backoffs=backoffs) as beside,
                RegistryClient(
                    upstreams={"docker.io": [empty_mirror.url, source_proxy.url],
                               dest_registry.host: dest_registry.url},
                    credentials=credentials(), allow_private_hosts=True, retry=hasty,
                    backoffs=backoffs, resumable_min_size=layer.size,
                ) as copying,
            ):  # fmt: skip
                with pytest.raises(RateLimited):
                    await beside.blob_exists(source, layer.digest)
                await copying.copy_blob(
                    source, destination, blob, source_endpoint=source_proxy.url,
                    sessions=MemoryUploadSessions(),
                )  # fmt: skip

    with pytest.raises(RateLimited) as held:
        asyncio.run(asyncio.wait_for(main(), timeout=60))
    host = httpx.URL(source_proxy.url).netloc.decode()
    assert f": {host} asked armirror to wait; " in str(held.value)
    assert not source_proxy.arrived("GET", _blob_path(layer.digest))
