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
import time

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
from standins.registry import Registry
from transfer_support import (
    DENIED,
    JSON,
    UPLOADS,
    closing_path,
    copy_chunked,
    copy_client,
    layered_image,
    mirror_refs,
)  # fmt: skip

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
