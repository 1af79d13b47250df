"""Blob uploads that outlast a task: sent in chunks, recorded, resumed.

Cloud Tasks gives a copy at most 30 minutes, and a multi-GB layer from a slow upstream
can need longer.  So a large blob is uploaded in chunks (the distribution API's
``PATCH`` with ``Content-Range``), and after each chunk the upload's location and
offset are recorded (:class:`UploadSessions`, the store in the pipeline).  The next
attempt asks the registry where that upload stands (``GET`` on its location answers
``Range: 0-N``), GETs the rest of the blob from the source with ``Range: bytes=N+1-``,
sends it, and finishes with the digest, which the registry checks.

A chunk is never cut short on purpose: distribution cancels an upload whose last
``PATCH`` ended early ("upload resumed at wrong offset", answered BLOB_UPLOAD_INVALID;
tried against docker-registry 2.8), which would lose every byte before it.  So before
each chunk the transfer checks the :class:`Deadline`, and sizes the chunk to what the
link has shown it can move in the time left; when not even the smallest chunk fits, it
stops with :class:`DeadlineReached`, and the caller answers "try again".
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import httpx

from armirror.registry.errors import DigestMismatch, TransientError

#: Blobs at least this large go up in recorded chunks (when sessions are kept at all).
RESUMABLE_MIN_SIZE = 64 * 1024 * 1024
MIN_CHUNK = 8 * 1024 * 1024
MAX_CHUNK = 256 * 1024 * 1024
#: A chunk is planned to take at most this share of the time left before the deadline.
CHUNK_SHARE_OF_TIME_LEFT = 0.5
#: Answers to a first PATCH that mean "not this way": send the blob whole instead.
_REFUSALS = frozenset({400, 405, 415, 416, 501})
_RANGE = re.compile(r"^(?:bytes=)?(\d+)-(\d+)$")


@runtime_checkable
class UploadSessions(Protocol):
    """Where an unfinished upload's location and offset are kept, by destination and
    digest.  ``destination`` is the endpoint and repository (``https://host/repo``)."""

    def upload_session(self, destination: str, digest: str) -> tuple[str, int] | None: ...
    def save_upload_session(
        self, destination: str, digest: str, location: str, offset: int
    ) -> None: ...
    def forget_upload_session(self, destination: str, digest: str) -> None: ...


class MemoryUploadSessions:
    """Upload sessions for one process (tests, and runs without a store)."""

    def __init__(self) -> None:
        self._sessions: dict[tuple[str, str], tuple[str, int]] = {}
        self._lock = threading.Lock()

    def upload_session(self, destination: str, digest: str) -> tuple[str, int] | None:
        with self._lock:
            return self._sessions.get((destination, digest))

    def save_upload_session(
        self, destination: str, digest: str, location: str, offset: int
    ) -> None:
        with self._lock:
            self._sessions[(destination, digest)] = (location, offset)

    def forget_upload_session(self, destination: str, digest: str) -> None:
        with self._lock:
            self._sessions.pop((destination, digest), None)


@dataclass(frozen=True)
class Deadline:
    """When a copy must have stopped (``time.monotonic()`` seconds).  ``reserve`` is kept
    back for what follows the transfers: pushing manifests, recording the result."""

    at: float
    reserve: float = 0.0

    @classmethod
    def within(cls, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now, keeping back a fifth of it (at most a minute)."""
        if not seconds > 0:
            raise ValueError(f"a deadline must be in the future, got {seconds}")
        return cls(time.monotonic() + seconds, reserve=min(60.0, seconds / 5))

    def left(self) -> float:
        """Seconds still available for transfers (negative when past)."""
        return self.at - self.reserve - time.monotonic()


class DeadlineReached(TransientError):
    """A copy stopped before its deadline; what it moved is recorded, the next attempt
    goes on from there."""


class ChunkedUploadRefused(Exception):
    """The destination does not take chunked uploads (it refused the first ``PATCH``)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"chunked upload refused with {status}")
        self.status = status


def upload_offset(range_header: str | None) -> int | None:
    """Bytes an upload holds, from its ``Range: 0-N`` header (N+1); None if unreadable.

    distribution answers ``0-0`` for a new, empty upload as well as for one byte; both
    read as 0 here when nothing has been sent (the caller knows which).
    """
    match = _RANGE.match((range_header or "").strip())
    if not match or int(match.group(1)) != 0:
        return None
    return int(match.group(2)) + 1


@dataclass
class ChunkPlanner:
    """How large the next chunk may be: what the link moved per second so far, times
    half the time left, within [MIN_CHUNK, MAX_CHUNK].  None when not even MIN_CHUNK
    (or the rest of the blob, if smaller) is expected to finish in time."""

    deadline: Deadline | None
    rate: float | None = None  # bytes per second, measured
    _samples: list[tuple[int, float]] = field(default_factory=list)

    def next(self, remaining: int) -> int | None:
        size = min(remaining, MAX_CHUNK)
        if self.deadline is None:
            return size
        left = self.deadline.left()
        if left <= 0:
            return None
        if self.rate is None:
            return min(size, MIN_CHUNK)  # nothing measured yet: a small first chunk
        affordable = int(self.rate * left * CHUNK_SHARE_OF_TIME_LEFT)
        smallest = min(remaining, MIN_CHUNK)
        if affordable < smallest:
            return None
        return min(size, affordable)

    def observe(self, nbytes: int, seconds: float) -> None:
        self._samples.append((nbytes, max(seconds, 1e-6)))
        recent = self._samples[-4:]
        self.rate = sum(n for n, _ in recent) / sum(s for _, s in recent)


class ExactReader:
    """Hands out exactly ``n`` bytes at a time from an iterator of arbitrary chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def take(self, n: int) -> Iterator[bytes]:
        """Yield pieces adding up to ``n`` bytes; a source that ends early is an error."""
        left = n
        while left:
            if not self._pending:
                try:
                    self._pending = next(self._chunks)
                except StopIteration:
                    raise TransientError(
                        f"the source ended {left} bytes before the blob did"
                    ) from None
                continue
            piece, self._pending = self._pending[:left], self._pending[left:]
            left -= len(piece)
            yield piece

    def skip(self, n: int) -> None:
        for _ in self.take(n):
            pass


@dataclass
class ChunkedUpload:
    """One attempt at the rest of an upload: from ``offset`` to the blob's end.

    Runs in a blob transfer thread on the synchronous client.  ``record(location,
    offset)`` is called after every acknowledged chunk.  Returns when every byte is
    acknowledged; the caller then sends the final ``PUT ?digest=``.
    """

    client: httpx.Client
    digest: str
    size: int
    download: tuple[httpx.URL, str | None]  # URL and Authorization header
    upload: tuple[httpx.URL, str | None]  # the session's current location
    offset: int
    deadline: Deadline | None
    record: Callable[[str, int], None]
    on_bytes: Callable[[int], None] | None = None
    error_for: Callable[[httpx.Response, str], Exception] | None = None
    moved: int = 0
    hex_digest: str | None = None  # set when the whole blob went through this attempt

    def run(self) -> httpx.URL:
        if self.offset and self.offset >= self.size:
            # Every byte is there already (an attempt stopped before its closing PUT):
            # nothing to read, and a source asked for the bytes after the end answers
            # 416, or worse.  The registry checks the digest when the upload is closed.
            return self.upload[0]
        planner = ChunkPlanner(self.deadline)
        headers = self._auth(self.download[1])
        if self.offset:
            headers["Range"] = f"bytes={self.offset}-"
        with self.client.stream("GET", self.download[0], headers=headers) as response:
            reader = ExactReader(response.iter_raw())
            if response.status_code == 206:
                if not response.headers.get("Content-Range", "").startswith(
                    f"bytes {self.offset}-"
                ):
                    raise TransientError(
                        f"blob {self.digest}: the source answered another range than asked"
                    )
            elif response.status_code == 200:
                reader.skip(self.offset)  # a source without ranges: read past what is sent
            else:
                response.read()
                raise self._error(response, f"download blob {self.digest}")
            hasher = hashlib.sha256() if self.offset == 0 else None
            location = self.upload[0]
            while self.offset < self.size:
                chunk = planner.next(self.size - self.offset)
                if chunk is None:
                    raise DeadlineReached(
                        f"blob {self.digest}: stopped before the deadline with "
                        f"{self.offset} of {self.size} bytes sent; the next attempt resumes"
                    )
                started = time.monotonic()
                location = self._patch(location, reader.take(chunk), chunk, hasher)
                planner.observe(chunk, time.monotonic() - started)
                self.offset += chunk
                self.moved += chunk
                self.record(str(location), self.offset)
        if hasher is not None:
            self.hex_digest = "sha256:" + hasher.hexdigest()
            if self.digest.startswith("sha256:") and self.hex_digest != self.digest:
                raise DigestMismatch(f"blob {self.digest}: content does not match its digest")
        return location

    def _patch(
        self,
        location: httpx.URL,
        pieces: Iterator[bytes],
        size: int,
        hasher: hashlib._Hash | None,
    ) -> httpx.URL:
        def body() -> Iterator[bytes]:
            for piece in pieces:
                if hasher is not None:
                    hasher.update(piece)
                if self.on_bytes:
                    self.on_bytes(len(piece))
                yield piece

        end = self.offset + size - 1
        headers = self._auth(self.upload[1])
        headers.update(
            {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{self.offset}-{end}",
                "Content-Length": str(size),
            }
        )
        response = self.client.patch(location, content=body(), headers=headers)
        if response.status_code != 202:
            if self.offset == 0 and response.status_code in _REFUSALS:
                raise ChunkedUploadRefused(response.status_code)
            raise self._error(response, f"upload chunk of blob {self.digest}")
        acknowledged = upload_offset(response.headers.get("Range"))
        if acknowledged is not None and acknowledged != end + 1:
            raise TransientError(
                f"blob {self.digest}: the destination holds {acknowledged} bytes "
                f"after a chunk that should have made {end + 1}"
            )
        next_location = response.headers.get("Location")
        return location.join(next_location) if next_location else location

    @staticmethod
    def _auth(header: str | None) -> dict[str, str]:
        return {"Authorization": header} if header else {}

    def _error(self, response: httpx.Response, what: str) -> Exception:
        if self.error_for is not None:
            return self.error_for(response, what)
        return TransientError(f"{what}: answered {response.status_code}")
