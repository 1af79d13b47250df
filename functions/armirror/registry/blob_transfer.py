"""Blob calls and the threaded transfer that streams a blob from source to destination.

Control requests (HEAD, the upload-start POST, mounts) go through the async session,
which also settles authentication for both sides; the bytes then flow in a worker
thread on a synchronous httpx client (see :meth:`BlobTransfer._stream_blob`).
A transfer is retried as a whole, and its inner requests do not retry themselves
(issue 13 §6): with 5 attempts, an upload start that keeps failing is sent 5 times.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from armirror.reference import Reference
from armirror.registry.errors import (
    DigestMismatch,
    NotFound,
    PermanentError,
    RegistryError,
    TransientError,
    error_for,
    transport_error,
)
from armirror.registry.manifest import Descriptor
from armirror.registry.pinned import tls_context
from armirror.registry.proxied import sync_transport
from armirror.registry.resumable import Deadline, DeadlineReached, UploadSessions
from armirror.registry.retry import NO_RETRY
from armirror.registry.session import RegistrySession


class SourceBlobMissing(NotFound):
    """The source endpoint does not have the blob (the next endpoint may)."""


class BlobTransfer(RegistrySession):
    """blob_exists, mount_blob and copy_blob, with a pool of transfer threads."""

    def __init__(
        self,
        *,
        blob_threads: int = 8,
        blob_transport: httpx.BaseTransport | None = None,
        **session: Any,
    ) -> None:
        if blob_threads < 1:
            raise ValueError(f"blob_threads must be at least 1, got {blob_threads}")
        super().__init__(**session)
        transport = session.get("transport")
        if blob_transport is None and isinstance(transport, httpx.BaseTransport):
            blob_transport = transport  # e.g. httpx.MockTransport serves both kinds
        self._blob_transport = blob_transport
        self._sync: httpx.Client | None = None
        self._blob_thread_count = blob_threads
        self._blob_threads = ThreadPoolExecutor(
            max_workers=blob_threads, thread_name_prefix="armirror-blob"
        )

    def _close_blob_threads(self) -> None:
        self._blob_threads.shutdown(wait=False, cancel_futures=True)
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def _source_auth(
        self, source: Reference, endpoint: str, digest: str, url: httpx.URL, *, probe: bool = False
    ) -> str | None:
        """The Authorization header for reading a blob in a transfer thread.  Usually
        earned already by the image's manifest requests; when the endpoint wants
        credentials and none are cached for this repository yet, a HEAD of the blob
        through the auth flow earns them.  ``probe`` makes that HEAD also for an
        endpoint that has not asked for credentials yet: a fall-through endpoint the
        image's manifests never reached (by digest, only the first endpoint that has
        the image is asked), whose first request may be the transfer's own GET."""
        auth = self.auth_for(source.registry, endpoint)
        header = auth.header_for("GET", url)
        if header is None and (auth.challenged or probe):
            try:
                await self.request(
                    source.registry,
                    "HEAD",
                    f"/v2/{source.repository}/blobs/{digest}",
                    what=f"HEAD blob {digest} in {source.name}",
                    endpoint=endpoint,
                )
            except NotFound:
                raise SourceBlobMissing(f"blob {digest}: not found at {endpoint}") from None
            header = auth.header_for("GET", url)
        return header

    async def blob_exists(self, ref: Reference, digest: str) -> bool:
        try:
            await self.request(
                ref.registry,
                "HEAD",
                f"/v2/{ref.repository}/blobs/{digest}",
                what=f"HEAD blob {digest} in {ref.name}",
            )
        except NotFound:
            return False
        return True

    async def mount_blob(self, ref: Reference, digest: str, from_repository: str) -> bool:
        """Cross-repository mount; False when the registry would rather take an upload."""
        response = await self.request(
            ref.registry,
            "POST",
            f"/v2/{ref.repository}/blobs/uploads/",
            what=f"mount {digest} into {ref.name}",
            ok=(201, 202),
            params={"mount": digest, "from": from_repository},
        )
        if response.status_code == 201:
            return True
        await self._cancel_upload(ref, response)
        return False

    async def _cancel_upload(self, ref: Reference, started: httpx.Response) -> None:
        location = started.headers.get("Location")
        if not location:
            return
        # Best effort: the registry purges abandoned uploads itself.
        with contextlib.suppress(httpx.HTTPError, RegistryError):
            await self._client(ref.registry).delete(location)

    async def copy_blob(
        self,
        source: Reference,
        destination: Reference,
        blob: Descriptor,
        on_bytes: Callable[[int], None] | None = None,
        *,
        source_endpoint: str | None = None,
        deadline: Deadline | None = None,
        sessions: UploadSessions | None = None,
    ) -> int:
        """Stream one blob from source to destination, retrying the whole transfer.

        ``on_bytes`` hears of every chunk as it goes (from a worker thread), for
        progress displays; a retried transfer reports its bytes again.  The blob is read
        from ``source_endpoint`` (default: the registry's first), and from the
        registry's later endpoints when one does not have it.  With ``sessions``, a
        large blob goes up in recorded chunks and resumes where an earlier attempt
        stopped; no transfer starts, and no chunk, that ``deadline`` would cut short.
        """
        endpoints = list(self.candidates(source.registry))
        first = source_endpoint or endpoints[0]
        endpoints = endpoints[endpoints.index(first) :] if first in endpoints else [first]
        for n, endpoint in enumerate(endpoints):
            try:
                if n:  # a fall-through endpoint: earn what it may want before any transfer
                    url = httpx.URL(f"{endpoint}/v2/{source.repository}/blobs/{blob.digest}")
                    await self._source_auth(source, endpoint, blob.digest, url, probe=True)
                return await self._copy_blob_retried(
                    source, endpoint, destination, blob, on_bytes, deadline, sessions
                )
            except SourceBlobMissing:
                if n + 1 == len(endpoints):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _copy_blob_retried(
        self,
        source: Reference,
        endpoint: str,
        destination: Reference,
        blob: Descriptor,
        on_bytes: Callable[[int], None] | None,
        deadline: Deadline | None = None,
        sessions: UploadSessions | None = None,
    ) -> int:
        for attempt in range(self.retry.attempts):
            if deadline is not None and deadline.left() <= 0:
                raise DeadlineReached(
                    f"blob {blob.digest}: not started, the copy's deadline is near; "
                    "the next attempt goes on"
                )
            try:
                if sessions is not None and self._resumable(destination, blob):
                    return await self._copy_blob_chunked(
                        source, endpoint, destination, blob, on_bytes, deadline, sessions
                    )
                return await self._copy_blob_once(source, endpoint, destination, blob, on_bytes)
            except DeadlineReached:
                raise  # stopping for the deadline is not a failure to retry here
            except (TransientError, DigestMismatch) as exc:
                registry, base = self._side_of(exc, source, endpoint, destination)
                await self._wait_before_retry(attempt, exc, registry=registry, endpoint=base)
        raise AssertionError("unreachable")  # pragma: no cover

    def _side_of(
        self, error: RegistryError, source: Reference, endpoint: str, destination: Reference
    ) -> tuple[str | None, str | None]:
        """Which side of a transfer answered ``error``: its registry and endpoint (None
        for a redirect target, or no answer)."""
        sides = ((source, endpoint), (destination, self.base_url(destination.registry)))
        for ref, base in sides:
            if error.host and error.host == httpx.URL(base).netloc.decode():
                return ref.registry, base
        return None, None

    def _resumable(self, destination: Reference, blob: Descriptor) -> bool:
        """Whether ``blob`` goes up in recorded chunks (see ResumableBlobs)."""
        return False

    async def _copy_blob_chunked(
        self,
        source: Reference,
        endpoint: str,
        destination: Reference,
        blob: Descriptor,
        on_bytes: Callable[[int], None] | None,
        deadline: Deadline | None,
        sessions: UploadSessions,
    ) -> int:
        raise NotImplementedError  # pragma: no cover - ResumableBlobs provides it

    async def _copy_blob_once(
        self,
        source: Reference,
        endpoint: str,
        destination: Reference,
        blob: Descriptor,
        on_bytes: Callable[[int], None] | None,
    ) -> int:
        what = f"blob {blob.digest} from {source.name} to {destination.name}"
        started = await self.request(
            destination.registry,
            "POST",
            f"/v2/{destination.repository}/blobs/uploads/",
            what=f"start upload of {what}",
            ok=(202,),
            retry=NO_RETRY,
        )
        location = started.headers.get("Location")
        if not location:
            raise PermanentError(f"{what}: registry gave no upload location")
        upload_url = httpx.URL(self.base_url(destination.registry) + "/").join(location)
        upload_url = upload_url.copy_merge_params({"digest": blob.digest})
        download_url = httpx.URL(f"{endpoint}/v2/{source.repository}/blobs/{blob.digest}")
        await self._honour_backoff(source.registry, f"download {what}", self.retry, endpoint)
        source_auth = await self._source_auth(source, endpoint, blob.digest, download_url)
        upload_auth = self.auth_for(destination.registry).header_for("PUT", upload_url)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._blob_threads,
                self._stream_blob,
                blob,
                (download_url, source_auth),
                (upload_url, upload_auth),
                what,
                on_bytes,
            )
        except BaseException:
            await self._cancel_upload(destination, started)
            raise

    def _stream_blob(
        self,
        blob: Descriptor,
        download: tuple[httpx.URL, str | None],
        upload: tuple[httpx.URL, str | None],
        what: str,
        on_bytes: Callable[[int], None] | None = None,
    ) -> int:
        """GET from the source straight into the upload PUT, hashing on the way.

        This runs in a thread on a synchronous httpx client: for bulk bytes it costs
        about half the CPU of the asyncio stack, and the socket calls and the hashing
        release the GIL, so transfers overlap.  Raising before the body ends aborts the
        PUT, so a short or corrupt blob is never committed.
        """
        algorithm, _, expected_hex = blob.digest.partition(":")
        hasher = hashlib.new(algorithm) if algorithm in hashlib.algorithms_available else None
        sent = 0

        def headers(auth: str | None, **extra: str) -> dict[str, str]:
            return {**extra, "Authorization": auth} if auth else extra

        client = self._sync_client()
        try:
            with client.stream("GET", download[0], headers=headers(download[1])) as response:
                if response.status_code != 200:
                    response.read()
                    if response.status_code == 404:
                        raise SourceBlobMissing(f"download {what}: not found at {download[0].host}")
                    raise self._thread_error(response, f"download {what}")
                size = response.headers.get("Content-Length") or str(blob.size)

                def body() -> Iterator[bytes]:
                    nonlocal sent
                    for chunk in response.iter_raw():
                        if hasher:
                            hasher.update(chunk)
                        sent += len(chunk)
                        if on_bytes:
                            on_bytes(len(chunk))
                        yield chunk
                    if blob.size and sent != blob.size:
                        raise DigestMismatch(f"{what}: got {sent} bytes, expected {blob.size}")
                    if hasher and hasher.hexdigest() != expected_hex:
                        raise DigestMismatch(f"{what}: content does not match its digest")

                put = client.put(
                    upload[0],
                    content=body(),
                    headers=headers(
                        upload[1],
                        **{"Content-Type": "application/octet-stream", "Content-Length": size},
                    ),
                )
        except httpx.TransportError as exc:
            raise transport_error(what, exc) from None
        if put.status_code not in (201, 204):
            raise self._thread_error(put, f"upload {what}")
        return sent

    @staticmethod
    def _thread_error(response: httpx.Response, what: str) -> RegistryError:
        if response.status_code == 401:
            # A token that expired between the control request and the transfer.
            return TransientError(f"{what}: credentials expired mid-copy (401)", status=401)
        return error_for(response, what)

    def _sync_client(self) -> httpx.Client:
        if self._sync is None:
            # Every transfer thread holds two connections at once (the GET it reads
            # and the PUT it writes); a smaller pool would deadlock.
            pool = 2 * self._blob_thread_count
            limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
            self._sync = httpx.Client(
                verify=tls_context(),
                limits=limits,
                timeout=self._timeout,
                follow_redirects=True,
                headers={"User-Agent": "armirror"},
                transport=self._blob_transport
                or sync_transport(self.guard, self.proxies, verify=tls_context(), limits=limits),
            )
        return self._sync
