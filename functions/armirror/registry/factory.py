"""The one place a :class:`RegistryClient` is built from settings.

The CLI, ``build_pipeline`` and :class:`~armirror.pipeline.Pipeline` all build their
clients here, so a deployment and a laptop speak to registries the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from armirror.config import Settings
from armirror.reference import parse_prefix
from armirror.registry.client import RegistryClient
from armirror.registry.credentials import CredentialStore
from armirror.registry.proxies import ProxyRoutes
from armirror.registry.retry import Backoffs, RetryPolicy


def client_from_settings(
    settings: Settings,
    *,
    insecure: Iterable[str] = (),
    jobs: int = 8,
    credentials: CredentialStore | None = None,
    retry: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    backoffs: Backoffs | None = None,
    trusted: Iterable[str] = (),
    proxies: ProxyRoutes | None = None,
) -> RegistryClient:
    """A client for ``settings``: its upstream endpoints and ``jobs`` transfer threads.

    The upstream endpoints, the destination and the ``trusted`` registries are exempt
    from the host guard.  Each registry endpoint gets at least 32 connections whatever
    ``jobs`` is, so manifest HEADs and GETs keep flowing while every transfer thread is
    busy.  ``proxies`` defaults to the environment's (HTTPS_PROXY, NO_PROXY, …); a proxy
    URL armirror cannot use raises ProxyConfigError, a ConfigError.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    return RegistryClient(
        upstreams=settings.upstreams,
        insecure=set(insecure),
        credentials=credentials,
        retry=retry,
        max_connections=max(32, jobs),
        blob_threads=jobs,
        transport=transport,
        backoffs=backoffs,
        allow_private_hosts=settings.allow_private_hosts,
        trusted_registries=[*_destination_registries(settings), *trusted],
        proxies=proxies,
    )


def _destination_registries(settings: Settings) -> list[str]:
    if not settings.destination:
        return []
    return [parse_prefix(settings.destination).registry]
