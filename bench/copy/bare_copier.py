"""The yardstick: a bare parallel copier with raw HTTP, mounts for shared blobs, no checks.

It does the least work a copier could do (no HEADs, no digest checks, no retries, no
auth) and moves bytes on blocking sockets in threads, which costs the least CPU in
Python; so it shows what the two local registries can physically sustain here.

With ``--verify`` it also hashes every blob on the way and checks it against its
digest, as the issue asks of armirror: the limit for a copier that verifies.

    python bench/copy/bare_copier.py [--verify] SRC_URL DST_URL PREFIX JOBS REPO:TAG...
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def verified(chunks: Iterator[bytes], digest: str) -> Iterator[bytes]:
    """The chunks, hashed on the way; raises at the end when they do not match."""
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk)
        yield chunk
    if f"sha256:{hasher.hexdigest()}" != digest:
        raise ValueError(f"{digest}: content does not match")


def main(
    src_url: str, dst_url: str, prefix: str, jobs: int, images: list[str], verify: bool
) -> None:
    limits = httpx.Limits(max_connections=jobs * 2)
    src = httpx.Client(base_url=src_url, limits=limits, timeout=120)
    dst = httpx.Client(base_url=dst_url, limits=limits, timeout=120)
    homes: dict[str, threading.Event] = {}
    holder: dict[str, str] = {}
    lock = threading.Lock()

    def blob(repo: str, target: str, digest: str) -> None:
        with lock:
            first = digest not in homes
            if first:
                homes[digest] = threading.Event()
        if not first:
            homes[digest].wait()
            dst.post(f"/v2/{target}/blobs/uploads/?mount={digest}&from={holder[digest]}")
            return
        start = dst.post(f"/v2/{target}/blobs/uploads/")
        url = httpx.URL(dst_url + "/").join(start.headers["Location"])
        with src.stream("GET", f"/v2/{repo}/blobs/{digest}") as down:
            dst.put(
                url.copy_merge_params({"digest": digest}),
                content=verified(down.iter_raw(), digest) if verify else down.iter_raw(),
                headers={"Content-Length": down.headers["Content-Length"]},
            )
        holder[digest] = target
        homes[digest].set()

    def manifest(repo: str, ref: str) -> httpx.Response:
        return src.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})

    def image(name: str) -> None:
        repo, tag = name.rsplit(":", 1)
        target = f"{prefix}/{repo}"
        top = manifest(repo, tag)
        children = [
            (c["digest"], manifest(repo, c["digest"])) for c in top.json().get("manifests", [])
        ]
        digests: list[str] = []
        for body in [top.json()] + [json.loads(c.content) for _, c in children]:
            if "config" in body:
                digests.append(body["config"]["digest"])
            digests += [layer["digest"] for layer in body.get("layers", [])]
        with ThreadPoolExecutor(jobs) as blobs:
            list(blobs.map(lambda d: blob(repo, target, d), dict.fromkeys(digests)))
        for digest, child in children:
            dst.put(
                f"/v2/{target}/manifests/{digest}",
                content=child.content,
                headers={"Content-Type": child.headers["Content-Type"]},
            )
        dst.put(
            f"/v2/{target}/manifests/{tag}",
            content=top.content,
            headers={"Content-Type": top.headers["Content-Type"]},
        )

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(image, images))


if __name__ == "__main__":
    args = [arg for arg in sys.argv[1:] if arg != "--verify"]
    main(args[0], args[1], args[2], int(args[3]), args[4:], "--verify" in sys.argv)
