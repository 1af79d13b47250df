"""httpx transports that send each request direct, pinned, or through the proxy for its URL.

:class:`~armirror.registry.proxies.ProxyRoutes` says which proxy, if any, a request
takes.  A direct request goes through :mod:`armirror.registry.pinned`: resolved once,
checked, connected to the checked address.  Through a proxy, the proxy resolves the
target and connects to it, so armirror cannot pin the address.  The target is judged
before the request is handed over instead, as the guard judges every connection
(:class:`TargetJudge`): an exempt endpoint passes; any other name must pass the name
rules, and every address it resolves to here must pass too.  A name that does not
resolve here cannot be judged and is refused.  Redirect hops and token realms pass
through these transports like every request, so each is judged.  The proxy itself is
the operator's choice: it is connected to unjudged.

What remains is a window: the proxy's own resolution may differ from the one judged
here (DNS rebinding, or split DNS), and the proxy reaches what it can reach.  README's
threat model says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import threading
import time
import typing
from collections.abc import Iterator

import httpx

from armirror.registry import pinned
from armirror.registry.errors import HostRefused, PermanentError
from armirror.registry.hostguard import HostGuard
from armirror.registry.proxies import DEFAULT_PORTS, Proxy, ProxyRoutes
from armirror.registry.redact import scrub

#: How long a target that passed stays judged (the proxy resolves it anyway; this only
#: spares a DNS lookup per request).
VERDICT_SECONDS = 60.0


@functools.cache
def proxy_tls_context() -> ssl.SSLContext:
    """The TLS context for https:// proxies, built once: the CAs httpx trusts for
    registries (SSL_CERT_FILE or SSL_CERT_DIR when set, else certifi's bundle), where
    httpcore would build a context per transport.  Apart from the registries' context,
    whose ALPN protocols httpcore sets per connection."""
    return httpx.create_ssl_context()


def _target(url: httpx.URL) -> tuple[str, int]:
    """The host and port a proxy is asked to reach (proxied URLs are http or https)."""
    return url.raw_host.decode("ascii"), url.port or DEFAULT_PORTS[url.scheme]


class TargetJudge:
    """Judge the host a proxy is asked to reach, before it is asked."""

    def __init__(self, guard: HostGuard) -> None:
        self.guard = guard
        self._passed: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()

    def passed(self, url: httpx.URL) -> bool:
        """Whether ``url``'s target passed lately (or is exempt): no lookup needed."""
        host, port = _target(url)
        if self.guard.is_exempt(host, port):
            return True
        with self._lock:
            return self._passed.get((host, port), 0.0) > time.monotonic()

    def check(self, url: httpx.URL) -> None:
        """Raise HostRefused unless the target may be reached (this may resolve it)."""
        if self.passed(url):
            return
        host, port = _target(url)
        if not self.guard.addresses(host, port):
            raise HostRefused(
                f"connection to {scrub(host, 100)}:{port} refused: it does not resolve here, "
                "and behind a proxy armirror judges each host by the addresses it resolves "
                "to before the proxy is asked; name the registry with --upstream "
                "(ARMIRROR_UPSTREAMS) or as the destination to trust it, or let this "
                "machine resolve it"
            )
        with self._lock:
            self._passed[(host, port)] = time.monotonic() + VERDICT_SECONDS


@contextlib.contextmanager
def _through(proxy: Proxy, request: httpx.Request) -> Iterator[None]:
    """Errors on the way through a proxy say so (a refused connection is the proxy's,
    not the registry's).  A proxy that refuses a tunnel with a 4xx will refuse it again:
    that is not retried."""
    try:
        yield
    except httpx.ProxyError as exc:
        answer = scrub(str(exc), 100)
        if answer[:1] == "4":
            raise _refused(proxy, request.url, answer) from None
        raise httpx.ProxyError(f"{answer} (from the proxy {proxy.url})", request=request) from None
    except httpx.TransportError as exc:
        raise type(exc)(f"{exc} (through the proxy {proxy.url})", request=request) from None


def _refused(proxy: Proxy, url: httpx.URL, answer: str) -> PermanentError:
    host, port = _target(url)
    if answer.startswith("407"):
        return PermanentError(
            f"the proxy {proxy.url} wants credentials it was not given or refused them "
            f"({answer}); they go in {proxy.variable} as http://USER:PASSWORD@HOST:PORT"
        )
    return PermanentError(
        f"the proxy {proxy.url} refused to connect to {scrub(host, 100)}:{port} ({answer})"
    )


def _httpx_proxy(proxy: Proxy) -> httpx.Proxy:
    context = proxy_tls_context() if proxy.url.startswith("https:") else None
    return httpx.Proxy(proxy.url, auth=proxy.auth, ssl_context=context)


class RoutedAsyncTransport(httpx.AsyncBaseTransport):
    """Each request direct or through its proxy, the proxied ones judged first."""

    def __init__(
        self,
        routes: ProxyRoutes,
        judge: TargetJudge,
        direct: httpx.AsyncBaseTransport,
        proxied: dict[Proxy, httpx.AsyncBaseTransport],
    ) -> None:
        self.routes, self.judge = routes, judge
        self._direct, self._proxied = direct, proxied

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        proxy = self.routes.proxy_for(request.url)
        if proxy is None:
            return await self._direct.handle_async_request(request)
        if not self.judge.passed(request.url):
            await asyncio.to_thread(self.judge.check, request.url)
        with _through(proxy, request):
            response = await self._proxied[proxy].handle_async_request(request)
        if response.status_code == 407:  # a forwarded http:// request the proxy refused
            await response.aclose()
            raise _refused(proxy, request.url, "407 Proxy Authentication Required")
        return response

    async def aclose(self) -> None:
        await self._direct.aclose()
        for transport in self._proxied.values():
            await transport.aclose()


class RoutedSyncTransport(httpx.BaseTransport):
    """The blocking twin of :class:`RoutedAsyncTransport`, for the blob transfer threads."""

    def __init__(
        self,
        routes: ProxyRoutes,
        judge: TargetJudge,
        direct: httpx.BaseTransport,
        proxied: dict[Proxy, httpx.BaseTransport],
    ) -> None:
        self.routes, self.judge = routes, judge
        self._direct, self._proxied = direct, proxied

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        proxy = self.routes.proxy_for(request.url)
        if proxy is None:
            return self._direct.handle_request(request)
        self.judge.check(request.url)
        with _through(proxy, request):
            response = self._proxied[proxy].handle_request(request)
        if response.status_code == 407:
            response.close()
            raise _refused(proxy, request.url, "407 Proxy Authentication Required")
        return response

    def close(self) -> None:
        self._direct.close()
        for transport in self._proxied.values():
            transport.close()


def async_transport(
    guard: HostGuard,
    routes: ProxyRoutes,
    *,
    verify: typing.Any,
    limits: httpx.Limits,
    http2: bool = False,
) -> httpx.AsyncBaseTransport:
    """The async clients' transport: pinned direct connections, and ``routes``' proxies."""
    direct = pinned.async_transport(guard, verify=verify, limits=limits, http2=http2)
    if not routes:
        return direct
    proxied: dict[Proxy, httpx.AsyncBaseTransport] = {
        proxy: httpx.AsyncHTTPTransport(
            verify=verify, limits=limits, http2=http2, trust_env=False, proxy=_httpx_proxy(proxy)
        )
        for proxy in routes.proxies()
    }
    return RoutedAsyncTransport(routes, TargetJudge(guard), direct, proxied)


def sync_transport(
    guard: HostGuard, routes: ProxyRoutes, *, verify: typing.Any, limits: httpx.Limits
) -> httpx.BaseTransport:
    """The same for the blob transfer threads' synchronous client."""
    direct = pinned.sync_transport(guard, verify=verify, limits=limits)
    if not routes:
        return direct
    proxied: dict[Proxy, httpx.BaseTransport] = {
        proxy: httpx.HTTPTransport(
            verify=verify, limits=limits, trust_env=False, proxy=_httpx_proxy(proxy)
        )
        for proxy in routes.proxies()
    }
    return RoutedSyncTransport(routes, TargetJudge(guard), direct, proxied)
