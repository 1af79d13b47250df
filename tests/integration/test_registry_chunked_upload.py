"""Chunked uploads against real docker-registry servers and the fault proxy, in process:
what each chunk says, what the destination's answers to a chunk and to the check after
the close must show, chunk sizes under a deadline, what the source must send into a
resumed upload, and how a recorded upload is found, asked about and forgotten.

Requests are counted by their arrival at the fault proxy (recorded before it answers).
"""

from __future__ import annotations

import asyncio
import re

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
from registry_checks import credentials, fast_retry, unique, verify_image
from standins import images
from standins.registry import Registry
from transfer_support import (
    DENIED,
    JSON,
    LAYER,
    UPLOADS,
    blob_path,
    closing_path,
    copy_chunked,
    copy_client,
    layered_image,
    mirror_refs,
    partial_upload,
    place_all_but,
)  # fmt: skip

# -- the chunks, and the check after the close -----------------------------------------------


def test_a_chunk_says_what_it_is_and_where_it_goes(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """Each PATCH is an octet stream with its Content-Range (the spec's chunked upload)."""
    image, layer = layered_image(source_registry, "chunk-headers", 19410)
    result, _ = copy_chunked(source_registry, dest_registry, dest_proxy, image, layer)
    assert result.status == "copied", result.error
    (chunk,) = [h for m, _, h in dest_proxy.requests if m == "PATCH"]
    assert chunk["content-type"].lower() == "application/octet-stream"
    assert chunk["content-range"] == f"0-{layer.size - 1}"
    assert chunk["content-length"] == str(layer.size)


def test_a_chunk_the_destination_holds_short_is_a_transient_failure_naming_both_counts(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    image, layer = layered_image(source_registry, "chunk-short", 19420)
    dest_proxy.add("PATCH", UPLOADS, "headers", headers={"Range": "0-99"}, times=100)
    result, _ = copy_chunked(
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
    image, layer = layered_image(source_registry, "close-never", 19430)
    body = b'{"errors":[{"code":"DIGEST_INVALID","message":"no"}]}'
    dest_proxy.add("PUT", closing_path(layer.digest), "serve", status=400, body=body,
                   headers=JSON, times=100)  # fmt: skip
    result, destination = copy_chunked(
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
    image, layer = layered_image(source_registry, f"close-size-{length}", 19440 + length % 7)
    path = blob_path(layer.digest)
    dest_proxy.add("HEAD", path, "headers", headers={})  # the check before the upload
    dest_proxy.add("HEAD", path, "serve", status=200, body=b"x" * length, times=100,
                   headers={"Docker-Content-Digest": layer.digest})  # fmt: skip
    result, destination = copy_chunked(
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
    image, layer = layered_image(source_registry, "close-nolength", 19450)
    path = blob_path(layer.digest)
    dest_proxy.add("HEAD", path, "headers", headers={})  # the check before the upload
    dest_proxy.add("HEAD", path, "serve", status=200, times=1,
                   headers={"Docker-Content-Digest": layer.digest, "Content-Length": ""})  # fmt: skip
    result, destination = copy_chunked(
        source_registry, dest_registry, dest_proxy, image, layer, retry=fast_retry(1)
    )
    assert result.status == "copied", result.error
    assert dest_proxy.count("HEAD", path, "serve") == 1
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_check_after_the_close_that_fails_names_the_check(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """The close went through but the HEAD that checks the blob keeps failing: the copy
    fails, retryable, saying it was the check of that blob that failed."""
    image, layer = layered_image(source_registry, "close-check-500", 19460)
    path = blob_path(layer.digest)
    dest_proxy.add("HEAD", path, "headers", headers={})  # the check before the upload
    dest_proxy.add("HEAD", path, "serve", status=500, times=100)
    result, destination = copy_chunked(
        source_registry, dest_registry, dest_proxy, image, layer, retry=fast_retry(1)
    )
    assert result.status == "failed" and result.retryable
    assert result.error is not None
    assert result.error.startswith(f"check {layer.digest} in {destination.name}: ")
    assert result.error.endswith(
        f" answered 500 to HEAD /v2/{destination.repository}/blobs/{layer.digest}"
    )


def test_a_chunk_whose_connection_breaks_names_the_blob_and_both_ends(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """A chunk sent into a destination that never answers times out: a transient
    failure naming the blob, where it came from and where it was going."""
    image, layer = layered_image(source_registry, "chunk-silent", 19460)
    dest_proxy.add("PATCH", UPLOADS, "hang", times=100)
    result, destination = copy_chunked(
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
    source, destination = mirror_refs(image, dest_registry.host)

    async def main() -> CopyResult:
        async with copy_client(
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


def _copy_via(
    source_proxy: FaultProxy, dest_registry: Registry, dest_proxy: FaultProxy,
    image: images.Image, layer: images.Blob, sessions: MemoryUploadSessions,
    refs: tuple[Reference, Reference] | None = None,
) -> CopyResult:  # fmt: skip
    """Copy ``image`` (to ``refs``, or a new mirror) from behind ``source_proxy`` in one
    attempt, its layer chunked."""
    source, destination = refs or mirror_refs(image, dest_registry.host)

    async def main() -> CopyResult:
        async with copy_client(
            source_proxy.url, dest_registry.host, dest_proxy.url,
            resumable_min_size=layer.size, retry=fast_retry(1),
        ) as client:  # fmt: skip
            return await Copier(client, sessions=sessions).copy(source, destination)

    return asyncio.run(asyncio.wait_for(main(), timeout=60))


def test_a_source_blob_that_does_not_hash_to_its_digest_fails_before_the_close(
    source_registry: Registry, source_proxy: FaultProxy, dest_registry: Registry,
    dest_proxy: FaultProxy,
) -> None:  # fmt: skip
    image, layer = layered_image(source_registry, "chunk-corrupt", 19480)
    source_proxy.add("GET", blob_path(layer.digest), "corrupt", times=100)
    result = _copy_via(
        source_proxy, dest_registry, dest_proxy, image, layer, MemoryUploadSessions()
    )
    assert result.status == "failed"
    assert result.error is not None and result.error.endswith(
        f"blob {layer.digest}: content does not match its digest"
    )
    assert not dest_proxy.arrived("PUT", closing_path(layer.digest))  # never closed


@pytest.mark.parametrize("content_range", ["bytes 0-199999/200000", ""])
def test_a_resumed_download_answered_with_another_range_fails(
    source_registry: Registry, source_proxy: FaultProxy, dest_registry: Registry,
    dest_proxy: FaultProxy, content_range: str,
) -> None:  # fmt: skip
    """The upload holds 80,000 bytes, so the source is asked for the rest; a 206 whose
    Content-Range starts elsewhere (or is missing) would put the wrong bytes in the blob."""
    image, layer = layered_image(source_registry, "range-other", 19490 + len(content_range))
    refs = mirror_refs(image, dest_registry.host)
    destination = refs[1]
    sessions = MemoryUploadSessions()
    held = f"/v2/{destination.repository}/blobs/uploads/held"
    sessions.save_upload_session(
        f"{dest_proxy.url}/{destination.repository}", layer.digest, held, 80_000
    )
    dest_proxy.add("GET", f"{held}$", "serve", status=204, times=100,
                   headers={"Range": "0-79999", "Location": held})  # fmt: skip
    source_proxy.add("GET", blob_path(layer.digest), "headers", times=100,
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
    image, layer = layered_image(source_registry, "status-busy", 19500)
    source, destination = mirror_refs(image, dest_registry.host)
    sessions = MemoryUploadSessions()
    held = f"/v2/{destination.repository}/blobs/uploads/held"
    sessions.save_upload_session(
        f"{dest_proxy.url}/{destination.repository}", layer.digest, held, 80_000
    )
    dest_proxy.add("GET", f"{held}$", "503", times=100)

    async def main() -> CopyResult:
        async with copy_client(
            source_registry.url, dest_registry.host, dest_proxy.url,
            resumable_min_size=layer.size, retry=fast_retry(3),
        ) as client:  # fmt: skip
            return await Copier(client, sessions=sessions).copy(source, destination)

    result = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert result.status == "failed" and result.retryable
    assert len(dest_proxy.arrived("GET", f"{held}$")) == 3


# -- starting an upload, and finding a recorded one ------------------------------------------


def _copy_once(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy,
    refs: tuple[Reference, Reference], layer: images.Blob, sessions: MemoryUploadSessions,
    attempts: int = 1,
) -> CopyResult:  # fmt: skip
    async def main() -> CopyResult:
        async with copy_client(
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
    image, layer = layered_image(source_registry, "forget-" + standing[:4], 19510 + len(standing))
    refs = mirror_refs(image, dest_registry.host)
    destination = refs[1]
    place_all_but(dest_registry.url, destination.repository, image, layer)
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
    image, layer = layered_image(source_registry, "start-busy", 19520)
    refs = mirror_refs(image, dest_registry.host)
    place_all_but(dest_registry.url, refs[1].repository, image, layer)
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
    image, layer = layered_image(source_registry, "status-nolocation", 19530)
    refs = mirror_refs(image, dest_registry.host)
    destination = refs[1]
    place_all_but(dest_registry.url, destination.repository, image, layer)
    held = 80_000
    location = partial_upload(
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
    image, layer = layered_image(source_registry, "held-source", 19540)
    source, destination = mirror_refs(image, dest_registry.host)
    source_proxy.add("HEAD", blob_path(layer.digest), "429", retry_after="60")
    backoffs = Backoffs()
    hasty = RetryPolicy(attempts=1, max_retry_after=5)
    blob = Descriptor(layer.media_type, layer.digest, layer.size)

    async def main() -> None:
        async with (
            copy_client(source_proxy.url, dest_registry.host, dest_registry.url,
                    retry=hasty, backoffs=backoffs) as beside,
            copy_client(source_proxy.url, dest_registry.host, dest_registry.url, retry=hasty,
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
    assert not source_proxy.arrived("GET", blob_path(layer.digest))


def test_a_held_later_endpoint_is_not_asked_even_when_the_first_one_is_free(
    source_registry: Registry, source_proxy: FaultProxy, dest_registry: Registry
) -> None:
    """docker.io is a pull-through mirror first, then the source.  The blob is read from
    the source (where the image was found), and it is the source's hold that counts."""
    image, layer = layered_image(source_registry, "held-later", 19550)
    source, destination = mirror_refs(image, dest_registry.host)
    source_proxy.add("HEAD", blob_path(layer.digest), "429", retry_after="60")
    backoffs = Backoffs()
    hasty = RetryPolicy(attempts=1, max_retry_after=5)
    blob = Descriptor(layer.media_type, layer.digest, layer.size)

    async def main() -> None:
        with FaultProxy(dest_registry.url) as empty_mirror:
            async with (
                copy_client(source_proxy.url, dest_registry.host, dest_registry.url,
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
    assert not source_proxy.arrived("GET", blob_path(layer.digest))


def test_a_chunked_download_earns_the_source_token_for_its_own_repository(
    source_registry: Registry, dest_registry: Registry, token_registry: Registry
) -> None:
    """The token source (pull for anyone) has challenged this client for another
    repository only: before its transfer thread reads the blob, a HEAD of that blob
    through the auth flow earns the token for the blob's repository."""
    image, layer = layered_image(source_registry, "earn-source", 19560)
    source, pushed = mirror_refs(image, token_registry.host)
    login = credentials({token_registry.host: ("armirror", "s3cret")})
    ghcr = parse(f"ghcr.io/{pushed.repository}:1")
    destination = destination_for(ghcr, f"{dest_registry.host}/{unique('mirror')}")
    blob = Descriptor(layer.media_type, layer.digest, layer.size)

    async def main() -> int:
        async with RegistryClient(
            upstreams={"docker.io": source_registry.url}, credentials=login,
            retry=fast_retry(), allow_private_hosts=True,
        ) as pushing:  # fmt: skip
            pushed_result = await Copier(pushing).copy(source, pushed)
            assert pushed_result.status == "copied", pushed_result.error
        async with RegistryClient(
            upstreams={"ghcr.io": token_registry.url}, credentials=credentials(),
            retry=fast_retry(1), allow_private_hosts=True, resumable_min_size=layer.size,
        ) as client:  # fmt: skip
            other = parse(f"ghcr.io/{unique('library/other')}:1")
            assert not await client.blob_exists(other, layer.digest)  # challenged
            return await client.copy_blob(ghcr, destination, blob, sessions=MemoryUploadSessions())

    moved = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert moved == layer.size
    there = httpx.head(f"{dest_registry.url}/v2/{destination.repository}/blobs/{layer.digest}")
    assert there.status_code == 200


def test_a_download_the_source_refuses_is_not_called_missing(
    source_registry: Registry, source_proxy: FaultProxy, dest_registry: Registry,
    dest_proxy: FaultProxy,
) -> None:  # fmt: skip
    """Only a 404 means the source lacks the blob (and another endpoint may be tried); a
    403 is the source refusing, and says so."""
    image, layer = layered_image(source_registry, "download-denied", 19570)
    source_proxy.add("GET", blob_path(layer.digest), "serve", status=403, body=DENIED,
                     headers=JSON, times=100)  # fmt: skip
    result = _copy_via(
        source_proxy, dest_registry, dest_proxy, image, layer, MemoryUploadSessions()
    )
    assert result.status == "failed" and not result.retryable
    assert result.error is not None
    host = httpx.URL(source_proxy.url).netloc.decode()
    assert result.error.startswith(f"download blob {layer.digest}: {host} refused access")
    assert "not found" not in result.error


def test_chunks_refused_send_the_blob_whole_from_the_endpoint_that_has_it(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """docker.io is an empty pull-through mirror first, then the source, where the image
    was found.  The destination refuses chunks (405), so the blob goes up whole, read
    from the source again, and its bytes are reported again as they go."""
    image, layer = layered_image(source_registry, "refused-later", 19580)
    _, destination = mirror_refs(image, dest_registry.host)
    source = parse(f"docker.io/{image.repository}:1")
    dest_proxy.add("PATCH", UPLOADS, "serve", status=405, times=100)
    blob = Descriptor(layer.media_type, layer.digest, layer.size)
    reported: list[int] = []

    async def main() -> int:
        with FaultProxy(dest_registry.url) as empty_mirror:
            async with RegistryClient(
                upstreams={"docker.io": [empty_mirror.url, source_registry.url],
                           dest_registry.host: dest_proxy.url},
                credentials=credentials(), allow_private_hosts=True, retry=fast_retry(1),
                resumable_min_size=layer.size,
            ) as client:  # fmt: skip
                return await client.copy_blob(
                    source, destination, blob, reported.append,
                    source_endpoint=source_registry.url, sessions=MemoryUploadSessions(),
                )  # fmt: skip

    moved = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert moved == layer.size
    assert sum(reported) == 2 * layer.size  # the refused chunk, then the whole blob
    there = httpx.head(f"{dest_registry.url}/v2/{destination.repository}/blobs/{layer.digest}")
    assert there.status_code == 200
