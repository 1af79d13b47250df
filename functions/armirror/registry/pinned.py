"""httpx transports whose every connection goes to an address the HostGuard checked.

httpcore opens connections through a "network backend"; these backends resolve the host
once through :meth:`HostGuard.addresses`, then connect to the checked IP.  TLS still
names the host (SNI and certificate checks use the URL's host, not the IP), and the
Host header is untouched, so to the registry nothing changes.  Redirect hops and token
realms open their connections here too, so each of them is judged.

httpx's transports take no network backend, so :func:`async_transport` and
:func:`sync_transport` give a standard transport a connection pool that has one
(httpx 0.28 keeps its pool in ``_pool``; ``tests/unit/test_registry_hostguard.py``
fails if that changes).  Requests that go through a proxy take the transports of
:mod:`armirror.registry.proxied` instead.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import ssl
import typing

import httpcore
import httpx

from armirror.registry.hostguard import HostGuard

SocketOptions = typing.Iterable[typing.Any] | None

#: h2 is a pinned dependency; an environment set up before it was added (a virtualenv
#: not yet reinstalled) still works, on HTTP/1.1.
HTTP2 = importlib.util.find_spec("h2") is not None


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One default TLS context (system CAs, SSL_CERT_FILE/SSL_CERT_DIR) for every client.

    Building one reads the whole CA bundle, about 16 ms of CPU; without sharing, each
    RegistryClient paid it per registry, and the pipeline makes a client per copy job.
    An SSLContext is safe to share between threads and event loops.
    """
    return httpx.create_ssl_context()


def _no_address(host: str, port: int) -> httpcore.ConnectError:
    return httpcore.ConnectError(f"{host}:{port} does not resolve")


class GuardedAsyncBackend(httpcore.AsyncNetworkBackend):
    """Resolve once, check, connect to the checked address."""

    def __init__(self, guard: HostGuard) -> None:
        self.guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: SocketOptions = None,
    ) -> httpcore.AsyncNetworkStream:
        if self.guard.is_exempt(host, port):
            return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        addresses = await asyncio.to_thread(self.guard.addresses, host, port)
        if not addresses:
            raise _no_address(host, port)
        last: Exception | None = None
        for address in dict.fromkeys(addresses):  # each once, in the resolver's order
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: SocketOptions = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the registry client does not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedSyncBackend(httpcore.NetworkBackend):
    """The blocking twin of :class:`GuardedAsyncBackend`, for the blob transfer threads."""

    def __init__(self, guard: HostGuard) -> None:
        self.guard = guard
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: SocketOptions = None,
    ) -> httpcore.NetworkStream:
        if self.guard.is_exempt(host, port):
            return self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        addresses = self.guard.addresses(host, port)
        if not addresses:
            raise _no_address(host, port)
        last: Exception | None = None
        for address in dict.fromkeys(addresses):
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: SocketOptions = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("the registry client does not use unix sockets")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def async_transport(
    guard: HostGuard, *, verify: typing.Any, limits: httpx.Limits, http2: bool = False
) -> httpx.AsyncHTTPTransport:
    """An httpx transport for async clients that connects only where ``guard`` allows."""
    transport = httpx.AsyncHTTPTransport(verify=verify, limits=limits, trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=verify,
        http2=http2,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedAsyncBackend(guard),
    )
    return transport


def sync_transport(
    guard: HostGuard, *, verify: typing.Any, limits: httpx.Limits
) -> httpx.HTTPTransport:
    """The same for the blob transfer threads' synchronous client."""
    transport = httpx.HTTPTransport(verify=verify, limits=limits, trust_env=False)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=verify,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedSyncBackend(guard),
    )
    return transport
