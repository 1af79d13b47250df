"""An asynchronous OCI distribution client on httpx.

One :class:`RegistryClient` talks to every registry a run touches.  It is assembled
from one module per concern, as go-containerregistry's ``remote/transport`` is:

- :mod:`~armirror.registry.endpoints`: where a registry lives;
- :mod:`~armirror.registry.session`: connections, auth, one request retried;
- :mod:`~armirror.registry.retry`: the retry policy and ``Retry-After``;
- :mod:`~armirror.registry.errors`: answers mapped onto errors a caller can act on;
- :mod:`~armirror.registry.manifest_calls`: manifests, tags and referrers;
- :mod:`~armirror.registry.blob_transfer`: blobs and the threaded transfer.

Build one from settings with :func:`armirror.registry.factory.client_from_settings`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import httpx

from armirror.registry.credentials import CredentialStore
from armirror.registry.hostguard import HostGuard
from armirror.registry.manifest_calls import ManifestCalls
from armirror.registry.proxies import ProxyRoutes
from armirror.registry.resumable import RESUMABLE_MIN_SIZE
from armirror.registry.resumable_transfer import ResumableBlobs
from armirror.registry.retry import Backoffs, RetryPolicy


class RegistryClient(ManifestCalls, ResumableBlobs):
    """Speak the distribution API to any number of registries, with shared connection pools.

    ``transport`` replaces the network (``httpx.MockTransport`` in tests); it serves the
    blob transfer threads too when it is also a synchronous transport.  Clients that
    share ``backoffs`` honour each other's Retry-After per registry endpoint.

    Every connection goes through the host guard (issue 12 §1): upstream endpoints and
    ``trusted_registries`` (the destination) are exempt; other hosts must be globally
    routable, or loopback/private with ``allow_private_hosts``.  ``proxies`` (default:
    HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY from the environment) says which
    requests go through a proxy; their targets are judged before the proxy is asked.
    """

    def __init__(
        self,
        *,
        upstreams: Mapping[str, str | Sequence[str]] | None = None,
        insecure: frozenset[str] | set[str] = frozenset(),
        credentials: CredentialStore | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 32,
        blob_threads: int = 8,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        blob_transport: httpx.BaseTransport | None = None,
        backoffs: Backoffs | None = None,
        resumable_min_size: int = RESUMABLE_MIN_SIZE,
        allow_private_hosts: bool = False,
        trusted_registries: Iterable[str] = (),
        guard: HostGuard | None = None,
        proxies: ProxyRoutes | None = None,
    ) -> None:
        super().__init__(
            resumable_min_size=resumable_min_size,
            upstreams=upstreams,
            insecure=insecure,
            credentials=credentials,
            retry=retry,
            max_connections=max_connections,
            timeout=timeout,
            transport=transport,
            blob_threads=blob_threads,
            blob_transport=blob_transport,
            backoffs=backoffs,
            allow_private_hosts=allow_private_hosts,
            trusted_registries=trusted_registries,
            guard=guard,
            proxies=proxies,
        )

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._close_connections()
        self._close_blob_threads()
