"""Request bodies from outside, read with a cap and parsed with a depth limit.

Anyone who can reach a function can post to it.  A body over the cap is refused with
413 whether it declares its length or arrives chunked (issue 12 §7: ``serve`` once cut
chunked bodies at 10 MiB and answered 204); JSON that does not parse, or nests deeper
than any real request does, is refused with 400 instead of a 500 from the parser's
recursion limit.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

#: request_copy and copy_image bodies are a list of references or one task: small.
MAX_REQUEST_BYTES = 64 * 1024
#: A Pub/Sub push of one log entry (Pub/Sub's own limit is 10 MB).
MAX_EVENT_BYTES = 10 * 1024 * 1024
#: Deeper than any request armirror takes ({"images": [...]} is 2).
MAX_JSON_DEPTH = 32
_READ_CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """The body is over the cap (HTTP 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


class BadJson(ValueError):
    """The body is not JSON, or nests too deeply (HTTP 400)."""


class _Stream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Request(Protocol):
    """What armirror needs of a Flask/Werkzeug request (serve and functions-framework)."""

    @property
    def content_length(self) -> int | None: ...

    @property
    def stream(self) -> _Stream: ...


def read_body(request: _Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes; BodyTooLarge beyond, declared or not."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = request.stream.read(min(_READ_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)


def parse_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``body`` as JSON; BadJson when it is not JSON or nests deeper than ``max_depth``."""
    try:
        value = json.loads(body)
    except RecursionError:
        raise BadJson(f"body nests deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise BadJson(f"body is not JSON: {str(exc)[:100]}") from None
    if depth(value, max_depth) > max_depth:
        raise BadJson(f"body nests deeper than {max_depth} levels")
    return value


def depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests (a scalar is 0), counting no further than ``limit + 1``."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > limit:
            return deepest
        pending.extend((child, level + 1) for child in children)
    return deepest
