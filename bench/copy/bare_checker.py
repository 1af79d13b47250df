"""The warm yardstick: the requests of an up-to-date check, and nothing else.

For each image it asks what armirror asks on a warm re-run (HEAD of the source
manifest, HEAD of the destination manifest, the source repository's tags/list) on the
standard library's http.client, one keep-alive connection per registry and thread, with
no auth, retries, parsing or output.  Its time is what the two local registries and
Python's start-up cost; a real client cannot do the same requests faster.

With ``--httpx`` it sends the same requests on httpx's AsyncClient instead, JOBS at a
time, and nothing more: what httpx itself costs for them, without armirror's code.
With ``--httpcore`` it sends them on httpcore's AsyncConnectionPool, the layer under
httpx: the least an asyncio client in the httpx family can cost.

    python bench/copy/bare_checker.py [--httpx|--httpcore] SRC_URL DST_URL PREFIX JOBS REPO:TAG...
"""

from __future__ import annotations

import http.client
import queue
import sys
import threading
from typing import Any
from urllib.parse import urlsplit

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def requests(
    src_url: str, dst_url: str, prefix: str, images: list[str]
) -> list[tuple[str, str, str]]:
    """(method, base URL, path) of every request, in the order armirror sends them."""
    found = []
    for name in images:
        repo, tag = name.rsplit(":", 1)
        found.append(("HEAD", src_url, f"/v2/{repo}/manifests/{tag}"))
        found.append(("HEAD", dst_url, f"/v2/{prefix}/{repo}/manifests/{tag}"))
        found.append(("GET", src_url, f"/v2/{repo}/tags/list"))
    return found


def on_asyncio(todo: list[tuple[str, str, str]], jobs: int, library: str) -> list[str]:
    """The requests, JOBS at a time, on httpx's AsyncClient or httpcore's pool alone."""
    import asyncio

    async def run() -> list[str]:
        failures: list[str] = []
        slots = asyncio.Semaphore(jobs)
        async with _async_client(library, jobs) as client:

            async def one(method: str, base: str, path: str) -> None:
                async with slots:
                    response = await client.request(method, base + path, headers={"Accept": ACCEPT})
                status = response.status_code if library == "httpx" else response.status
                if status != 200:
                    failures.append(f"{method} {base}{path}: {status}")

            await asyncio.gather(*(one(*request) for request in todo))
        return failures

    return asyncio.run(run())


def _async_client(library: str, jobs: int) -> Any:
    if library == "httpx":
        import httpx

        return httpx.AsyncClient()
    import httpcore

    return httpcore.AsyncConnectionPool(max_connections=2 * jobs)


def main(src_url: str, dst_url: str, prefix: str, jobs: int, images: list[str]) -> None:
    todo = requests(src_url, dst_url, prefix, images)
    for library in ("httpx", "httpcore"):
        if f"--{library}" not in sys.argv:
            continue
        failures = on_asyncio(todo, jobs, library)
        if failures:
            sys.exit("\n".join(failures[:10]))
        return
    work: queue.SimpleQueue[tuple[str, str, str]] = queue.SimpleQueue()
    for request in todo:
        work.put(request)
    failures = []

    def worker() -> None:
        connections: dict[str, http.client.HTTPConnection] = {}
        while True:
            try:
                method, base, path = work.get_nowait()
            except queue.Empty:
                return
            if base not in connections:
                parts = urlsplit(base)
                connections[base] = http.client.HTTPConnection(parts.hostname or "", parts.port)
            connection = connections[base]
            connection.request(method, path, headers={"Accept": ACCEPT})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures.append(f"{method} {base}{path}: {response.status}")

    threads = [threading.Thread(target=worker) for _ in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        sys.exit("\n".join(failures[:10]))


if __name__ == "__main__":
    args = [arg for arg in sys.argv[1:] if arg not in {"--httpx", "--httpcore"}]
    main(args[0], args[1], args[2], int(args[3]), args[4:])
