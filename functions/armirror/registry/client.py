"""An asynchronous OCI distribution client on httpx.

One :class:`RegistryClient` talks to every registry a run touches.  It decides where a
registry lives (upstream mappings, plain HTTP for loopback), authenticates through
:class:`~armirror.registry.auth.RegistryAuth`, retries what a retry can fix with bounded
exponential backoff and jitter (honouring ``Retry-After``), records Docker Hub's
``ratelimit-remaining``, and maps failures onto :mod:`armirror.registry.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import ipaddress
import logging
import random
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from armirror.reference import DOCKER_HUB, Reference
from armirror.registry.auth import CredentialStore, RegistryAuth
from armirror.registry.errors import (
    DigestMismatch,
    NotFound,
    PermanentError,
    RateLimited,
    RegistryError,
    TransientError,
    Unauthorized,
)
from armirror.registry.manifest import ACCEPT, Descriptor, Manifest, parse_manifest

log = logging.getLogger(__name__)

DOCKER_HUB_ENDPOINT = "https://registry-1.docker.io"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost, with or without a port."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter."""

    attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0
    #: A Retry-After longer than this is not waited out: the caller gets RateLimited.
    max_retry_after: float = 60.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


@dataclass
class RateLimit:
    """Docker Hub style ``ratelimit-limit`` / ``ratelimit-remaining`` as last seen."""

    limit: int | None
    remaining: int | None
    observed_at: float = field(default_factory=time.time)


def _ratelimit_value(header: str | None) -> int | None:
    if not header:
        return None
    try:
        return int(header.split(";", 1)[0].strip())
    except ValueError:
        return None


def retry_after_seconds(header: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(header).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _registry_message(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors) or ""
    except (ValueError, AttributeError):
        return response.text[:200] if response.text else ""


def error_for(response: httpx.Response, what: str) -> RegistryError:
    """Map an unwanted response to the error a caller can act on."""
    status = response.status_code
    detail = _registry_message(response)
    suffix = f" ({detail})" if detail else ""
    host = response.request.url.netloc.decode()
    if status in (401, 403):
        return Unauthorized(
            f"{what}: {host} refused access ({status}){suffix}; check the credentials "
            "for this registry (Docker config auths, or Google application default "
            "credentials for Artifact Registry)",
            status=status,
        )
    if status == 404:
        return NotFound(f"{what}: not found on {host}{suffix}", status=status)
    if status == 429:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        return RateLimited(
            f"{what}: {host} is rate limiting (429){suffix}", retry_after=retry_after
        )
    if status >= 500:
        return TransientError(f"{what}: {host} answered {status}{suffix}", status=status)
    return PermanentError(f"{what}: {host} answered {status}{suffix}", status=status)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One default TLS context (system CAs, SSL_CERT_FILE/SSL_CERT_DIR) for every client.

    Building one reads the whole CA bundle, about 16 ms of CPU; without sharing, each
    RegistryClient paid it per registry, and the pipeline makes a client per copy job.
    An SSLContext is safe to share between threads and event loops.
    """
    return httpx.create_ssl_context()


class RegistryClient:
    """Speak the distribution API to any number of registries, with shared connection pools."""

    def __init__(
        self,
        *,
        upstreams: Mapping[str, str] | None = None,
        insecure: frozenset[str] | set[str] = frozenset(),
        credentials: CredentialStore | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 32,
        blob_threads: int = 8,
        timeout: float = 60.0,
    ) -> None:
        self.upstreams = {k.lower(): v.rstrip("/") for k, v in (upstreams or {}).items()}
        self.insecure = {h.lower() for h in insecure}
        self.credentials = credentials if credentials is not None else CredentialStore()
        self.retry = retry or RetryPolicy()
        self.ratelimits: dict[str, RateLimit] = {}
        self.request_counts: dict[tuple[str, str], int] = {}
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._timeout = httpx.Timeout(timeout, connect=10.0)
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._auths: dict[str, RegistryAuth] = {}
        self._sync: httpx.Client | None = None
        self._blob_thread_count = blob_threads
        self._blob_threads = ThreadPoolExecutor(
            max_workers=blob_threads, thread_name_prefix="armirror-blob"
        )

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        self._blob_threads.shutdown(wait=False, cancel_futures=True)
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    # -- where registries live ---------------------------------------------------------

    def base_url(self, registry: str) -> str:
        """The endpoint for a registry name: a mapped upstream, or the registry itself."""
        key = registry.lower()
        if key in self.upstreams:
            return self.upstreams[key]
        if key == DOCKER_HUB:
            return DOCKER_HUB_ENDPOINT
        scheme = "http" if is_loopback(key) or key in self.insecure else "https"
        return f"{scheme}://{registry}"

    def same_endpoint(self, a: str, b: str) -> bool:
        return self.base_url(a) == self.base_url(b)

    def auth_for(self, registry: str) -> RegistryAuth:
        base = self.base_url(registry)
        if base not in self._auths:
            host = httpx.URL(base).netloc.decode()
            self._auths[base] = RegistryAuth(lambda: self.credentials.lookup(host, registry))
        return self._auths[base]

    def _client(self, registry: str) -> httpx.AsyncClient:
        base = self.base_url(registry)
        client = self._clients.get(base)
        if client is None:
            client = httpx.AsyncClient(
                base_url=base,
                verify=tls_context(),
                auth=self.auth_for(registry),
                limits=self._limits,
                timeout=self._timeout,
                follow_redirects=True,
                headers={"User-Agent": "armirror"},
            )
            self._clients[base] = client
        return client

    # -- one request, retried ----------------------------------------------------------

    def _observe(self, registry: str, response: httpx.Response) -> None:
        method = response.request.method
        self.request_counts[(registry, method)] = self.request_counts.get((registry, method), 0) + 1
        remaining = _ratelimit_value(response.headers.get("ratelimit-remaining"))
        if remaining is not None:
            self.ratelimits[registry] = RateLimit(
                _ratelimit_value(response.headers.get("ratelimit-limit")), remaining
            )

    async def _wait_before_retry(self, attempt: int, error: RegistryError) -> None:
        if attempt + 1 >= self.retry.attempts:
            raise error
        delay = self.retry.delay(attempt)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            if error.retry_after > self.retry.max_retry_after:
                raise error
            delay = error.retry_after + random.uniform(0, 0.1)
        log.info("retrying in %.2fs after: %s", delay, error)
        await asyncio.sleep(delay)

    async def request(
        self,
        registry: str,
        method: str,
        path: str | httpx.URL,
        *,
        what: str,
        ok: tuple[int, ...] = (200,),
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """Send a request with a replayable body; retry 429, 5xx and connection errors."""
        client = self._client(registry)
        for attempt in range(self.retry.attempts):
            try:
                response = await client.request(
                    method, path, headers=headers, content=content, params=params
                )
            except httpx.HTTPStatusError as exc:  # raised by the token flow
                raise error_for(exc.response, f"{what} (token request)") from None
            except httpx.TransportError as exc:
                await self._wait_before_retry(
                    attempt, TransientError(f"{what}: {type(exc).__name__}: {exc}")
                )
                continue
            self._observe(registry, response)
            if response.status_code in ok:
                return response
            error = error_for(response, what)
            if response.status_code not in RETRYABLE_STATUS:
                raise error
            await self._wait_before_retry(attempt, error)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- manifests ---------------------------------------------------------------------

    async def head_manifest(
        self, ref: Reference, identifier: str | None = None
    ) -> Descriptor | None:
        """The digest and media type at a tag or digest, with a HEAD (not a Docker Hub pull)."""
        ident = identifier or ref.identifier
        try:
            response = await self.request(
                ref.registry,
                "HEAD",
                f"/v2/{ref.repository}/manifests/{ident}",
                what=f"HEAD {ref.name}:{ident}",
                headers={"Accept": ACCEPT},
            )
        except NotFound:
            return None
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            return None  # the caller falls back to a GET
        return Descriptor(
            media_type=response.headers.get("Content-Type", "").split(";")[0],
            digest=digest,
            size=int(response.headers.get("Content-Length") or 0),
        )

    async def get_manifest(self, ref: Reference, identifier: str | None = None) -> Manifest:
        """Fetch a manifest's exact bytes; check them against the digest that named them."""
        ident = identifier or ref.identifier
        response = await self.request(
            ref.registry,
            "GET",
            f"/v2/{ref.repository}/manifests/{ident}",
            what=f"manifest {ref.name}:{ident}",
            headers={"Accept": ACCEPT},
        )
        expected = ident if ident.startswith("sha256:") else None
        return parse_manifest(response.content, response.headers.get("Content-Type"), expected)

    async def put_manifest(self, ref: Reference, identifier: str, manifest: Manifest) -> None:
        """Push the exact bytes; the registry must agree on the digest.

        Callers push a manifest only after everything it names is in place, so a 400
        ``MANIFEST_BLOB_UNKNOWN`` here is the registry briefly not seeing it: eventual
        consistency, or another client pushing the same image at the same moment
        (distribution's filesystem storage rewrites link files in place).  That answer
        is retried within the retry budget like a transient error.
        """
        for attempt in range(self.retry.attempts):
            try:
                response = await self.request(
                    ref.registry,
                    "PUT",
                    f"/v2/{ref.repository}/manifests/{identifier}",
                    what=f"push manifest {ref.name}:{identifier}",
                    ok=(200, 201, 202),
                    headers={"Content-Type": manifest.media_type},
                    content=manifest.raw,
                )
                break
            except PermanentError as exc:
                if exc.status != 400 or "BLOB_UNKNOWN" not in str(exc):
                    raise
                await self._wait_before_retry(attempt, exc)
        else:
            raise AssertionError("unreachable")  # pragma: no cover
        echoed = response.headers.get("Docker-Content-Digest")
        if echoed and echoed != manifest.digest:
            raise DigestMismatch(
                f"{ref.name}:{identifier} was stored as {echoed}, expected {manifest.digest}"
            )

    async def list_tags(self, ref: Reference, *, page_size: int = 1000) -> list[str] | None:
        """The repository's tags from one page of ``tags/list`` (a GET, but not a pull).

        None when the repository is missing, or has more tags than one page holds:
        callers then ask about the tags they care about with HEADs instead.
        """
        try:
            response = await self.request(
                ref.registry,
                "GET",
                f"/v2/{ref.repository}/tags/list",
                what=f"tags of {ref.name}",
                params={"n": str(page_size)},
            )
        except NotFound:
            return None
        if "next" in response.headers.get("Link", ""):
            return None
        try:
            tags = response.json().get("tags") or []
        except (ValueError, AttributeError):
            return None
        return [str(tag) for tag in tags]

    async def referrers(self, ref: Reference, digest: str) -> list[Descriptor] | None:
        """OCI 1.1 referrers of a digest, or None where the registry lacks the API."""
        try:
            response = await self.request(
                ref.registry,
                "GET",
                f"/v2/{ref.repository}/referrers/{digest}",
                what=f"referrers of {ref.name}@{digest}",
                headers={"Accept": "application/vnd.oci.image.index.v1+json"},
            )
        except (NotFound, PermanentError):
            return None
        if "application/vnd.oci.image.index.v1+json" not in response.headers.get(
            "Content-Type", ""
        ):
            return None
        manifests = response.json().get("manifests") or []
        return [
            Descriptor(m.get("mediaType", ""), m["digest"], int(m.get("size", 0)))
            for m in manifests
            if isinstance(m, dict) and "digest" in m
        ]

    # -- blobs -------------------------------------------------------------------------

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
        with contextlib.suppress(httpx.HTTPError):
            await self._client(ref.registry).delete(location)

    async def copy_blob(
        self,
        source: Reference,
        destination: Reference,
        blob: Descriptor,
        on_bytes: Callable[[int], None] | None = None,
    ) -> int:
        """Stream one blob from source to destination, retrying the whole transfer.

        ``on_bytes`` hears of every chunk as it goes (from a worker thread), for
        progress displays; a retried transfer reports its bytes again.
        """
        for attempt in range(self.retry.attempts):
            try:
                return await self._copy_blob_once(source, destination, blob, on_bytes)
            except (TransientError, DigestMismatch) as exc:
                await self._wait_before_retry(attempt, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _copy_blob_once(
        self,
        source: Reference,
        destination: Reference,
        blob: Descriptor,
        on_bytes: Callable[[int], None] | None,
    ) -> int:
        what = f"blob {blob.digest} from {source.name} to {destination.name}"
        # Control requests go through the async client, which also settles auth for
        # both sides; the bytes then flow in a worker thread (see _stream_blob).
        started = await self.request(
            destination.registry,
            "POST",
            f"/v2/{destination.repository}/blobs/uploads/",
            what=f"start upload of {what}",
            ok=(202,),
        )
        location = started.headers.get("Location")
        if not location:
            raise PermanentError(f"{what}: registry gave no upload location")
        upload_url = httpx.URL(self.base_url(destination.registry) + "/").join(location)
        upload_url = upload_url.copy_merge_params({"digest": blob.digest})
        download_url = httpx.URL(
            f"{self.base_url(source.registry)}/v2/{source.repository}/blobs/{blob.digest}"
        )
        source_auth = self.auth_for(source.registry).header_for("GET", download_url)
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
            raise TransientError(f"{what}: {type(exc).__name__}: {exc}") from None
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
            self._sync = httpx.Client(
                verify=tls_context(),
                limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
                timeout=self._timeout,
                follow_redirects=True,
                headers={"User-Agent": "armirror"},
            )
        return self._sync

    # -- helpers for callers ------------------------------------------------------------

    def ratelimit_remaining(self, registry: str) -> int | None:
        seen = self.ratelimits.get(registry)
        return seen.remaining if seen else None

    def stats(self) -> dict[str, Any]:
        return {f"{r} {m}": n for (r, m), n in sorted(self.request_counts.items())}
