"""The yardstick: a bare parallel copier with raw HTTP, mounts for shared blobs, no checks.

It does the least work a copier could do (no HEADs, no digest checks, no retries, no
auth) and moves bytes on blocking sockets in threads, which costs the least CPU in
Python; so it shows what the two local registries can physically sustain here.

    python bench/copy/bare_copier.py SRC_URL DST_URL PREFIX JOBS REPO:TAG...
"""

from __future__ import annotations

import json
import sys
import threading
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


def main(src_url: str, dst_url: str, prefix: str, jobs: int, images: list[str]) -> None:
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
                content=down.iter_raw(),
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
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:])
