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
import hashlib
import json
import time
from collections.abc import Iterator

import httpx
import pytest
from armirror.reference import Reference, destination_for, parse
from armirror.registry import CopyResult, RegistryClient
from armirror.registry.copy import Copier
from armirror.registry.errors import RateLimited
from armirror.registry.resumable import MemoryUploadSessions
from armirror.registry.retry import Backoffs, RetryPolicy
from faultproxy import FaultProxy
from registry_checks import credentials, fast_retry, skopeo_digest, unique, verify_image
from standins import images
from standins.images import OCI_MANIFEST
from standins.registry import Registry
from transfer_support import (
    DENIED,
    JSON,
    UPLOADS,
    blob_path,
    closing_path,
    copy_chunked,
    copy_client,
    layered_image,
    mirror_refs,
)  # fmt: skip


@pytest.fixture
def dest_proxy(dest_registry: Registry) -> Iterator[FaultProxy]:
    """The destination behind the fault proxy, its upload locations pointing back at it."""
    with FaultProxy(dest_registry.url, rewrite_location=True) as proxy:
        yield proxy


# -- closing a chunked upload --------------------------------------------------------------


def test_the_put_closing_a_chunked_upload_is_an_empty_octet_stream(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """As the distribution spec writes it: PUT ?digest= with Content-Type
    application/octet-stream and an empty body (every byte went up in the PATCHes)."""
    image, layer = layered_image(source_registry, "close-headers", 19300)
    result, destination = copy_chunked(source_registry, dest_registry, dest_proxy, image, layer)
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
    image, layer = layered_image(source_registry, "close-204", 19310)
    dest_proxy.add("PUT", closing_path(layer.digest), "restatus", status=204)
    result, destination = copy_chunked(source_registry, dest_registry, dest_proxy, image, layer)
    assert result.status == "copied", result.error
    assert dest_proxy.count("PUT", UPLOADS, "restatus") == 1
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_close_that_keeps_failing_is_sent_once_an_attempt(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """The transfer is retried as a whole, so the closing PUT does not retry itself:
    with 3 attempts it is sent 3 times, not 3 x 3."""
    image, layer = layered_image(source_registry, "close-busy", 19320)
    dest_proxy.add("PUT", closing_path(layer.digest), "503", times=100)
    result, _ = copy_chunked(
        source_registry, dest_registry, dest_proxy, image, layer, retry=fast_retry(3)
    )
    assert result.status == "failed" and result.retryable
    assert len(dest_proxy.arrived("PUT", closing_path(layer.digest))) == 3
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
    image, layer = layered_image(source_registry, f"close-{status}", 19330 + status)
    body = b'{"errors":[{"code":"%s","message":"no"}]}' % code.encode()
    dest_proxy.add(
        "PUT", closing_path(layer.digest), "serve", status=status, body=body, headers=JSON
    )
    result, destination = copy_chunked(source_registry, dest_registry, dest_proxy, image, layer)
    assert result.status == "copied", result.error
    # The recorded upload was dropped: the layer's upload started again from byte 0.
    starts = [p for _, m, p in dest_proxy.arrivals if m == "POST" and p.endswith(UPLOADS)]
    assert len(starts) == len(image.all_blobs()) + 1
    assert len(dest_proxy.arrived("PATCH", UPLOADS)) == 2
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_close_refused_otherwise_fails_the_copy_at_once(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    image, layer = layered_image(source_registry, "close-denied", 19340)
    dest_proxy.add("PUT", closing_path(layer.digest), "serve", status=403, body=DENIED,
                   headers=JSON, times=100)  # fmt: skip
    result, destination = copy_chunked(source_registry, dest_registry, dest_proxy, image, layer)
    assert result.status == "failed" and not result.retryable
    assert result.error is not None
    assert result.error.startswith(f"finish the upload of {layer.digest} to {destination.name}")
    assert "answered 403" in result.error and "(DENIED: quota exceeded)" in result.error
    assert len(dest_proxy.arrived("PUT", closing_path(layer.digest))) == 1  # not tried again


# -- errors inside a transfer thread ---------------------------------------------------------


def test_a_401_that_persists_through_every_attempt_says_the_credentials_expired(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    image, _ = layered_image(source_registry, "expired-always", 19350)
    source, destination = mirror_refs(image, dest_registry.host)
    dest_proxy.add("PUT", UPLOADS, "serve", status=401, times=100)

    async def main() -> CopyResult:
        async with copy_client(
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
    image, layer = layered_image(source_registry, "held-dest", 19360)
    source, destination = mirror_refs(image, dest_registry.host)
    dest_proxy.add("PUT", UPLOADS, "429", retry_after="60")
    backoffs = Backoffs()
    patient = RetryPolicy(attempts=2, base_delay=0.02, max_delay=0.2, max_retry_after=120)
    hasty = RetryPolicy(attempts=1, max_retry_after=5)  # reports a long hold at once

    async def main() -> tuple[bool, bool]:
        async with (
            copy_client(source_registry.url, dest_registry.host, dest_proxy.url,
                    retry=patient, backoffs=backoffs) as copying,
            copy_client(source_registry.url, dest_registry.host, dest_proxy.url,
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
    image, layer = layered_image(source_registry, "resume-token", 19370)
    source, destination = mirror_refs(image, token_registry.host)
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
    image, _ = layered_image(source_registry, "mount-forbidden", 19380)
    source = parse(f"docker.io/{image.repository}:1")
    pairs = [(source, destination_for(source, f"{dest_registry.host}/{unique('mirror')}"))
             for _ in range(2)]  # fmt: skip
    forbidden = f"http://169.254.169.254/v2/{pairs[1][1].repository}/blobs/uploads/x"
    dest_proxy.add("POST", r"\?mount=", "serve", status=202, times=100,
                   headers={"Location": forbidden})  # fmt: skip

    async def main() -> list[CopyResult]:
        async with copy_client(source_registry.url, dest_registry.host, dest_proxy.url) as client:
            return await Copier(client, checks=1).copy_many(pairs)

    results = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert [r.status for r in results] == ["copied", "copied"], [r.error for r in results]
    assert len(dest_proxy.arrived("POST", r"\?mount=")) == len(image.all_blobs())
    assert dest_proxy.arrived("DELETE") == []
    verify_image(dest_registry.url, pairs[1][1].repository, image.digest)


# -- what a registry's headers may not steer --------------------------------------------------


def test_a_manifest_digest_header_that_is_no_digest_is_not_followed(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """The source's HEAD names a "digest" that climbs out of /manifests/: it is taken as
    no digest, the manifest's own bytes give the digest, and no request goes to a path
    it named, at either registry."""
    image, _ = layered_image(source_registry, "climbing-header", 19590)
    source, destination = mirror_refs(image, dest_registry.host)
    climbing = "sha256:../../../../climbed/manifests/latest"
    with FaultProxy(source_registry.url) as source_proxy:
        source_proxy.add("HEAD", "/manifests/", "headers", times=100,
                         headers={"Docker-Content-Digest": climbing})  # fmt: skip

        async def main() -> CopyResult:
            async with copy_client(source_proxy.url, dest_registry.host, dest_proxy.url) as client:
                return await Copier(client).copy(source, destination)

        result = asyncio.run(asyncio.wait_for(main(), timeout=60))
        asked = [p for _, _, p in source_proxy.arrivals + dest_proxy.arrivals]
    assert result.status == "copied", result.error
    assert result.digest == image.digest
    assert not [p for p in asked if "climbed" in p]
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_blob_under_an_algorithm_armirror_cannot_hash_is_left_to_the_registry(
    source_registry: Registry, dest_registry: Registry
) -> None:
    """A layer named by an algorithm hashlib lacks (the grammar allows any) cannot be
    checked here, so the destination judges it: distribution refuses the algorithm (at
    the HEAD asking whether it holds the blob), and the copy is a failed one that says
    so, not a crash."""
    layer = b"layer bytes"
    config = b"{}"
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    unknown = "blake3:" + "ab" * 32
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": unknown, "size": len(layer)}],
    }).encode()  # fmt: skip
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    typed = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": digest}
    source = parse(f"docker.io/{unique('library/unknown-algorithm')}:1")
    destination = destination_for(source, f"{dest_registry.host}/{unique('mirror')}")
    with FaultProxy(source_registry.url) as canned:
        for method in ("HEAD", "GET"):
            canned.add(method, "/manifests/", "serve", body=manifest, headers=typed, times=100)
        canned.add("GET", f"/blobs/{config_digest}$", "serve", body=config, times=100)
        canned.add("GET", f"/blobs/{unknown}$", "serve", body=layer, times=100)

        async def main() -> CopyResult:
            async with copy_client(canned.url, dest_registry.host, dest_registry.url) as client:
                return await Copier(client).copy(source, destination)

        result = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.startswith(f"HEAD blob {unknown} in {destination.name}")


# -- a blob streamed whole from the source -----------------------------------------------------


def _stream_once(
    source_url: str, dest_registry: Registry, image: images.Image
) -> tuple[CopyResult, Reference]:
    """Copy ``image`` from ``source_url`` in one attempt, every blob streamed whole."""
    return _stream_once_to(source_url, dest_registry, None, image)


def _stream_once_to(
    source_url: str, dest_registry: Registry, dest_proxy: FaultProxy | None, image: images.Image
) -> tuple[CopyResult, Reference]:
    """The same, to the destination behind ``dest_proxy`` when one is given."""
    source, destination = mirror_refs(image, dest_registry.host)
    dest_url = dest_proxy.url if dest_proxy else dest_registry.url

    async def main() -> CopyResult:
        async with copy_client(
            source_url, dest_registry.host, dest_url, retry=fast_retry(1)
        ) as client:
            return await Copier(client).copy(source, destination)

    return asyncio.run(asyncio.wait_for(main(), timeout=60)), destination


def test_a_blob_the_source_sends_without_a_length_is_streamed_at_its_size(
    source_registry: Registry, dest_registry: Registry
) -> None:
    """A source may answer a blob GET without Content-Length (the body ends when the
    connection closes): the upload then declares the descriptor's size."""
    image, layer = layered_image(source_registry, "blob-nolength", 19600)
    content = b"".join(layer.chunks())
    with FaultProxy(source_registry.url) as source_proxy:
        source_proxy.add("GET", blob_path(layer.digest), "serve", body=content,
                         headers={"Content-Length": ""})  # fmt: skip
        result, destination = _stream_once(source_proxy.url, dest_registry, image)
        served = source_proxy.count("GET", blob_path(layer.digest), "serve")
    assert result.status == "copied", result.error
    assert served == 1
    verify_image(dest_registry.url, destination.repository, image.digest)


@pytest.mark.parametrize("extra", [b"", b"x"])
def test_a_blob_the_source_lacks_or_sends_long_is_a_failed_copy_that_says_which(
    source_registry: Registry, dest_registry: Registry, extra: bytes
) -> None:
    image, layer = layered_image(source_registry, f"blob-wrong{len(extra)}", 19610 + len(extra))
    with FaultProxy(source_registry.url) as source_proxy:
        if extra:  # one byte more than the descriptor says, and a length to match
            body = b"".join(layer.chunks()) + extra
            source_proxy.add("GET", blob_path(layer.digest), "serve", body=body, times=100)
        else:
            source_proxy.add("GET", blob_path(layer.digest), "serve", status=404, times=100)
        result, destination = _stream_once(source_proxy.url, dest_registry, image)
    source = f"docker.io/{image.repository}"
    what = f"blob {layer.digest} from {source} to {destination.name}"
    assert result.status == "failed"
    if extra:
        assert result.error == f"{what}: got {layer.size + 1} bytes, expected {layer.size}"
    else:
        assert result.error == f"download {what}: not found at 127.0.0.1"


def test_a_blob_streamed_whole_goes_up_as_an_octet_stream_of_its_length(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    image, layer = layered_image(source_registry, "blob-put-headers", 19620)
    source, destination = mirror_refs(image, dest_registry.host)

    async def main() -> CopyResult:
        async with copy_client(source_registry.url, dest_registry.host, dest_proxy.url) as client:
            return await Copier(client).copy(source, destination)

    result = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert result.status == "copied", result.error
    (put,) = [h for m, p, h in dest_proxy.requests if m == "PUT" and layer.digest[7:] in p]
    assert put["content-type"].lower() == "application/octet-stream"
    assert put["content-length"] == str(layer.size)


def test_a_blob_streamed_whole_is_read_with_one_get_and_taken_at_204(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """From a source that asks for no credentials, each blob costs one GET (no HEAD
    first); 201 Created is what distribution answers to the PUT, 204 No Content is
    taken too."""
    image, layer = layered_image(source_registry, "blob-put-204", 19630)
    dest_proxy.add("PUT", rf"{UPLOADS}.*digest={layer.digest.replace(':', '%3A')}",
                   "restatus", status=204)  # fmt: skip
    with FaultProxy(source_registry.url) as source_proxy:
        result, destination = _stream_once_to(source_proxy.url, dest_registry, dest_proxy, image)
        blob_requests = [(m, p) for _, m, p in source_proxy.arrivals if "/blobs/" in p]
    assert result.status == "copied", result.error
    assert dest_proxy.count("PUT", UPLOADS, "restatus") == 1
    assert sorted(blob_requests) == sorted(
        ("GET", f"/v2/{image.repository}/blobs/{blob.digest}") for blob in image.blobs
    )
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_later_endpoint_first_reached_for_a_blob_gets_the_registrys_credentials(
    source_registry: Registry, dest_registry: Registry, htpasswd_registry: Registry
) -> None:
    """docker.io is a pull-through mirror that has the image but lost a layer, then an
    endpoint that wants the credentials kept under docker.io's name.  The transfer that
    falls through to it is the first request it gets, and it sends them."""
    image, layer = layered_image(source_registry, "fall-through-login", 19640)
    images.push(htpasswd_registry.url, image, auth=httpx.BasicAuth("armirror", "s3cret"))
    source, destination = mirror_refs(image, dest_registry.host)
    with FaultProxy(source_registry.url) as mirror:
        for method in ("HEAD", "GET"):
            mirror.add(method, blob_path(layer.digest), "serve", status=404, times=100)

        async def main() -> CopyResult:
            async with RegistryClient(
                upstreams={"docker.io": [mirror.url, htpasswd_registry.url],
                           dest_registry.host: dest_registry.url},
                credentials=credentials({"docker.io": ("armirror", "s3cret")}),
                allow_private_hosts=True, retry=fast_retry(1),
            ) as client:  # fmt: skip
                return await Copier(client).copy(source, destination)

        result = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert result.status == "copied", result.error
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_blobs_from_a_token_source_use_the_token_the_manifests_earned(
    source_registry: Registry, dest_registry: Registry, token_registry: Registry
) -> None:
    """A source that wants a token (pull for anyone): the manifest requests earn the
    repository's pull token, and each blob transfer reuses it: one GET per blob, no
    HEAD asking for it again."""
    image, _ = layered_image(source_registry, "token-blobs", 19650)
    source, pushed = mirror_refs(image, token_registry.host)
    login = credentials({token_registry.host: ("armirror", "s3cret")})
    with FaultProxy(token_registry.url) as ghcr:
        ghcr_ref = parse(f"ghcr.io/{pushed.repository}:1")
        destination = destination_for(ghcr_ref, f"{dest_registry.host}/{unique('mirror')}")

        async def main() -> CopyResult:
            async with RegistryClient(
                upstreams={"docker.io": source_registry.url}, credentials=login,
                retry=fast_retry(), allow_private_hosts=True,
            ) as pushing:  # fmt: skip
                pushed_result = await Copier(pushing).copy(source, pushed)
                assert pushed_result.status == "copied", pushed_result.error
            async with RegistryClient(
                upstreams={"ghcr.io": ghcr.url}, credentials=credentials(),
                retry=fast_retry(), allow_private_hosts=True,
            ) as client:  # fmt: skip
                return await Copier(client).copy(ghcr_ref, destination)

        result = asyncio.run(asyncio.wait_for(main(), timeout=60))
        blob_requests = [m for _, m, p in ghcr.arrivals if "/blobs/" in p]
    assert result.status == "copied", result.error
    assert blob_requests == ["GET"] * len(image.blobs)
    verify_image(dest_registry.url, destination.repository, image.digest)
