"""Synthetic but well-formed images, pushed to a local registry with raw HTTP.

The demo, the tests and the benchmarks seed their "Docker Hub" from here.  Layers are
deterministic pseudo-random bytes (a seed and a size), so a 1 GiB layer never has to be
held in memory; manifests can be Docker or OCI, single-platform or multi-arch with
attestation manifests, odd JSON whitespace, and carry cosign-style signature tags.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from urllib.parse import urljoin

import httpx

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    """A blob given by content, or by (seed, size) for large generated layers."""

    media_type: str
    size: int
    digest: str
    content: bytes | None = None
    seed: int | None = None

    def chunks(self) -> Iterator[bytes]:
        if self.content is not None:
            yield self.content
            return
        rng = random.Random(self.seed)
        remaining = self.size
        while remaining:
            n = min(CHUNK, remaining)
            yield rng.randbytes(n)
            remaining -= n

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "size": self.size, "digest": self.digest}


def blob_from_bytes(content: bytes, media_type: str) -> Blob:
    return Blob(media_type, len(content), "sha256:" + hashlib.sha256(content).hexdigest(), content)


def generated_layer(seed: int, size: int, media_type: str = OCI_LAYER) -> Blob:
    """A layer of ``size`` pseudo-random bytes; its digest is computed by streaming."""
    h = hashlib.sha256()
    probe = Blob(media_type, size, "", seed=seed)
    for chunk in probe.chunks():
        h.update(chunk)
    return Blob(media_type, size, "sha256:" + h.hexdigest(), seed=seed)


@dataclass(frozen=True)
class Manifest:
    media_type: str
    raw: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.raw).hexdigest()

    def descriptor(self, **extra: object) -> dict[str, object]:
        return {"mediaType": self.media_type, "size": len(self.raw), "digest": self.digest, **extra}


@dataclass
class Image:
    """Everything one image needs in a repository: blobs, child manifests, the top manifest."""

    repository: str
    tag: str | None
    top: Manifest
    children: list[Manifest] = field(default_factory=list)
    blobs: list[Blob] = field(default_factory=list)
    tagged: dict[str, Manifest] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.top.digest

    def all_blobs(self) -> list[Blob]:
        unique: dict[str, Blob] = {}
        for blob in self.blobs:
            unique.setdefault(blob.digest, blob)
        return list(unique.values())


def _config(seed: int, os_: str, arch: str, layers: list[Blob], oci: bool) -> Blob:
    body = {
        "architecture": arch,
        "os": os_,
        "config": {"Env": [f"SEED={seed}"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in layers]},
    }
    return blob_from_bytes(
        json.dumps(body, sort_keys=True).encode(), OCI_CONFIG if oci else DOCKER_CONFIG
    )


def manifest_for(
    layers: list[Blob],
    *,
    oci: bool,
    seed: int,
    os_: str = "linux",
    arch: str = "amd64",
    odd_whitespace: bool = False,
    annotations: dict[str, str] | None = None,
) -> tuple[Manifest, list[Blob]]:
    config = _config(seed, os_, arch, layers, oci)
    media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    body: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    if annotations:
        body["annotations"] = annotations
    if odd_whitespace:
        raw = json.dumps(body, indent="\t", separators=(" ,", " :  ")).encode() + b"\r\n\n"
    else:
        raw = json.dumps(body, indent=3).encode()
    return Manifest(media_type, raw), [config, *layers]


def single_image(
    repository: str,
    tag: str,
    *,
    seed: int,
    layer_sizes: tuple[int, ...] = (4096, 65536),
    shared: list[Blob] | None = None,
    oci: bool = False,
    odd_whitespace: bool = False,
) -> Image:
    """A one-platform image; ``shared`` layers come first, as base layers do."""
    media = OCI_LAYER if oci else DOCKER_LAYER
    own = [generated_layer(seed * 1000 + i, size, media) for i, size in enumerate(layer_sizes)]
    base = [replace(layer, media_type=media) for layer in shared or []]
    manifest, blobs = manifest_for([*base, *own], oci=oci, seed=seed, odd_whitespace=odd_whitespace)
    return Image(repository, tag, manifest, blobs=blobs)


def multi_arch_image(
    repository: str,
    tag: str,
    *,
    seed: int,
    platforms: tuple[str, ...] = ("linux/amd64", "linux/arm64"),
    layer_sizes: tuple[int, ...] = (4096, 65536),
    shared: list[Blob] | None = None,
    oci: bool = True,
    attestations: bool = True,
) -> Image:
    """An index (OCI) or manifest list (Docker) with one manifest per platform.

    With ``attestations`` each platform also gets a buildx-style attestation manifest
    (platform unknown/unknown, ``vnd.docker.reference.digest`` annotation).
    """
    media = OCI_LAYER if oci else DOCKER_LAYER
    base = [replace(layer, media_type=media) for layer in shared or []]
    children: list[Manifest] = []
    entries: list[dict[str, object]] = []
    blobs: list[Blob] = []
    for index, platform in enumerate(platforms):
        os_, arch = platform.split("/")[:2]
        own = [
            generated_layer(seed * 1000 + index * 10 + i, size, media)
            for i, size in enumerate(layer_sizes)
        ]
        manifest, manifest_blobs = manifest_for(
            [*base, *own], oci=oci, seed=seed * 10 + index, os_=os_, arch=arch
        )
        children.append(manifest)
        blobs += manifest_blobs
        entries.append(manifest.descriptor(platform={"architecture": arch, "os": os_}))
        if attestations and oci:
            statement = blob_from_bytes(
                json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "seed": seed}).encode(),
                "application/vnd.in-toto+json",
            )
            attestation, att_blobs = manifest_for([statement], oci=True, seed=seed * 100 + index)
            children.append(attestation)
            blobs += att_blobs
            entries.append(
                attestation.descriptor(
                    platform={"architecture": "unknown", "os": "unknown"},
                    annotations={
                        "vnd.docker.reference.digest": manifest.digest,
                        "vnd.docker.reference.type": "attestation-manifest",
                    },
                )
            )
    index_type = OCI_INDEX if oci else DOCKER_LIST
    raw = json.dumps(
        {"schemaVersion": 2, "mediaType": index_type, "manifests": entries}, indent=2
    ).encode()
    return Image(repository, tag, Manifest(index_type, raw), children=children, blobs=blobs)


def sign(
    image: Image, *, seed: int, kinds: tuple[str, ...] = ("sig",), platforms: bool = False
) -> Image:
    """Add cosign-style ``sha256-<hex>.sig`` (or .att/.sbom) tags for the image's digest,
    and with ``platforms`` for each child manifest's digest too (``cosign sign
    --recursive``)."""
    digests = [image.digest] + ([child.digest for child in image.children] if platforms else [])
    for number, digest in enumerate(digests):
        for kind in kinds:
            payload = blob_from_bytes(
                json.dumps(
                    {"critical": {"image": {"docker-manifest-digest": digest}}, "kind": kind}
                ).encode(),
                "application/vnd.dev.cosign.simplesigning.v1+json",
            )
            manifest, blobs = manifest_for(
                [payload],
                oci=True,
                seed=seed + 10 * number + len(kind),
                annotations={"dev.cosignproject.cosign/signature": f"MEUCIQ{seed}{number}{kind}"},
            )
            image.tagged[f"{digest.replace(':', '-')}.{kind}"] = manifest
            image.blobs += blobs
    return image


def push(registry_url: str, image: Image, *, auth: httpx.Auth | None = None) -> str:
    """Push an image with plain monolithic uploads; returns its top manifest digest."""
    with httpx.Client(base_url=registry_url, auth=auth, timeout=120) as client:
        repo = image.repository
        for blob in image.all_blobs():
            if client.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 200:
                continue
            started = client.post(f"/v2/{repo}/blobs/uploads/")
            started.raise_for_status()
            location = urljoin(registry_url + "/", started.headers["Location"])
            sep = "&" if "?" in location else "?"
            done = client.put(
                f"{location}{sep}digest={blob.digest}",
                content=blob.chunks(),
                headers={"Content-Type": "application/octet-stream"},
            )
            done.raise_for_status()
        for child in image.children:
            _put_manifest(client, repo, child.digest, child)
        _put_manifest(client, repo, image.tag or image.digest, image.top)
        for tag, manifest in image.tagged.items():
            _put_manifest(client, repo, tag, manifest)
    return image.digest


def _put_manifest(client: httpx.Client, repo: str, reference: str, manifest: Manifest) -> None:
    response = client.put(
        f"/v2/{repo}/manifests/{reference}",
        content=manifest.raw,
        headers={"Content-Type": manifest.media_type},
    )
    if response.status_code >= 400:
        raise RuntimeError(
            f"push {repo}:{reference} failed: {response.status_code} {response.text}"
        )
