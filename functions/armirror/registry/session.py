"""One request to a registry, authenticated, observed and retried.

:class:`RegistrySession` owns the connections: one pooled ``httpx.AsyncClient`` per
registry endpoint, each with its :class:`~armirror.registry.auth.RegistryAuth`.  Its
:meth:`~RegistrySession.request` is the one layer that retries (429, 5xx, broken
connections, with the :class:`~armirror.registry.retry.RetryPolicy`); it records Docker
Hub's ``ratelimit-remaining`` and how many requests went where.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence

import httpx

from armirror.registry import budget
from armirror.registry.auth import RegistryAuth
from armirror.registry.bodies import MAX_MANIFEST_BYTES, send_bounded
from armirror.registry.budget import RateLimit
from armirror.registry.credentials import CredentialStore
from armirror.registry.endpoints import Endpoints, host_port
from armirror.registry.errors import (
    CredentialsRefused,
    NoCredentials,
    RateLimited,
    RegistryError,
    Unauthorized,
    error_for,
    is_retryable,
    transport_error,
)
from armirror.registry.hostguard import HostGuard
from armirror.registry.pinned import HTTP2, tls_context
from armirror.registry.proxied import async_transport
from armirror.registry.proxies import ProxyRoutes
from armirror.registry.retry import Backoff, Backoffs, RetryPolicy

log = logging.getLogger("armirror.registry")


class RegistrySession:
    """Pooled, authenticated connections to any number of registries.

    Every connection is judged by a :class:`~armirror.registry.hostguard.HostGuard`:
    the upstream endpoints and the ``trusted_registries`` (the destination) are exempt;
    loopback and private networks pass only with ``allow_private_hosts``.
    """

    def __init__(
        self,
        *,
        upstreams: Mapping[str, str | Sequence[str]] | None = None,
        insecure: frozenset[str] | set[str] = frozenset(),
        credentials: CredentialStore | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 32,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        backoffs: Backoffs | None = None,
        allow_private_hosts: bool = False,
        trusted_registries: Iterable[str] = (),
        guard: HostGuard | None = None,
        proxies: ProxyRoutes | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.endpoints = Endpoints(upstreams, insecure)
        self.guard = guard or HostGuard(allow_private=allow_private_hosts)
        for urls in self.endpoints.upstreams.values():
            for url in urls:
                self.guard.exempt(*host_port(url))
        for registry in trusted_registries:
            self.guard.exempt(*host_port(self.endpoints.base_url(registry)))
        self.proxies = ProxyRoutes.from_environment() if proxies is None else proxies
        self.credentials = credentials if credentials is not None else CredentialStore()
        self.retry = retry or RetryPolicy()
        self.ratelimits: dict[str, RateLimit] = {}  # by endpoint base URL
        self.request_counts: dict[tuple[str, str], int] = {}
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._timeout = httpx.Timeout(timeout, connect=10.0)
        self._transport = transport
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._auths: dict[str, RegistryAuth] = {}
        self._backoffs = backoffs if backoffs is not None else Backoffs()

    async def _close_connections(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    # -- where registries live ---------------------------------------------------------

    def base_url(self, registry: str) -> str:
        return self.endpoints.base_url(registry)

    def candidates(self, registry: str) -> tuple[str, ...]:
        """The registry's endpoints in the order reads try them."""
        return self.endpoints.candidates(registry)

    def auth_for(self, registry: str, endpoint: str | None = None) -> RegistryAuth:
        base = endpoint or self.base_url(registry)
        if base not in self._auths:
            host = httpx.URL(base).netloc.decode()
            self._auths[base] = RegistryAuth(
                lambda: self.credentials.lookup(host, registry),
                realm_problem=self.guard.realm_problem,
            )
        return self._auths[base]

    def backoff_for(self, registry: str, endpoint: str | None = None) -> Backoff:
        """The hold every job talking to this endpoint (default: the registry's first)
        honours."""
        return self._backoffs.for_endpoint(endpoint or self.base_url(registry))

    def _client(self, registry: str, endpoint: str | None = None) -> httpx.AsyncClient:
        base = endpoint or self.base_url(registry)
        client = self._clients.get(base)
        if client is None:
            # HTTP/2 where the registry offers it (ALPN, so HTTPS only): every control
            # request to an endpoint shares one connection, with no handshake each and
            # about half the client CPU a request of 32 pooled HTTP/1.1 connections.
            client = httpx.AsyncClient(
                base_url=base,
                http2=HTTP2,
                verify=tls_context(),
                auth=self.auth_for(registry, base),
                limits=self._limits,
                timeout=self._timeout,
                follow_redirects=True,
                headers={"User-Agent": "armirror"},
                transport=self._transport
                or async_transport(
                    self.guard, self.proxies, verify=tls_context(), limits=self._limits, http2=HTTP2
                ),
            )
            self._clients[base] = client
        return client

    # -- one request, retried ----------------------------------------------------------

    def _observe(self, registry: str, base: str, response: httpx.Response) -> None:
        request = response.request
        method = request.method
        self.request_counts[(registry, method)] = self.request_counts.get((registry, method), 0) + 1
        seen = budget.observed(
            response.headers.get("ratelimit-limit"), response.headers.get("ratelimit-remaining")
        )
        if seen is not None:
            self.ratelimits[base] = seen
        if method == "GET" and response.is_success and "/manifests/" in request.url.path:
            budget.count_manifest_get(request.url.netloc.decode())

    async def _wait_before_retry(
        self,
        attempt: int,
        error: RegistryError,
        policy: RetryPolicy | None = None,
        registry: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        """Sleep before attempt ``attempt + 1``, or raise ``error`` when it is time to stop.

        A 429, or any answer with Retry-After, holds back every job on ``registry``'s
        endpoint for the same time, not only this request.
        """
        delay = (policy or self.retry).pause(attempt, error.retry_after)
        if delay is None:
            raise error
        if registry is not None and (isinstance(error, RateLimited) or error.retry_after):
            self.backoff_for(registry, endpoint).hold(delay)
        log.info("retrying in %.2fs after: %s", delay, error)
        await asyncio.sleep(delay)

    async def _honour_backoff(
        self, registry: str, what: str, policy: RetryPolicy, endpoint: str | None = None
    ) -> None:
        """Wait out a hold on the registry's endpoint; one longer than the policy would
        wait is reported at once as rate limited, without asking the registry again."""
        backoff = self.backoff_for(registry, endpoint)
        left = backoff.remaining()
        if left > policy.max_retry_after:
            host = httpx.URL(endpoint or self.base_url(registry)).netloc.decode()
            raise RateLimited(
                f"{what}: {host} asked armirror to wait; {left:.0f} s left",
                retry_after=left,
                status=None,
            )
        await backoff.wait()

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
        retry: RetryPolicy | None = None,
        retryable: Callable[[RegistryError], bool] = is_retryable,
        endpoint: str | None = None,
        max_body: int = MAX_MANIFEST_BYTES,
    ) -> httpx.Response:
        """Send a request with a replayable body; retry what ``retryable`` allows.

        ``retry`` overrides the client's policy: the inner requests of a transfer that
        is itself retried pass :data:`~armirror.registry.retry.NO_RETRY`.  ``endpoint``
        picks one of the registry's endpoints (default: its first).  A wanted answer's
        body is read up to ``max_body`` (more is MalformedAnswer), an error's up to 64 KiB.
        """
        policy = retry or self.retry
        base = endpoint or self.base_url(registry)
        client = self._client(registry, base)
        for attempt in range(policy.attempts):
            await self._honour_backoff(registry, what, policy, base)
            try:
                response = await send_bounded(
                    client, method, path, headers, content, params, ok, max_body
                )
            except httpx.HTTPStatusError as exc:  # raised by the token flow
                denied = error_for(exc.response, f"{what} (token request)")
                raise self._explain_denial(registry, denied, base) from None
            except httpx.TransportError as exc:
                broken = transport_error(what, exc)
                await self._wait_before_retry(attempt, broken, policy, registry, base)
                continue
            self._observe(registry, base, response)
            if response.status_code in ok:
                return response
            error = error_for(response, what)
            if not retryable(error):
                self._hold_for_long_wait(registry, error, base)
                raise self._explain_denial(registry, error, base)
            try:
                await self._wait_before_retry(attempt, error, policy, registry, base)
            except RegistryError:
                self._hold_for_long_wait(registry, error, base)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def earn(self, registry: str, method: str, url: httpx.URL, *, what: str) -> None:
        """Fetch the token a transfer thread's ``method`` request to ``url`` will need
        (:meth:`RegistryAuth.earn`), its failures mapped as :meth:`request` maps the
        auth flow's: a refusal is NoCredentials or CredentialsRefused, an unreachable
        token server a TransientError, never a bare httpx exception."""
        base = self.base_url(registry)
        try:
            await self.auth_for(registry, base).earn(self._client(registry, base), method, url)
        except httpx.HTTPStatusError as exc:
            denied = error_for(exc.response, f"{what} (token request)")
            raise self._explain_denial(registry, denied, base) from None
        except httpx.TransportError as exc:
            raise transport_error(f"{what} (token request)", exc) from None

    def _explain_denial(
        self, registry: str, error: RegistryError, endpoint: str | None = None
    ) -> RegistryError:
        """A 401 or 403 says whether armirror had no credentials for the registry, or
        sent some that were refused: two different things to fix."""
        if not isinstance(error, Unauthorized) or isinstance(
            error, NoCredentials | CredentialsRefused
        ):
            return error
        host = httpx.URL(endpoint or self.base_url(registry)).netloc.decode()
        credential = self.credentials.lookup(host, registry)
        answer = {
            "status": error.status,
            "errors": error.errors,
            "method": error.method,
            "path": error.path,
            "host": error.host,
        }
        if credential is None:
            searched = self.credentials.searched(host, registry)
            return NoCredentials(error.what, registry=registry, searched=searched, **answer)
        return CredentialsRefused(error.what, registry=registry, source=credential.source, **answer)

    def _hold_for_long_wait(
        self, registry: str, error: RegistryError, endpoint: str | None = None
    ) -> None:
        """A registry that asked for a wait too long to sit out still gets it: the
        other jobs on it stop asking until then, and report it as rate limited."""
        if error.retry_after:
            self.backoff_for(registry, endpoint).hold(error.retry_after)

    # -- helpers for callers ------------------------------------------------------------

    def ratelimit(self, registry_or_endpoint: str) -> RateLimit | None:
        """The rate limit an endpoint last reported (a registry name means its first)."""
        base = registry_or_endpoint
        if "://" not in base:
            base = self.base_url(base)
        return self.ratelimits.get(base)

    def ratelimit_remaining(self, registry_or_endpoint: str) -> int | None:
        seen = self.ratelimit(registry_or_endpoint)
        return seen.remaining if seen else None
