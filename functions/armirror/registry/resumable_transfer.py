"""The resumable path of a blob transfer: find or start the upload, send the rest in
chunks (:class:`~armirror.registry.resumable.ChunkedUpload`, in a transfer thread),
finish with the digest, check the blob.

Where a registry refuses chunked uploads (its first ``PATCH`` answered 405, 416, 501 or
the like), the blob is sent whole instead, and the log says so: an interrupted upload to
that registry starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import httpx

from armirror.reference import Reference
from armirror.registry.blob_transfer import BlobTransfer, SourceBlobMissing
from armirror.registry.errors import (
    DigestMismatch,
    NotFound,
    PermanentError,
    RegistryError,
    transport_error,
)
from armirror.registry.manifest import Descriptor
from armirror.registry.resumable import (
    RESUMABLE_MIN_SIZE,
    ChunkedUpload,
    ChunkedUploadRefused,
    Deadline,
    UploadSessions,
    upload_offset,
)
from armirror.registry.retry import NO_RETRY

log = logging.getLogger(__name__)


class ResumableBlobs(BlobTransfer):
    """Blob transfers that may outlast a task (issue 13 §5)."""

    def __init__(self, *, resumable_min_size: int = RESUMABLE_MIN_SIZE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.resumable_min_size = resumable_min_size
        self._no_chunks: set[str] = set()  # endpoints that refused a chunked upload

    def _resumable(self, destination: Reference, blob: Descriptor) -> bool:
        return (
            blob.size >= self.resumable_min_size
            and self.base_url(destination.registry) not in self._no_chunks
        )

    def _upload_key(self, destination: Reference) -> str:
        return f"{self.base_url(destination.registry)}/{destination.repository}"

    async def _find_upload(
        self, destination: Reference, blob: Descriptor, sessions: UploadSessions
    ) -> tuple[httpx.URL, int] | None:
        """The recorded upload of this blob, where the registry says it stands; None
        when there is none, or the registry no longer has it."""
        key = self._upload_key(destination)
        saved = await asyncio.to_thread(sessions.upload_session, key, blob.digest)
        if saved is None:
            return None
        # The key names the endpoint, and the location is what that endpoint gave (it may
        # name another host, as distribution's absolute locations do behind a proxy).
        location = httpx.URL(self.base_url(destination.registry) + "/").join(saved[0])
        await self._earn_push(destination, location)
        try:
            status = await self.request(
                destination.registry,
                "GET",
                location,
                what=f"status of the upload of {blob.digest} to {destination.name}",
                ok=(204,),
                retry=NO_RETRY,
            )
        except (NotFound, PermanentError) as exc:
            log.info("upload of %s to %s cannot resume (%s); starting over", blob.digest,
                     destination.name, exc.status)  # fmt: skip
            await asyncio.to_thread(sessions.forget_upload_session, key, blob.digest)
            return None
        offset = upload_offset(status.headers.get("Range"))
        if offset is None or offset > blob.size or offset < saved[1]:
            log.info("upload of %s to %s holds an unexpected range; starting over",
                     blob.digest, destination.name)  # fmt: skip
            await asyncio.to_thread(sessions.forget_upload_session, key, blob.digest)
            return None
        moved_on = status.headers.get("Location")
        return (location.join(moved_on) if moved_on else location), offset

    async def _earn_push(self, destination: Reference, location: httpx.URL) -> None:
        """Fetch the push token a chunk needs, before the transfer thread sends it."""
        await self.earn(
            destination.registry, "PATCH", location, what=f"resume an upload to {destination.name}"
        )

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
        what = f"blob {blob.digest} from {source.name} to {destination.name}"
        key = self._upload_key(destination)
        found = await self._find_upload(destination, blob, sessions)
        if found is None:
            started = await self.request(
                destination.registry,
                "POST",
                f"/v2/{destination.repository}/blobs/uploads/",
                what=f"start upload of {what}",
                ok=(202,),
                retry=NO_RETRY,
            )
            if not started.headers.get("Location"):
                raise PermanentError(f"{what}: registry gave no upload location")
            base = httpx.URL(self.base_url(destination.registry) + "/")
            location, offset = base.join(started.headers["Location"]), 0
        else:
            location, offset = found
            log.info("resuming the upload of %s at byte %d of %d", what, offset, blob.size)
        download = httpx.URL(f"{endpoint}/v2/{source.repository}/blobs/{blob.digest}")
        await self._honour_backoff(source.registry, f"download {what}", self.retry, endpoint)
        source_auth = await self._source_auth(source, endpoint, blob.digest, download)
        upload_auth = self.auth_for(destination.registry).header_for("PATCH", location)

        def record(at: str, sent: int) -> None:
            sessions.save_upload_session(key, blob.digest, at, sent)

        def download_error(response: httpx.Response, doing: str) -> Exception:
            if response.status_code == 404 and doing.startswith("download"):
                return SourceBlobMissing(f"{doing}: not found at {endpoint}")
            return self._thread_error(response, doing)

        upload = ChunkedUpload(
            client=self._sync_client(),
            digest=blob.digest,
            size=blob.size,
            download=(download, source_auth),
            upload=(location, upload_auth),
            offset=offset,
            deadline=deadline,
            record=record,
            on_bytes=on_bytes,
            error_for=download_error,
        )
        try:
            final = await asyncio.get_running_loop().run_in_executor(
                self._blob_threads, _run_upload, upload, what
            )
        except ChunkedUploadRefused as refused:
            log.warning(
                "%s refused a chunked upload (%d); sending %s whole, so an interrupted "
                "upload to it starts over",
                self.base_url(destination.registry),
                refused.status,
                blob.digest,
            )
            self._no_chunks.add(self.base_url(destination.registry))
            await asyncio.to_thread(sessions.forget_upload_session, key, blob.digest)
            await self._cancel_location(destination, location)
            return await self._copy_blob_once(source, endpoint, destination, blob, on_bytes)
        except DigestMismatch:
            await asyncio.to_thread(sessions.forget_upload_session, key, blob.digest)
            await self._cancel_location(destination, location)
            raise
        await self._finish(destination, blob, final, key, sessions)
        return upload.moved

    async def _finish(
        self,
        destination: Reference,
        blob: Descriptor,
        location: httpx.URL,
        key: str,
        sessions: UploadSessions,
    ) -> None:
        """Close the upload with its digest (the registry checks it), then check the
        blob is there at its size; only then is the session forgotten."""
        what = f"finish the upload of {blob.digest} to {destination.name}"
        try:
            await self.request(
                destination.registry,
                "PUT",
                location.copy_merge_params({"digest": blob.digest}),
                what=what,
                ok=(201, 204),
                headers={"Content-Type": "application/octet-stream"},
                content=b"",
                retry=NO_RETRY,
            )
        except PermanentError as exc:
            if exc.status == 400 or "DIGEST_INVALID" in exc.codes:
                await asyncio.to_thread(sessions.forget_upload_session, key, blob.digest)
                raise DigestMismatch(f"{what}: the registry found another digest") from None
            raise
        head = await self.request(
            destination.registry,
            "HEAD",
            f"/v2/{destination.repository}/blobs/{blob.digest}",
            what=f"check {blob.digest} in {destination.name}",
        )
        stored = head.headers.get("Docker-Content-Digest")
        size = int(head.headers.get("Content-Length") or -1)
        if (stored and stored != blob.digest) or (size >= 0 and size != blob.size):
            raise DigestMismatch(f"{what}: the registry holds {stored} of {size} bytes")
        await asyncio.to_thread(sessions.forget_upload_session, key, blob.digest)

    async def _cancel_location(self, destination: Reference, location: httpx.URL) -> None:
        # Best effort: registries purge abandoned uploads themselves.
        with contextlib.suppress(httpx.HTTPError, RegistryError):
            await self._client(destination.registry).delete(location)


def _run_upload(upload: ChunkedUpload, what: str) -> httpx.URL:
    try:
        return upload.run()
    except httpx.TransportError as exc:
        raise transport_error(what, exc) from None
