"""Blobs streamed whole, and what a registry's answers may not steer, against real
docker-registry servers and the fault proxy, in process: the GET and the PUT of a
blob (its headers, one GET per blob, a 204 taken), a source answer without a length, a
blob the source lacks or sends long, credentials for an endpoint first reached for a
blob, the token the manifests earned, a digest header that is no digest, and a digest
algorithm armirror cannot hash.

Requests are counted by their arrival at the fault proxy (recorded before it answers).
"""

from __future__ import annotations

import asyncio
import hashlib
import json

import httpx
import pytest
from armirror.reference import Reference, destination_for, parse
from armirror.registry import CopyResult, RegistryClient
from armirror.registry.copy import Copier
from faultproxy import FaultProxy
from registry_checks import credentials, fast_retry, unique, verify_image
from standins import images
from standins.images import OCI_MANIFEST
from standins.registry import Registry
from transfer_support import (
    DENIED,
    JSON,
    UPLOADS,
    blob_path,
    copy_client,
    layered_image,
    mirror_refs,
)  # fmt: skip

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
    source_url: str, dest_registry: Registry, image: images.Image,
    dest_proxy: FaultProxy | None = None,
) -> tuple[CopyResult, Reference]:  # fmt: skip
    """Copy ``image`` from ``source_url`` in one attempt, every blob streamed whole, to
    the destination (behind ``dest_proxy`` when one is given)."""
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
        result, destination = _stream_once(source_proxy.url, dest_registry, image, dest_proxy)
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


@pytest.mark.parametrize("status", [404, 403])
def test_a_blob_no_endpoint_will_give_names_the_last_one_asked(
    source_registry: Registry, dest_registry: Registry, status: int
) -> None:
    """docker.io is a mirror that lost a layer, then an endpoint that has no such blob
    either (404) or refuses it (403): the failed copy names the blob and that endpoint's
    answer to the HEAD that asked for it."""
    image, layer = layered_image(source_registry, f"no-endpoint-{status}", 19660 + status)
    source, destination = mirror_refs(image, dest_registry.host)
    with FaultProxy(source_registry.url) as mirror, FaultProxy(source_registry.url) as later:
        for method in ("HEAD", "GET"):
            mirror.add(method, blob_path(layer.digest), "serve", status=404, times=100)
            later.add(method, blob_path(layer.digest), "serve", status=status, times=100,
                      body=DENIED if status == 403 else b"", headers=JSON)  # fmt: skip

        async def main() -> CopyResult:
            async with RegistryClient(
                upstreams={"docker.io": [mirror.url, later.url],
                           dest_registry.host: dest_registry.url},
                credentials=credentials({"docker.io": ("armirror", "s3cret")}),
                allow_private_hosts=True, retry=fast_retry(1),
            ) as client:  # fmt: skip
                return await Copier(client).copy(source, destination)

        result = asyncio.run(asyncio.wait_for(main(), timeout=60))
        later_url = later.url
    assert result.status == "failed"
    assert result.error is not None
    if status == 404:
        assert f"blob {layer.digest}: not found at {later_url}" in result.error
    else:
        # The endpoint is one of docker.io's, so docker.io's credentials went with it.
        assert result.error.startswith(
            f"HEAD blob {layer.digest} in {source.name}: docker.io refused the credentials given"
        )
