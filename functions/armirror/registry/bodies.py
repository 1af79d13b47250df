"""Reading a registry's answer with a cap, so no answer can take unbounded memory.

Manifests are capped at 4 MiB, distribution's own limit for a manifest it accepts
(``maxManifestBodySize`` in distribution's manifest handler); an error body is read up
to 64 KiB and the rest dropped; a token server's answer up to 1 MiB (issue 12 §7).
"""

from __future__ import annotations

import httpx

from armirror.registry.errors import MAX_ERROR_BODY, MalformedAnswer
from armirror.registry.redact import scrub

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
#: Headers that describe the bytes on the wire, not the decoded body kept.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _where(response: httpx.Response) -> str:
    return scrub(response.request.url.netloc.decode(errors="replace"), 100)


async def read_bounded(response: httpx.Response, limit: int) -> bytes:
    """A streamed response's whole body, or MalformedAnswer when it is over ``limit``."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        await response.aclose()
        raise MalformedAnswer(f"{_where(response)} answered {declared} bytes, over {limit}")
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            await response.aclose()
            raise MalformedAnswer(f"{_where(response)} answered more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_prefix(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of a streamed response's body; the rest is not read."""
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk[: limit - size])
        size += len(chunks[-1])
        if size >= limit:
            break
    await response.aclose()
    return b"".join(chunks)


def answer_with(
    response: httpx.Response, body: bytes, *, keep_length: bool = False
) -> httpx.Response:
    """A complete response: ``response``'s status and headers with the ``body`` read
    (``keep_length`` for a HEAD, whose Content-Length describes what a GET would get)."""
    dropped = _WIRE_HEADERS - ({"content-length"} if keep_length else set())
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in dropped]
    return httpx.Response(
        response.status_code, headers=headers, content=body, request=response.request
    )


async def send_bounded(
    client: httpx.AsyncClient,
    method: str,
    path: str | httpx.URL,
    headers: dict[str, str] | None,
    content: bytes | None,
    params: dict[str, str] | None,
    ok: tuple[int, ...],
    max_body: int,
) -> httpx.Response:
    """One request; its answer read whole up to ``max_body`` when wanted (``ok``), an
    error's up to 64 KiB, a HEAD's not at all."""
    request = client.build_request(method, path, headers=headers, content=content, params=params)
    response = await client.send(request, stream=True)
    if method == "HEAD":  # no body; its Content-Length describes the object
        await response.aread()  # nothing to read, but the connection goes back to the pool
        return answer_with(response, b"", keep_length=True)
    try:
        if response.status_code in ok:
            body = await read_bounded(response, max_body)
        else:
            body = await read_prefix(response, MAX_ERROR_BODY)
    finally:
        await response.aclose()
    return answer_with(response, body)
