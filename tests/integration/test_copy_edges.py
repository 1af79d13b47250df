"""Copy edges against real docker-registry servers and the fault proxy, in process.

- ``copy_images`` keeps its bounds: with ``checks=1`` one image at a time, with
  ``jobs=1`` one blob upload at a time, and the progress display hears of each.
- A resumable upload goes on from what the destination already holds, moving only the
  rest; a blob the source lacks fails the copy at once (no retries, not "try again").
- A registry that refuses chunks gets the blob whole even when cancelling its abandoned
  upload fails; the destination's other refusals fail the copy clearly or are tried again.
- What a copy reports, signatures with and without a tag list, and the tags/list and
  referrers answers registries give.

Requests are counted by their arrival at the fault proxy (recorded before it answers).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from armirror.copyplan import PlannedCopy, plan_copy
from armirror.reference import Reference, destination_for, parse
from armirror.registry import CopyResult, RegistryClient
from armirror.registry.copy import Copier, copy_images
from armirror.registry.errors import TransientError
from armirror.registry.resumable import ChunkedUpload, Deadline, MemoryUploadSessions
from faultproxy import FaultProxy
from registry_checks import credentials, fast_retry, skopeo_digest, unique, verify_image
from standins import images
from standins.registry import Registry

UPLOADS = "/blobs/uploads/"


class Heard:
    """A progress display that writes down what it hears, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.moved: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self._lock = threading.Lock()  # bytes are reported from transfer threads

    def planned(self, source: str, total_bytes: int) -> None:
        self.events.append(("planned", source))
        self.totals[source] = total_bytes

    def advanced(self, source: str, nbytes: int) -> None:
        with self._lock:
            self.moved[source] = self.moved.get(source, 0) + nbytes

    def finished(self, result: CopyResult) -> None:
        self.events.append(("finished", result.source))


def _client(
    source_url: str | tuple[str, ...], dest_host: str, dest_url: str, **options: object
) -> RegistryClient:
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
        async with _client(
            source_registry.url, dest_registry.host, dest_proxy.url, blob_threads=1
        ) as client:
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
        assert heard.totals[str(source)] == total
        assert results[sources.index(source)].bytes_copied == total
    # jobs=1: each upload is started only after the one before it was sent.
    uploads = [m for _, m, p in dest_proxy.arrivals if m in ("POST", "PUT") and UPLOADS in p]
    blobs = sum(len(image.all_blobs()) for image in batch)
    assert uploads == ["POST", "PUT"] * blobs
    for image, (_, destination) in zip(batch, pairs, strict=True):
        verify_image(dest_registry.url, destination.repository, image.digest)


# -- resumable uploads ------------------------------------------------------------------------


def test_a_recorded_upload_goes_on_from_what_the_destination_holds(
    source_registry: Registry, dest_registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    image = images.single_image(unique("library/resumed"), "1", seed=18710, layer_sizes=(500_000,))
    images.push(source_registry.url, image)
    layer = next(b for b in image.blobs if b.size == 500_000)
    content = b"".join(layer.chunks())
    source, destination = _refs(image, dest_registry)
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

    with caplog.at_level(logging.INFO, logger="armirror"):
        result = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert result.status == "copied", result.error
    assert (
        f"resuming the upload of blob {layer.digest} from {source.name} to {destination.name} "
        f"at byte {held} of {layer.size}"
    ) in [r.getMessage() for r in caplog.records]
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
    source, destination = _refs(image, dest_registry)

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
    assert len(hub.arrived("GET", f"/blobs/{layer.digest}")) == 1  # and not asked again
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
    source, destination = _refs(image, dest_registry)

    async def main() -> CopyResult:
        async with _client(
            source_registry.url, dest_registry.host, dest_proxy.url, resumable_min_size=1
        ) as client:
            return await Copier(client, sessions=MemoryUploadSessions()).copy(source, destination)

    result = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert result.status == "copied", result.error
    assert len(dest_proxy.arrived("DELETE", UPLOADS)) >= 1  # it was tried
    verify_image(dest_registry.url, destination.repository, image.digest)


# -- what a copy reports ----------------------------------------------------------------------


def _copy_one(
    source_url: str | tuple[str, ...], dest_registry: Registry, source: Reference, destination: Reference,
    **copier: object,
) -> CopyResult:  # fmt: skip
    async def main() -> CopyResult:
        async with _client(source_url, dest_registry.host, dest_registry.url) as client:
            return await Copier(client, **copier).copy(source, destination)  # type: ignore[arg-type]

    return asyncio.run(asyncio.wait_for(main(), timeout=60))


def test_a_missing_image_is_reported_not_raised(
    source_registry: Registry, dest_registry: Registry
) -> None:
    source = parse(f"docker.io/{unique('library/missing')}:1")
    destination = destination_for(source, f"{dest_registry.host}/{unique('mirror')}")
    result = _copy_one(source_registry.url, dest_registry, source, destination)
    assert result.error == f"{source}: not found at {source_registry.url}"
    assert result.status == "failed" and result.digest is None and result.endpoint is None
    assert (result.retryable, result.rate_limited, result.retry_after) == (False, False, None)
    assert result.started_at is not None and result.finished_at is not None
    assert result.started_at <= result.finished_at and result.started_at.tzinfo is not None
    shown = result.to_json()
    assert shown["status"] == "failed" and shown["error"] == result.error
    assert shown["started_at"] == result.started_at.isoformat()
    assert shown["finished_at"] == result.finished_at.isoformat()
    assert shown["manifest_gets"] == {} and shown["bytes_copied"] == 0


def test_a_copied_image_reports_what_it_moved_and_cost(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    image = images.single_image(unique("library/reported"), "1", seed=18740)
    images.push(source_registry.url, image)
    source, destination = _refs(image, dest_registry)
    result = _copy_one(hub.url, dest_registry, source, destination)
    assert result.status == "copied", result.error
    shown = result.to_json()
    assert shown["digest"] == image.digest and shown["endpoint"] == hub.url
    assert shown["bytes_copied"] == sum(b.size for b in image.all_blobs())
    assert shown["manifest_gets"] == {hub.url.split("://", 1)[1]: 1}
    assert shown["error"] is None and shown["retryable"] is False
    assert isinstance(shown["started_at"], str) and isinstance(shown["finished_at"], str)


def test_a_head_without_a_digest_is_answered_by_the_get(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    image = images.multi_arch_image(unique("library/nodigest"), "1", seed=18750)
    images.push(source_registry.url, image)
    # The source's HEAD of the tag leaves Docker-Content-Digest out.
    hub.add("HEAD", rf"/{image.repository}/manifests/1$", "headers",
            headers={"Docker-Content-Digest": ""}, times=10)  # fmt: skip
    source, destination = _refs(image, dest_registry)
    # The registry's first endpoint lacks the image: the GET goes where the HEAD found it.
    endpoints = (dest_registry.url, hub.url)
    result = _copy_one(endpoints, dest_registry, source, destination)
    assert result.status == "copied", result.error
    assert result.digest == image.digest and result.endpoint == hub.url
    verify_image(dest_registry.url, destination.repository, image.digest)
    # A second run finds it up to date: the destination's HEAD names the digest.
    hub.clear()
    hub.add("HEAD", rf"/{image.repository}/manifests/1$", "headers",
            headers={"Docker-Content-Digest": ""}, times=10)  # fmt: skip
    again = _copy_one(hub.url, dest_registry, source, destination)
    assert again.status == "up-to-date", again.error
    assert again.digest == image.digest


# -- signatures ---------------------------------------------------------------------------------


def test_without_signatures_no_tag_list_and_no_signature_tags(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    image = images.sign(
        images.single_image(unique("library/unsigned-copy"), "1", seed=18760),
        seed=18761,
        kinds=("sig",),
    )
    images.push(source_registry.url, image)
    source, destination = _refs(image, dest_registry)
    result = _copy_one(hub.url, dest_registry, source, destination, signatures=False)
    assert result.status == "copied", result.error
    assert len(hub.arrived("GET", "/tags/list")) == 0
    assert len(hub.arrived("HEAD", r"\.(sig|att|sbom)$")) == 0
    stem = image.digest.replace(":", "-")
    sig = httpx.head(f"{dest_registry.url}/v2/{destination.repository}/manifests/{stem}.sig")
    assert sig.status_code == 404


def test_signatures_found_without_a_tag_list(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    image = images.sign(
        images.multi_arch_image(unique("library/no-tag-list"), "1", seed=18770),
        seed=18771,
        kinds=("sig",),
    )
    images.push(source_registry.url, image)
    hub.add("GET", "/tags/list", "serve", status=404, times=10)  # a registry without it
    source, destination = _refs(image, dest_registry)
    result = _copy_one(hub.url, dest_registry, source, destination)
    assert result.status == "copied", result.error
    stem = image.digest.replace(":", "-")
    # Each of the image's three candidate tags is asked about; the platforms' are not.
    for kind in ("sig", "att", "sbom"):
        assert len(hub.arrived("HEAD", rf"/manifests/{stem}\.{kind}$")) == 1
    assert len(hub.arrived("HEAD", r"\.(sig|att|sbom)$")) == 3
    signature = image.tagged[f"{stem}.sig"]
    copied = httpx.head(
        f"{dest_registry.url}/v2/{destination.repository}/manifests/{stem}.sig",
        headers={"Accept": signature.media_type},
    )
    assert copied.headers.get("Docker-Content-Digest") == signature.digest


def test_one_tag_list_per_source_repository(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    repository = unique("library/shared-list")
    batch = [images.single_image(repository, tag, seed=18780 + n) for n, tag in enumerate("12")]
    for image in batch:
        images.push(source_registry.url, image)
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    sources = [parse(f"docker.io/{repository}:{tag}") for tag in "12"]

    async def main() -> list[CopyResult]:
        async with _client(hub.url, dest_registry.host, dest_registry.url) as client:
            pairs = [(s, destination_for(s, prefix)) for s in sources]
            return await Copier(client).copy_many(pairs)

    results = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert [r.status for r in results] == ["copied", "copied"], [r.error for r in results]
    assert len(hub.arrived("GET", "/tags/list")) == 1


# -- the destination's answers ----------------------------------------------------------------


def _refs(image: images.Image, dest_registry: Registry) -> tuple[Reference, Reference]:
    """The Docker Hub name of a pushed image's tag 1, and its mirror in a fresh repository."""
    source = parse(f"docker.io/{image.repository}:1")
    return source, destination_for(source, f"{dest_registry.host}/{unique('mirror')}")


def _image_and_refs(
    source_registry: Registry, dest_registry: Registry, stem: str, seed: int
) -> tuple[images.Image, Reference, Reference]:
    image = images.single_image(unique(f"library/{stem}"), "1", seed=seed)
    images.push(source_registry.url, image)
    return image, *_refs(image, dest_registry)


def _copy_through(
    source_url: str | tuple[str, ...], dest_registry: Registry, dest_url: str, source: Reference,
    destination: Reference, **options: object,
) -> CopyResult:  # fmt: skip
    copier = {k: options.pop(k) for k in ("sessions", "deadline") if k in options}

    async def main() -> CopyResult:
        async with _client(source_url, dest_registry.host, dest_url, **options) as client:
            return await Copier(client, **copier).copy(source, destination)  # type: ignore[arg-type]

    return asyncio.run(asyncio.wait_for(main(), timeout=60))


@pytest.mark.parametrize("chunked", [False, True])
def test_an_upload_start_without_a_location_fails_the_copy(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy, chunked: bool
) -> None:
    _, source, destination = _image_and_refs(source_registry, dest_registry, "noloc", 18800)
    dest_proxy.add("POST", rf"{UPLOADS}$", "serve", status=202, times=100)
    options: dict[str, object] = {"resumable_min_size": 1, "sessions": MemoryUploadSessions()}
    result = _copy_through(
        source_registry.url, dest_registry, dest_proxy.url, source, destination,
        **(options if chunked else {}),
    )  # fmt: skip
    assert result.status == "failed" and not result.retryable
    assert result.error is not None
    assert result.error.startswith("blob sha256:")
    assert result.error.endswith(
        f"from {source.name} to {destination.name}: registry gave no upload location"
    )
    assert _tag_absent(dest_registry.url, destination)


def test_an_upload_refused_401_mid_copy_is_tried_again(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """A token that expired between the upload start and the PUT: the transfer is
    tried again, not failed for want of credentials."""
    image, source, destination = _image_and_refs(source_registry, dest_registry, "expired", 18810)
    dest_proxy.add("PUT", UPLOADS, "serve", status=401, times=1)
    result = _copy_through(source_registry.url, dest_registry, dest_proxy.url, source, destination)
    assert result.status == "copied", result.error
    assert dest_proxy.count("PUT", UPLOADS, "serve") == 1  # recorded before it answers
    assert len(dest_proxy.arrived("PUT", UPLOADS)) == len(image.all_blobs()) + 1
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_an_upload_refused_otherwise_fails_the_copy(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    _, source, destination = _image_and_refs(source_registry, dest_registry, "denied", 18820)
    denied = b'{"errors":[{"code":"DENIED","message":"quota exceeded"}]}'
    dest_proxy.add("PUT", UPLOADS, "serve", status=403, body=denied, times=100,
                   headers={"Content-Type": "application/json"})  # fmt: skip
    result = _copy_through(source_registry.url, dest_registry, dest_proxy.url, source, destination)
    assert result.status == "failed" and not result.retryable
    assert result.error is not None and result.error.startswith("upload blob sha256:")
    assert f" from {source.name} to {destination.name}: " in result.error
    assert "refused access (403)" in result.error and "(DENIED: quota exceeded)" in result.error
    assert "_state" not in result.error  # the upload's state stays out of messages
    assert _tag_absent(dest_registry.url, destination)


@pytest.mark.parametrize("kind", ["503", "429"])
def test_a_manifest_push_answered_busy_is_tried_again(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy, kind: str
) -> None:
    image, source, destination = _image_and_refs(source_registry, dest_registry, "busy-push", 18830)
    dest_proxy.add("PUT", "/manifests/", kind, times=1, retry_after="0")
    result = _copy_through(source_registry.url, dest_registry, dest_proxy.url, source, destination)
    assert result.status == "copied", result.error
    assert len(dest_proxy.arrived("PUT", "/manifests/")) == 2
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_copy_past_its_deadline_starts_no_transfer(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    _, source, destination = _image_and_refs(source_registry, dest_registry, "late", 18840)
    result = _copy_through(
        source_registry.url, dest_registry, dest_proxy.url, source, destination,
        deadline=Deadline(at=time.monotonic() - 1),
    )  # fmt: skip
    assert result.status == "failed" and result.retryable  # the next attempt goes on
    assert result.error is not None
    assert result.error.startswith("blob sha256:")
    assert result.error.endswith(
        "not started, the copy's deadline is near; the next attempt goes on"
    )
    assert len(dest_proxy.arrived("POST", UPLOADS)) == 0
    assert _tag_absent(dest_registry.url, destination)


# -- tags/list and referrers as registries answer them ----------------------------------------

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


def _ask(url: str, call: str, *args: object) -> object:
    """One client call against ``url`` as docker.io."""

    async def main() -> object:
        async with RegistryClient(
            upstreams={"docker.io": url},
            credentials=credentials(),
            retry=fast_retry(attempts=2),
            allow_private_hosts=True,
        ) as client:
            return await getattr(client, call)(*args)

    return asyncio.run(asyncio.wait_for(main(), timeout=60))


def test_tag_list_one_page_of_a_thousand(source_registry: Registry, hub: FaultProxy) -> None:
    repository = unique("library/tagged")
    for tag in ("1", "2"):
        images.push(source_registry.url, images.single_image(repository, tag, seed=18900))
    tags = _ask(hub.url, "list_tags", parse(f"docker.io/{repository}:1"))
    assert sorted(tags) == ["1", "2"]  # type: ignore[call-overload]
    (path,) = [p for _, m, p in hub.arrivals if m == "GET" and "/tags/list" in p]
    assert path == f"/v2/{repository}/tags/list?n=1000"


@pytest.mark.parametrize(
    ("status", "headers", "body", "tags"),
    [
        (200, {}, b'{"name": "x", "tags": ["a", 7]}', ["a", "7"]),
        (200, {}, b'{"name": "x", "tags": null}', []),
        (200, {}, b'{"name": "x"}', []),
        # More than one page: the caller asks tag by tag instead.
        (200, {"Link": '</v2/x/tags/list?n=1000&last=a>; rel="next"'}, b'{"tags": ["a"]}', None),
        (200, {}, b'{"tags": "a"}', None),
        (200, {}, b'["a"]', None),
        (200, {}, b"<html>", None),
        (200, {}, b"[" * 100_000, None),
        (404, {}, b'{"errors": [{"code": "NAME_UNKNOWN"}]}', None),
    ],
)
def test_tag_list_answers(
    hub: FaultProxy, status: int, headers: dict[str, str], body: bytes, tags: list[str] | None
) -> None:
    hub.add("GET", "/tags/list", "serve", status=status, body=body, times=5,
            headers={"Content-Type": "application/json", **headers})  # fmt: skip
    assert _ask(hub.url, "list_tags", parse("docker.io/library/x:1")) == tags


@pytest.mark.parametrize(
    ("status", "content_type", "body", "found"),
    [
        (
            200,
            INDEX_TYPE,
            {"manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:1",
                 "size": 9, "artifactType": "application/spdx+json"},
                {"digest": "sha256:2"},
                {"mediaType": "x", "size": 3},
                "sha256:3",
            ]},
            [("application/vnd.oci.image.manifest.v1+json", "sha256:1", 9), ("", "sha256:2", 0)],
        ),
        (200, f"{INDEX_TYPE}; charset=utf-8", {"manifests": None}, []),
        (200, INDEX_TYPE, {}, []),
        (200, "application/json", {"manifests": [{"digest": "sha256:1"}]}, None),
        (404, "application/json", {"errors": [{"code": "NOT_FOUND"}]}, None),
        (400, "application/json", {"errors": [{"code": "UNSUPPORTED"}]}, None),
        (405, "text/plain", "method not allowed", None),
        (200, "", {"manifests": [{"digest": "sha256:1"}]}, None),  # no Content-Type at all
    ],
)  # fmt: skip
def test_referrers_answers(
    hub: FaultProxy, status: int, content_type: str, body: object, found: list[object] | None
) -> None:
    hub.add("GET", "/referrers/", "serve", status=status, body=json.dumps(body).encode(), times=5,
            headers={"Content-Type": content_type} if content_type else {})  # fmt: skip
    answer = _ask(hub.url, "referrers", parse("docker.io/library/x:1"), "sha256:" + "a" * 64)
    if found is None:
        assert answer is None
    else:
        assert [(d.media_type, d.digest, d.size) for d in answer] == found  # type: ignore[attr-defined]
    (path,) = [p for _, m, p in hub.arrivals if m == "GET"]
    assert path == "/v2/library/x/referrers/sha256:" + "a" * 64


# -- recorded uploads that cannot simply go on ------------------------------------------------


def _partial_upload(url: str, repository: str, sent: bytes) -> str:
    """Start an upload at ``url`` holding ``sent``, as an interrupted attempt leaves it;
    returns its location."""
    with httpx.Client(base_url=url) as http:
        started = http.post(f"/v2/{repository}/blobs/uploads/")
        assert started.status_code == 202
        patched = http.patch(
            started.headers["Location"],
            content=sent,
            headers={"Content-Type": "application/octet-stream",
                     "Content-Range": f"0-{len(sent) - 1}"},
        )  # fmt: skip
        assert patched.status_code == 202, patched.text
        return str(patched.headers["Location"])


@pytest.mark.parametrize(
    ("held", "recorded", "wrong"),
    [
        (100_000, 150_000, False),  # the registry holds less than was recorded
        (600_000, 600_000, False),  # more than the blob: another blob's bytes
        (100_000, 100_000, True),  # what it holds is not the blob's beginning
    ],
)
def test_a_recorded_upload_that_cannot_go_on_is_started_over(
    source_registry: Registry, dest_registry: Registry, held: int, recorded: int, wrong: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    image = images.single_image(unique("library/restart"), "1", seed=18950, layer_sizes=(500_000,))
    images.push(source_registry.url, image)
    layer = next(b for b in image.blobs if b.size == 500_000)
    content = b"".join(layer.chunks())
    source, destination = _refs(image, dest_registry)
    sent = bytes(held) if wrong or held > len(content) else content[:held]
    location = _partial_upload(dest_registry.url, destination.repository, sent)
    sessions = MemoryUploadSessions()
    key = f"{dest_registry.url}/{destination.repository}"
    sessions.save_upload_session(key, layer.digest, location, recorded)
    with caplog.at_level(logging.INFO, logger="armirror"):
        result = _copy_through(
            source_registry.url, dest_registry, dest_registry.url, source, destination,
            sessions=sessions, resumable_min_size=layer.size,
        )  # fmt: skip
    assert result.status == "copied", result.error
    unexpected = (
        f"upload of {layer.digest} to {destination.name} holds an unexpected range; starting over"
    )
    said = [r.getMessage() for r in caplog.records]
    assert (unexpected in said) is not wrong, said
    config_size = sum(b.size for b in image.all_blobs()) - layer.size
    # The whole layer went up (wrong bytes are found out when the registry checks the
    # digest at the end; that attempt is then tried again from the start).
    assert result.bytes_copied == config_size + layer.size
    assert sessions.upload_session(key, layer.digest) is None
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_after_a_refusal_the_registry_gets_every_blob_whole(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    batch = [
        images.single_image(unique("library/whole"), "1", seed=18960 + n, layer_sizes=(50_000,))
        for n in range(2)
    ]
    for image in batch:
        images.push(source_registry.url, image)
    dest_proxy.add("PATCH", UPLOADS, "serve", status=405, times=100)
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    pairs = [(s, destination_for(s, prefix)) for s in
             (parse(f"docker.io/{image.repository}:1") for image in batch)]  # fmt: skip
    sessions = MemoryUploadSessions()

    async def main() -> list[CopyResult]:
        async with _client(
            source_registry.url, dest_registry.host, dest_proxy.url, resumable_min_size=1
        ) as client:
            copier = Copier(client, jobs=1, checks=1, sessions=sessions)
            return await copier.copy_many(pairs)

    with caplog.at_level(logging.WARNING, logger="armirror"):
        results = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert [r.status for r in results] == ["copied", "copied"], [r.error for r in results]
    assert len(dest_proxy.arrived("PATCH", UPLOADS)) == 1  # asked once, remembered
    (warned,) = [r.getMessage() for r in caplog.records if "refused a chunked" in r.getMessage()]
    assert warned.startswith(f"{dest_proxy.url} refused a chunked upload (405); sending sha256:")
    assert warned.endswith(" whole, so an interrupted upload to it starts over")
    for image, (_, destination) in zip(batch, pairs, strict=True):
        verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_mount_the_registry_declines_falls_back_to_an_upload(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    image = images.single_image(unique("library/declined"), "1", seed=18970)
    images.push(source_registry.url, image)
    prefix_one = f"{dest_registry.host}/{unique('mirror')}"
    prefix_two = f"{dest_registry.host}/{unique('mirror')}"
    source = parse(f"docker.io/{image.repository}:1")
    pairs = [(source, destination_for(source, prefix_one)),
             (source, destination_for(source, prefix_two))]  # fmt: skip
    # The second repository's mounts are answered "upload instead" (202 with a session).
    abandoned = f"/v2/{pairs[1][1].repository}/blobs/uploads/declined-mount"
    dest_proxy.add("POST", r"\?mount=", "serve", status=202, times=100,
                   headers={"Location": abandoned})  # fmt: skip
    # Cancelling that session gets an answer that cannot be read: no matter.
    dest_proxy.add("DELETE", "/declined-mount", "serve", status=200, times=100,
                   headers={"Content-Encoding": "gzip"}, body=b"not gzip")  # fmt: skip

    async def main() -> list[CopyResult]:
        async with _client(source_registry.url, dest_registry.host, dest_proxy.url) as client:
            return await Copier(client, checks=1).copy_many(pairs)

    results = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert [r.status for r in results] == ["copied", "copied"], [r.error for r in results]
    blobs = len(image.all_blobs())
    assert len(dest_proxy.arrived("POST", r"\?mount=")) == blobs
    assert len(dest_proxy.arrived("DELETE", "/declined-mount$")) == blobs  # each cancelled
    assert results[1].bytes_copied == sum(b.size for b in image.all_blobs())
    verify_image(dest_registry.url, pairs[1][1].repository, image.digest)


def test_a_mount_the_registry_refuses_fails_the_copy_naming_the_mount(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """A refusal that is neither "mounted" (201) nor "upload instead" (202) fails the
    copy, and the error says which blob was being mounted where."""
    image = images.single_image(unique("library/mount-refused"), "1", seed=18980)
    images.push(source_registry.url, image)
    source = parse(f"docker.io/{image.repository}:1")
    pairs = [(source, destination_for(source, f"{dest_registry.host}/{unique('mirror')}"))
             for _ in range(2)]  # fmt: skip
    dest_proxy.add("POST", r"\?mount=", "serve", status=403, times=100)

    async def main() -> list[CopyResult]:
        async with _client(source_registry.url, dest_registry.host, dest_proxy.url) as client:
            return await Copier(client, checks=1).copy_many(pairs)

    results = asyncio.run(asyncio.wait_for(main(), timeout=60))
    # Whichever copy moves the blobs first succeeds; the other mounts from it and fails.
    assert sorted(r.status for r in results) == ["copied", "failed"], [r.error for r in results]
    (failed,) = [r for r in results if r.status == "failed"]
    into = parse(failed.destination).name
    mounts = {f"mount {b.digest} into {into}" for b in image.all_blobs()}
    assert failed.error is not None and any(m in failed.error for m in mounts), failed.error


# -- what the source's rate limit allows --------------------------------------------------------


def _remaining(hub: FaultProxy, remaining: int) -> None:
    """Docker Hub's rate-limit headers on every manifest answer of the source."""
    for method in ("HEAD", "GET"):
        hub.add(method, "/manifests/", "headers", times=1000, headers={
            "ratelimit-limit": "100;w=21600", "ratelimit-remaining": f"{remaining};w=21600"})  # fmt: skip


def _source_gets(hub: FaultProxy) -> int:
    return len(hub.arrived("GET", "/manifests/"))


def test_a_single_image_fits_in_one_remaining_pull(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    image = images.single_image(unique("library/last-pull"), "1", seed=18980)
    images.push(source_registry.url, image)
    _remaining(hub, 1)
    source, destination = _refs(image, dest_registry)
    result = _copy_one(hub.url, dest_registry, source, destination)
    assert result.status == "copied", result.error
    assert _source_gets(hub) == 1


def test_platforms_and_signatures_that_do_not_fit_are_not_fetched(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    image = images.sign(
        images.multi_arch_image(unique("library/over"), "1", seed=18990, attestations=False),
        seed=18991,
    )
    images.push(source_registry.url, image)
    _remaining(hub, 2)  # the index and a platform fit; two platforms and a signature do not
    source, destination = _refs(image, dest_registry)
    result = _copy_one(hub.url, dest_registry, source, destination)
    host = hub.url.split("://", 1)[1]
    assert result.status == "failed" and result.rate_limited and result.retryable
    assert result.error is not None and result.error.startswith(
        f"copy {source}: needs 3 manifest GET(s) at {host}, which allows 2 more in its "
        "6-hour window; not spending them"
    )
    assert result.retry_after is not None and result.retry_after > 0
    assert _source_gets(hub) == 1  # the index only
    assert result.manifest_gets == {host: 1}
    assert _tag_absent(dest_registry.url, destination)

    # With three left it all fits: the index again, two platforms and the signature.
    hub.clear()
    _remaining(hub, 3)
    again = _copy_one(hub.url, dest_registry, source, destination)
    assert again.status == "copied", again.error
    assert _source_gets(hub) == 4
    verify_image(dest_registry.url, destination.repository, image.digest)


@pytest.mark.parametrize("answer", ["whole", "wrong range"])
def test_a_resumed_upload_reads_past_what_a_source_without_ranges_sends(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy, answer: str
) -> None:
    """A source that ignores Range sends the blob from its start: the bytes the
    destination holds are read past.  One that answers another range than asked is
    not used; the next attempt asks again."""
    image = images.single_image(unique("library/ranges"), "1", seed=19000, layer_sizes=(400_000,))
    images.push(source_registry.url, image)
    layer = next(b for b in image.blobs if b.size == 400_000)
    content = b"".join(layer.chunks())
    source, destination = _refs(image, dest_registry)
    held = 150_000
    location = _partial_upload(dest_registry.url, destination.repository, content[:held])
    sessions = MemoryUploadSessions()
    key = f"{dest_registry.url}/{destination.repository}"
    sessions.save_upload_session(key, layer.digest, location, held)
    if answer == "whole":
        hub.add("GET", f"/blobs/{layer.digest}$", "serve", status=200, body=content)
    else:
        hub.add("GET", f"/blobs/{layer.digest}$", "serve", status=206, body=content,
                headers={"Content-Range": f"bytes 0-{layer.size - 1}/{layer.size}"})  # fmt: skip
    result = _copy_through(
        hub.url, dest_registry, dest_registry.url, source, destination,
        sessions=sessions, resumable_min_size=layer.size,
    )  # fmt: skip
    assert result.status == "copied", result.error
    config_size = sum(b.size for b in image.all_blobs()) - layer.size
    assert result.bytes_copied == config_size + layer.size - held  # resumed, not restarted
    assert len(hub.arrived("GET", f"/blobs/{layer.digest}$")) == (1 if answer == "whole" else 2)
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_blob_that_failed_for_one_image_is_tried_again_for_the_next(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    shared = images.generated_layer(seed=19010, size=60_000)
    repository = unique("library/retry-shared")
    batch = [images.single_image(repository, tag, seed=19011 + n, shared=[shared])
             for n, tag in enumerate("12")]  # fmt: skip
    for image in batch:
        images.push(source_registry.url, image)
    prefixes = [f"{dest_registry.host}/{unique('mirror')}" for _ in range(3)]
    first, second = (parse(f"docker.io/{repository}:{tag}") for tag in "12")

    async def main() -> list[CopyResult]:
        async with _client(hub.url, dest_registry.host, dest_registry.url) as client:
            copier = Copier(client)  # one run: blobs placed are remembered across images
            hub.add("GET", f"/blobs/{shared.digest}$", "503", times=1000)
            failed = await copier.copy(first, destination_for(first, prefixes[0]))
            hub.clear()  # the source has recovered
            copied = await copier.copy(second, destination_for(second, prefixes[1]))
            # A third repository mounts every blob from the one that received them.
            mounted = await copier.copy(second, destination_for(second, prefixes[2]))
            return [failed, copied, mounted]

    failed, copied, mounted = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert failed.status == "failed" and failed.retryable
    assert copied.status == "copied", copied.error
    assert copied.bytes_copied == sum(b.size for b in batch[1].all_blobs())
    assert mounted.status == "copied", mounted.error
    assert mounted.bytes_copied == 0
    assert len(hub.arrived("GET", f"/blobs/{shared.digest}$")) == 1
    for prefix in prefixes[1:]:
        repository_there = destination_for(second, prefix).repository
        verify_image(dest_registry.url, repository_there, batch[1].digest)


# -- a registry with two endpoints, by digest -------------------------------------------------


@pytest.fixture
def mirror(source_registry: Registry) -> Iterator[FaultProxy]:
    """A second endpoint for docker.io ("mirror.gcr.io"), in front of the same registry."""
    with FaultProxy(source_registry.url) as proxy:
        yield proxy


def test_by_digest_the_first_endpoint_that_has_it_serves_and_a_lost_platform_falls_through(
    source_registry: Registry, dest_registry: Registry, mirror: FaultProxy, hub: FaultProxy
) -> None:
    image = images.multi_arch_image(unique("library/by-digest"), "1", seed=19020,
                                    attestations=False)  # fmt: skip
    images.push(source_registry.url, image)
    lost = image.children[1].digest
    mirror.add("GET", f"/manifests/{lost}$", "serve", status=404, times=10)
    source = parse(f"docker.io/{image.repository}@{image.digest}")
    destination = destination_for(source, f"{dest_registry.host}/{unique('mirror')}")
    result = _copy_one((mirror.url, hub.url), dest_registry, source, destination)
    assert result.status == "copied", result.error
    assert result.endpoint == mirror.url
    # A digest is looked up endpoint by endpoint: the mirror had it, so Docker Hub was
    # not asked, but for the one platform manifest the mirror lacked.
    assert hub.arrived("HEAD", "/manifests/") == []
    assert [p for _, m, p in hub.arrivals] == [f"/v2/{image.repository}/manifests/{lost}"]
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_everything_is_read_from_the_endpoint_that_answered_for_the_image(
    source_registry: Registry, dest_registry: Registry, mirror: FaultProxy, hub: FaultProxy
) -> None:
    image = images.sign(
        images.multi_arch_image(unique("library/from-hub"), "1", seed=19030, attestations=False),
        seed=19031,
    )
    images.push(source_registry.url, image)
    # The mirror does not have this image (by tag or by digest): Docker Hub serves it.
    for method in ("HEAD", "GET"):
        for ident in ("1", image.digest):
            mirror.add(method, f"/{image.repository}/manifests/{ident}$", "serve", status=404,
                       times=10)  # fmt: skip
    source, destination = _refs(image, dest_registry)
    result = _copy_one((mirror.url, hub.url), dest_registry, source, destination)
    assert result.status == "copied", result.error
    assert result.endpoint == hub.url
    # The mirror was asked what the tag names (and for the repository's tags, which
    # tags/list asks of the registry's first endpoint), nothing else: platforms,
    # signature and blobs all came from Docker Hub.
    assert sorted((m, p) for _, m, p in mirror.arrivals) == [
        ("GET", f"/v2/{image.repository}/tags/list?n=1000"),
        ("HEAD", f"/v2/{image.repository}/manifests/1"),
    ]
    hub_host = hub.url.split("://", 1)[1]
    assert result.manifest_gets == {hub_host: 1 + len(image.children) + 1}
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_signatures_are_looked_up_in_the_tag_list_of_the_endpoint_that_has_the_image(
    source_registry: Registry, dest_registry: Registry, mirror: FaultProxy, hub: FaultProxy
) -> None:
    """A pull-through mirror lists only the tags it has cached.  When Docker Hub serves
    the image, its signature tags come from Docker Hub's tag list: the mirror's, which
    lacks them, made the copy leave the signature behind."""
    image = images.sign(images.single_image(unique("library/signed-at-hub"), "1", seed=19050),
                        seed=19051)  # fmt: skip
    images.push(source_registry.url, image)
    for method in ("HEAD", "GET"):
        for ident in ("1", image.digest):
            mirror.add(method, f"/{image.repository}/manifests/{ident}$", "serve", status=404,
                       times=10)  # fmt: skip
    cached = json.dumps({"name": image.repository, "tags": ["0"]}).encode()
    mirror.add("GET", f"/{image.repository}/tags/list", "serve", body=cached, times=10,
               headers={"Content-Type": "application/json"})  # fmt: skip
    source, destination = _refs(image, dest_registry)

    async def plan() -> PlannedCopy:
        async with _client((mirror.url, hub.url), dest_registry.host, dest_registry.url) as c:
            return await plan_copy(c, source, destination)

    planned = asyncio.run(plan())  # copy --dry-run: the same steps up to the first blob
    result = _copy_one((mirror.url, hub.url), dest_registry, source, destination)
    assert result.status == "copied", result.error
    assert result.endpoint == hub.url
    assert planned.bytes_to_move == result.bytes_copied == sum(b.size for b in image.all_blobs())
    assert planned.manifest_gets == result.manifest_gets
    stem = image.digest.replace(":", "-")
    signature = image.tagged[f"{stem}.sig"]
    stored = httpx.head(
        f"{dest_registry.url}/v2/{destination.repository}/manifests/{stem}.sig",
        headers={"Accept": signature.media_type},
    )
    assert stored.headers.get("Docker-Content-Digest") == signature.digest
    assert hub.arrived("GET", "/tags/list") != []


def test_a_signature_replaced_upstream_replaces_the_mirrors(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    image = images.sign(images.single_image(unique("library/resigned"), "1", seed=19040),
                        seed=19041)  # fmt: skip
    images.push(source_registry.url, image)
    stem = image.digest.replace(":", "-")
    source, destination = _refs(image, dest_registry)
    first = _copy_one(hub.url, dest_registry, source, destination)
    assert first.status == "copied", first.error
    assert _copy_one(hub.url, dest_registry, source, destination).status == "up-to-date"

    # The key was rotated: the same tag now names another signature.
    resigned = images.sign(
        images.Image(image.repository, None, image.top, blobs=list(image.blobs)), seed=19042
    )
    images.push(source_registry.url, resigned)
    new = resigned.tagged[f"{stem}.sig"]
    assert new.digest != image.tagged[f"{stem}.sig"].digest
    hub.clear()
    again = _copy_one(hub.url, dest_registry, source, destination)
    assert again.status == "copied", again.error
    # Only the new signature's blobs moved; the image's were there already.
    old_blobs = {b.digest for b in image.all_blobs()}
    assert again.bytes_copied == sum(
        b.size for b in resigned.all_blobs() if b.digest not in old_blobs
    )
    stored = httpx.head(
        f"{dest_registry.url}/v2/{destination.repository}/manifests/{stem}.sig",
        headers={"Accept": new.media_type},
    )
    assert stored.headers.get("Docker-Content-Digest") == new.digest
    # Only the signature was fetched: the image itself was up to date.
    assert [p for _, m, p in hub.arrivals if m == "GET" and "/manifests/" in p] == [
        f"/v2/{image.repository}/manifests/{stem}.sig"
    ]


@pytest.mark.parametrize("answer", ["busy", "short", "refused"])
def test_a_resumed_chunk_the_destination_does_not_take(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy, answer: str
) -> None:
    """After the first chunk, a registry's 5xx is tried again from what it holds, an
    acknowledgement of fewer bytes than sent is too, and a refusal is an error (the
    registry took chunks before: this is no "send it whole")."""
    image = images.single_image(unique("library/chunk-no"), "1", seed=19050, layer_sizes=(300_000,))
    images.push(source_registry.url, image)
    layer = next(b for b in image.blobs if b.size == 300_000)
    content = b"".join(layer.chunks())
    source, destination = _refs(image, dest_registry)
    held = 100_000
    # Recorded as a path, so that the requests that go on with it pass the proxy.
    at = httpx.URL(_partial_upload(dest_registry.url, destination.repository, content[:held]))
    location = at.raw_path.decode()
    sessions = MemoryUploadSessions()
    sessions.save_upload_session(
        f"{dest_proxy.url}/{destination.repository}", layer.digest, location, held
    )
    if answer == "busy":
        dest_proxy.add("PATCH", UPLOADS, "503", times=1)
    elif answer == "short":
        dest_proxy.add("PATCH", UPLOADS, "serve", status=202, times=1,
                       headers={"Range": f"0-{held + 99}", "Location": location})  # fmt: skip
    else:
        dest_proxy.add("PATCH", UPLOADS, "serve", status=405, times=1)
    result = _copy_through(
        source_registry.url, dest_registry, dest_proxy.url, source, destination,
        sessions=sessions, resumable_min_size=layer.size,
    )  # fmt: skip
    if answer == "refused":
        assert result.status == "failed" and not result.retryable
        assert result.error is not None
        assert result.error.startswith(f"upload chunk of blob {layer.digest}: ")
        assert "answered 405 to PATCH" in result.error
        assert len(dest_proxy.arrived("PATCH", UPLOADS)) == 1
        return
    assert result.status == "copied", result.error
    config_size = sum(b.size for b in image.all_blobs()) - layer.size
    assert result.bytes_copied == config_size + layer.size - held  # resumed again
    assert len(dest_proxy.arrived("PATCH", UPLOADS)) == 2
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_recorded_upload_goes_on_at_the_location_the_registry_gives(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """A registry may renew an upload's location when asked where it stands (it keeps
    state in it): the chunks go to the one it gives, not the one recorded."""
    image = images.single_image(unique("library/renewed"), "1", seed=19060, layer_sizes=(300_000,))
    images.push(source_registry.url, image)
    layer = next(b for b in image.blobs if b.size == 300_000)
    content = b"".join(layer.chunks())
    source, destination = _refs(image, dest_registry)
    held = 100_000
    at = httpx.URL(_partial_upload(dest_registry.url, destination.repository, content[:held]))
    recorded = at.raw_path.decode()
    sessions = MemoryUploadSessions()
    key = f"{dest_proxy.url}/{destination.repository}"
    sessions.save_upload_session(key, layer.digest, recorded, held)
    renewed = f"{recorded}&renewed=1"
    dest_proxy.add("GET", UPLOADS, "headers", times=1, headers={"Location": renewed})
    result = _copy_through(
        source_registry.url, dest_registry, dest_proxy.url, source, destination,
        sessions=sessions, resumable_min_size=layer.size,
    )  # fmt: skip
    assert result.status == "copied", result.error
    config_size = sum(b.size for b in image.all_blobs()) - layer.size
    assert result.bytes_copied == config_size + layer.size - held
    assert [p for _, m, p in dest_proxy.arrivals if m == "PATCH"] == [renewed]
    verify_image(dest_registry.url, destination.repository, image.digest)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_blob_falling_through_to_an_endpoint_that_wants_a_token_gets_one(
    source_registry: Registry, dest_registry: Registry, token_registry: Registry, chunked: bool
) -> None:
    """By digest, only the first endpoint that has the image is asked for it, so a
    later one (Docker Hub behind mirror.gcr.io) may see its first request when a blob
    the mirror lost falls through to it.  That request needs a token first; it was
    sent without one, and failed as "credentials expired mid-copy (401)"."""
    image = images.single_image(unique("library/fallauth"), "1", seed=19070, layer_sizes=(50_000,))
    images.push(source_registry.url, image)
    # The token registry ("Docker Hub") gets the image from armirror itself (it wants
    # credentials to push), and the "mirror" the same repository.
    tag = parse(f"docker.io/{image.repository}:1")
    at_hub = destination_for(tag, f"{token_registry.host}/{unique('hub')}")

    async def seed() -> CopyResult:
        async with RegistryClient(
            upstreams={"docker.io": source_registry.url},
            credentials=credentials({token_registry.host: ("armirror", "s3cret")}),
            retry=fast_retry(),
            allow_private_hosts=True,
        ) as client:
            return await Copier(client).copy(tag, at_hub)

    seeded = asyncio.run(asyncio.wait_for(seed(), timeout=60))
    assert seeded.status == "copied", seeded.error
    images.push(source_registry.url, images.Image(at_hub.repository, "1", image.top,
                                                  blobs=image.blobs))  # fmt: skip
    layer = next(b for b in image.blobs if b.size == 50_000)
    with FaultProxy(source_registry.url) as mirror:
        mirror.add("GET", f"/blobs/{layer.digest}$", "serve", status=404, times=10)
        source = parse(f"docker.io/{at_hub.repository}@{image.digest}")
        destination = destination_for(source, f"{dest_registry.host}/{unique('mirror')}")
        options: dict[str, object] = {"resumable_min_size": 1, "sessions": MemoryUploadSessions()}
        result = _copy_through(
            (mirror.url, token_registry.url), dest_registry, dest_registry.url, source,
            destination, **(options if chunked else {}),
        )  # fmt: skip
    assert result.status == "copied", result.error
    assert result.endpoint == mirror.url
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_registry_that_holds_another_blob_after_an_upload_gets_it_again(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """After the final PUT the blob is checked with a HEAD; a registry naming another
    digest for it is not believed, and the blob goes up again."""
    image, source, destination = _image_and_refs(source_registry, dest_registry, "recheck", 19080)
    layer = max(image.blobs, key=lambda b: b.size)
    wrong = "sha256:" + "0" * 64
    # The first HEAD asks whether the blob is there (it is not); the second checks it.
    dest_proxy.add("HEAD", f"/blobs/{layer.digest}$", "headers", times=2,
                   headers={"Docker-Content-Digest": wrong})  # fmt: skip
    result = _copy_through(
        source_registry.url, dest_registry, dest_proxy.url, source, destination,
        sessions=MemoryUploadSessions(), resumable_min_size=layer.size,
    )  # fmt: skip
    assert result.status == "copied", result.error
    starts = [p for _, m, p in dest_proxy.arrivals if m == "POST" and p.endswith(UPLOADS)]
    assert len(starts) == len(image.all_blobs()) + 1  # the layer's upload, twice
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_chunks_into_a_registry_that_wants_a_token(
    source_registry: Registry, token_registry: Registry
) -> None:
    image = images.single_image(unique("library/chunk-token"), "1", seed=19090)
    images.push(source_registry.url, image)
    source = parse(f"docker.io/{image.repository}:1")
    destination = destination_for(source, f"{token_registry.host}/{unique('mirror')}")
    sessions = MemoryUploadSessions()

    async def main() -> CopyResult:
        async with RegistryClient(
            upstreams={"docker.io": source_registry.url},
            credentials=credentials({token_registry.host: ("armirror", "s3cret")}),
            retry=fast_retry(),
            allow_private_hosts=True,
            resumable_min_size=1,
        ) as client:
            return await Copier(client, sessions=sessions).copy(source, destination)

    result = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert result.status == "copied", result.error
    assert result.bytes_copied == sum(b.size for b in image.all_blobs())
    name = f"{destination.repository}:1"
    assert skopeo_digest(token_registry.host, name, "armirror:s3cret") == image.digest


# -- what a copy asks and counts -----------------------------------------------------------


def test_a_missing_image_names_every_endpoint_asked(
    source_registry: Registry, dest_registry: Registry, mirror: FaultProxy, hub: FaultProxy
) -> None:
    source = parse(f"docker.io/{unique('library/nowhere')}:1")
    destination = destination_for(source, f"{dest_registry.host}/{unique('mirror')}")
    result = _copy_one((mirror.url, hub.url), dest_registry, source, destination)
    assert result.error == f"{source}: not found at {mirror.url}, {hub.url}"


def test_a_pinned_tag_is_set_even_when_its_digest_is_there_untagged(
    source_registry: Registry, dest_registry: Registry
) -> None:
    image = images.single_image(unique("library/pin-tag"), "stable", seed=19100)
    images.push(source_registry.url, image)
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    by_digest = parse(f"docker.io/{image.repository}@{image.digest}")
    pinned = parse(f"docker.io/{image.repository}:stable@{image.digest}")
    first = _copy_one(source_registry.url, dest_registry, by_digest,
                      destination_for(by_digest, prefix))  # fmt: skip
    assert first.status == "copied", first.error
    destination = destination_for(pinned, prefix)
    assert _tag_absent(dest_registry.url, destination)
    result = _copy_one(source_registry.url, dest_registry, pinned, destination)
    assert result.status == "copied", result.error
    assert result.bytes_copied == 0  # every blob was there
    tagged = httpx.head(
        f"{dest_registry.url}/v2/{destination.repository}/manifests/stable",
        headers={"Accept": image.top.media_type},
    )
    assert tagged.headers.get("Docker-Content-Digest") == image.digest


def test_a_moved_index_tag_with_signed_platforms_is_updated(
    source_registry: Registry, dest_registry: Registry
) -> None:
    repository = unique("library/moved-index")
    old = images.sign(images.multi_arch_image(repository, "1", seed=19110, attestations=False),
                      seed=19111, platforms=True)  # fmt: skip
    images.push(source_registry.url, old)
    source = parse(f"docker.io/{repository}:1")
    destination = destination_for(source, f"{dest_registry.host}/{unique('mirror')}")
    assert _copy_one(source_registry.url, dest_registry, source, destination).status == "copied"
    new = images.sign(images.multi_arch_image(repository, "1", seed=19120, attestations=False),
                      seed=19121, platforms=True)  # fmt: skip
    images.push(source_registry.url, new)  # the tag moved on upstream
    result = _copy_one(source_registry.url, dest_registry, source, destination)
    assert result.status == "copied", result.error
    assert result.digest == new.digest
    verify_image(dest_registry.url, destination.repository, new.digest)
    for tag, manifest in new.tagged.items():
        stored = httpx.head(
            f"{dest_registry.url}/v2/{destination.repository}/manifests/{tag}",
            headers={"Accept": manifest.media_type},
        )
        assert stored.headers.get("Docker-Content-Digest") == manifest.digest, tag


def test_the_destination_is_asked_each_thing_once(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """A first copy asks the destination about the tag and the digest; a rerun that
    finds the tag up to date asks about the tag alone, and sends nothing."""
    image, source, destination = _image_and_refs(source_registry, dest_registry, "asked", 19130)
    result = _copy_through(source_registry.url, dest_registry, dest_proxy.url, source, destination)
    assert result.status == "copied", result.error
    heads = [p for _, m, p in dest_proxy.arrivals if m == "HEAD" and "/manifests/" in p]
    assert heads == [f"/v2/{destination.repository}/manifests/{t}" for t in ("1", image.digest)]
    dest_proxy.clear()
    again = _copy_through(source_registry.url, dest_registry, dest_proxy.url, source, destination)
    assert again.status == "up-to-date", again.error
    assert [(m, p) for _, m, p in dest_proxy.arrivals] == [
        ("HEAD", f"/v2/{destination.repository}/manifests/1")
    ]


def test_blobs_shared_by_images_in_one_run_move_once(
    source_registry: Registry, dest_registry: Registry
) -> None:
    shared = images.generated_layer(seed=19140, size=80_000)
    repository = unique("library/shared-run")
    batch = [images.single_image(repository, tag, seed=19141 + n, shared=[shared])
             for n, tag in enumerate("123")]  # fmt: skip
    for image in batch:
        images.push(source_registry.url, image)
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    pairs = [(s, destination_for(s, prefix)) for s in
             (parse(f"docker.io/{repository}:{tag}") for tag in "123")]  # fmt: skip

    async def main() -> list[CopyResult]:
        async with _client(source_registry.url, dest_registry.host, dest_registry.url) as client:
            return await Copier(client).copy_many(pairs)

    results = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert [r.status for r in results] == ["copied"] * 3, [r.error for r in results]
    unique_bytes = sum({b.digest: b.size for i in batch for b in i.all_blobs()}.values())
    assert sum(r.bytes_copied for r in results) == unique_bytes


def test_a_copy_within_one_registry_mounts_and_moves_nothing(source_registry: Registry) -> None:
    image = images.single_image(unique("library/same-registry"), "1", seed=19150)
    images.push(source_registry.url, image)
    source = parse(f"docker.io/{image.repository}:1")
    destination = destination_for(source, f"{source_registry.host}/{unique('mirror')}")
    result = _copy_one(source_registry.url, source_registry, source, destination)
    assert result.status == "copied", result.error
    assert result.bytes_copied == 0
    verify_image(source_registry.url, destination.repository, image.digest)


def test_an_up_to_date_index_without_signatures_is_one_question(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    image = images.multi_arch_image(unique("library/index-asked"), "1", seed=19160,
                                    attestations=False)  # fmt: skip
    images.push(source_registry.url, image)
    source, destination = _refs(image, dest_registry)
    first = _copy_through(source_registry.url, dest_registry, dest_proxy.url, source, destination)
    assert first.status == "copied", first.error
    dest_proxy.clear()
    again = _copy_through(source_registry.url, dest_registry, dest_proxy.url, source, destination)
    assert again.status == "up-to-date", again.error
    # The source's tags name no signatures: the mirror's index is not read for platforms.
    assert [(m, p) for _, m, p in dest_proxy.arrivals] == [
        ("HEAD", f"/v2/{destination.repository}/manifests/1")
    ]


def test_an_index_needs_two_pulls_before_anything_is_spent(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    image = images.multi_arch_image(unique("library/two-pulls"), "1", seed=19170,
                                    attestations=False)  # fmt: skip
    images.push(source_registry.url, image)
    _remaining(hub, 1)
    source, destination = _refs(image, dest_registry)
    result = _copy_one(hub.url, dest_registry, source, destination)
    host = hub.url.split("://", 1)[1]
    assert result.rate_limited and result.error is not None
    assert result.error.startswith(
        f"copy {source}: needs 2 manifest GET(s) at {host}, which allows 1 more"
    )
    assert _source_gets(hub) == 0


def test_signatures_and_several_referrers_all_travel(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    image = images.sign(
        images.single_image(unique("library/referred-signed"), "1", seed=19180, oci=True),
        seed=19181,
    )
    images.push(source_registry.url, image)
    referrers = []
    for n, kind in enumerate(("application/spdx+json", "application/vnd.in-toto+json")):
        payload = images.blob_from_bytes(json.dumps({"n": n, "kind": kind}).encode(), kind)
        artifact, blobs = images.manifest_for([payload], oci=True, seed=19182 + n)
        body = json.loads(artifact.raw)
        body["subject"] = image.top.descriptor()
        body["artifactType"] = kind
        artifact = images.Manifest(images.OCI_MANIFEST, json.dumps(body).encode())
        images.push(
            source_registry.url, images.Image(image.repository, None, artifact, blobs=blobs)
        )
        referrers.append(artifact.descriptor(artifactType=kind))
    index = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": referrers}
    hub.add("GET", f"/referrers/{image.digest}", "serve", times=5,
            headers={"Content-Type": INDEX_TYPE}, body=json.dumps(index).encode())  # fmt: skip
    source, destination = _refs(image, dest_registry)
    result = _copy_one(hub.url, dest_registry, source, destination)
    assert result.status == "copied", result.error
    stem = image.digest.replace(":", "-")
    wanted = [(f"{stem}.sig", image.tagged[f"{stem}.sig"])]
    wanted += [(str(r["digest"]), None) for r in referrers]
    for ident, manifest in wanted:
        stored = httpx.head(
            f"{dest_registry.url}/v2/{destination.repository}/manifests/{ident}",
            headers={"Accept": images.OCI_MANIFEST},
        )
        assert stored.status_code == 200, ident
        if manifest is not None:
            assert stored.headers["Docker-Content-Digest"] == manifest.digest
    for referrer in referrers:
        verify_image(dest_registry.url, destination.repository, str(referrer["digest"]))


@pytest.mark.parametrize("later", ["lacks it", "fails"])
def test_a_later_endpoint_that_cannot_answer_does_not_stop_the_first(
    source_registry: Registry, dest_registry: Registry, mirror: FaultProxy, hub: FaultProxy,
    caplog: pytest.LogCaptureFixture, later: str,
) -> None:  # fmt: skip
    image = images.single_image(unique("library/first-serves"), "1", seed=19190)
    images.push(source_registry.url, image)
    if later == "lacks it":
        hub.add("HEAD", "/manifests/1$", "serve", status=404, times=10)
    else:
        hub.add("HEAD", "/manifests/1$", "serve", status=500, times=100)
    source, destination = _refs(image, dest_registry)
    with caplog.at_level(logging.INFO, logger="armirror"):
        result = _copy_one((mirror.url, hub.url), dest_registry, source, destination)
    assert result.status == "copied", result.error
    assert result.endpoint == mirror.url
    compared = [r.getMessage() for r in caplog.records if "could not compare" in r.getMessage()]
    if later == "fails":
        (message,) = compared
        assert message.startswith(f"{source}: could not compare with {hub.url}: ")
        assert "answered 500" in message
    else:
        assert compared == []
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_content_type_with_parameters_is_read_by_its_type(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    image = images.multi_arch_image(unique("library/typed"), "1", seed=19200, attestations=False)
    images.push(source_registry.url, image)
    # An index needs 2 pulls: known from its type before anything is spent.
    hub.add("HEAD", "/manifests/1$", "headers", times=10, headers={
        "Content-Type": f"{image.top.media_type}; charset=utf-8",
        "ratelimit-limit": "100;w=21600", "ratelimit-remaining": "1;w=21600"})  # fmt: skip
    _remaining(hub, 1)
    source, destination = _refs(image, dest_registry)
    result = _copy_one(hub.url, dest_registry, source, destination)
    assert result.rate_limited, result.error
    assert _source_gets(hub) == 0


@pytest.mark.parametrize("status", [200, 202])
def test_a_manifest_push_accepted_with_200_or_202(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy, status: int
) -> None:
    image, source, destination = _image_and_refs(source_registry, dest_registry, "accepted", 19210)
    dest_proxy.add("PUT", "/manifests/1$", "serve", status=status, times=1,
                   headers={"Docker-Content-Digest": image.digest})  # fmt: skip
    result = _copy_through(source_registry.url, dest_registry, dest_proxy.url, source, destination)
    assert result.status == "copied", result.error


class StillDeadline(Deadline):
    """A deadline whose time left does not move: ``at`` is the seconds left."""

    def left(self) -> float:
        return self.at


@pytest.mark.parametrize(("left", "copied"), [(0.5, True), (0.0, False)])
def test_a_transfer_starts_while_any_time_is_left(
    source_registry: Registry, dest_registry: Registry, left: float, copied: bool
) -> None:
    _, source, destination = _image_and_refs(source_registry, dest_registry, "time-left", 19220)
    result = _copy_through(
        source_registry.url, dest_registry, dest_registry.url, source, destination,
        deadline=StillDeadline(left),
    )  # fmt: skip
    assert (result.status == "copied") is copied, result.error
    assert result.retryable is not copied


def test_large_blobs_go_whole_without_a_place_to_record_sessions(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    image, source, destination = _image_and_refs(source_registry, dest_registry, "no-sess", 19230)
    result = _copy_through(
        source_registry.url, dest_registry, dest_proxy.url, source, destination,
        resumable_min_size=1,
    )  # fmt: skip
    assert result.status == "copied", result.error
    assert dest_proxy.arrived("PATCH", UPLOADS) == []
    assert len(dest_proxy.arrived("PUT", UPLOADS)) == len(image.all_blobs())


def test_an_upload_holding_every_byte_is_only_finished(
    source_registry: Registry, dest_registry: Registry
) -> None:
    """An attempt stopped after its last chunk but before the closing PUT: the next one
    sends nothing but that PUT."""
    image = images.single_image(unique("library/all-held"), "1", seed=19240, layer_sizes=(200_000,))
    images.push(source_registry.url, image)
    layer = next(b for b in image.blobs if b.size == 200_000)
    source, destination = _refs(image, dest_registry)
    location = _partial_upload(dest_registry.url, destination.repository, b"".join(layer.chunks()))
    sessions = MemoryUploadSessions()
    key = f"{dest_registry.url}/{destination.repository}"
    sessions.save_upload_session(key, layer.digest, location, layer.size)
    result = _copy_through(
        source_registry.url, dest_registry, dest_registry.url, source, destination,
        sessions=sessions, resumable_min_size=layer.size,
    )  # fmt: skip
    assert result.status == "copied", result.error
    assert result.bytes_copied == sum(b.size for b in image.all_blobs()) - layer.size
    assert sessions.upload_session(key, layer.digest) is None
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_closing_put_that_fails_once_is_sent_again(
    source_registry: Registry, dest_registry: Registry, dest_proxy: FaultProxy
) -> None:
    """Every chunk went up, then the PUT closing the upload got a 503: the next attempt
    finds every byte there and only closes it.  It asked the source for the bytes after
    the blob's end instead, every attempt failed, and the blob could never be finished."""
    image = images.single_image(unique("library/close-again"), "1", seed=19250,
                                layer_sizes=(200_000,))  # fmt: skip
    images.push(source_registry.url, image)
    layer = next(b for b in image.blobs if b.size == 200_000)
    source, destination = _refs(image, dest_registry)
    dest_proxy.add("PUT", rf"{UPLOADS}.*digest={layer.digest.replace(':', '%3A')}", "503")
    sessions = MemoryUploadSessions()
    result = _copy_through(
        source_registry.url, dest_registry, dest_proxy.url, source, destination,
        sessions=sessions, resumable_min_size=layer.size,
    )  # fmt: skip
    assert result.status == "copied", result.error
    assert dest_proxy.count("PUT", UPLOADS, "503") == 1
    assert len(dest_proxy.arrived("PATCH", UPLOADS)) == 1  # the bytes went up once
    verify_image(dest_registry.url, destination.repository, image.digest)


def test_a_corrupt_chunked_blob_is_never_closed(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy, dest_proxy: FaultProxy
) -> None:
    """Read from its start, a chunked blob is hashed on the way: bytes that do not match
    its digest are not offered to the registry as the blob (no closing PUT)."""
    image = images.single_image(unique("library/corrupt-chunks"), "1", seed=19260,
                                layer_sizes=(200_000,))  # fmt: skip
    images.push(source_registry.url, image)
    layer = next(b for b in image.blobs if b.size == 200_000)
    hub.add("GET", f"/blobs/{layer.digest}$", "corrupt", times=1)
    source, destination = _refs(image, dest_registry)
    result = _copy_through(
        hub.url, dest_registry, dest_proxy.url, source, destination,
        sessions=MemoryUploadSessions(), resumable_min_size=layer.size,
    )  # fmt: skip
    assert result.status == "copied", result.error
    closing = dest_proxy.arrived("PUT", rf"{UPLOADS}.*digest={layer.digest.replace(':', '%3A')}")
    assert len(closing) == 1  # only the good attempt's
    assert len(dest_proxy.arrived("DELETE", UPLOADS)) == 1  # the bad one was cancelled
    verify_image(dest_registry.url, destination.repository, image.digest)
