"""Where a registry lives: the URLs its requests go to.

A reference keeps its registry's name (``docker.io/library/nginx``) while the requests
may go elsewhere: the endpoints the operator mapped, tried in order
(``docker.io=https://mirror.gcr.io,https://registry-1.docker.io``), Docker Hub's API
host, plain HTTP for loopback and for hosts named insecure.  Writes, and everything
but source reads, go to a registry's first endpoint.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

import httpx

from armirror.reference import DOCKER_HUB

DOCKER_HUB_ENDPOINT = "https://registry-1.docker.io"


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost, with or without a port (``[::1]:5000``)."""
    name = host.lower()
    if name.startswith("["):  # [v6] or [v6]:port
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:  # name:port or v4:port; a bare v6 address has more
        name = name.partition(":")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_port(url: str | httpx.URL) -> tuple[str, int]:
    """The (lower-case host, port) a URL connects to, default ports filled in."""
    parsed = httpx.URL(str(url))
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.host.lower().rstrip("."), port


class Endpoints:
    """Registry name -> base URLs, from the operator's upstream mappings."""

    def __init__(
        self,
        upstreams: Mapping[str, str | Sequence[str]] | None = None,
        insecure: Iterable[str] = (),
    ) -> None:
        self.upstreams: dict[str, tuple[str, ...]] = {}
        for registry, urls in (upstreams or {}).items():
            listed = (urls,) if isinstance(urls, str) else tuple(urls)
            if not listed:
                raise ValueError(f"no endpoint for {registry}")
            self.upstreams[registry.lower()] = tuple(u.rstrip("/") for u in listed)
        self.insecure = {h.lower() for h in insecure}

    def candidates(self, registry: str) -> tuple[str, ...]:
        """Every endpoint of a registry, in the order they are tried for reads."""
        mapped = self.upstreams.get(registry.lower())
        return mapped if mapped else (self.base_url(registry),)

    def base_url(self, registry: str) -> str:
        """The first endpoint of a registry name: a mapped upstream, or the registry."""
        key = registry.lower()
        if key in self.upstreams:
            return self.upstreams[key][0]
        if key == DOCKER_HUB:
            return DOCKER_HUB_ENDPOINT
        scheme = "http" if is_loopback(key) or key in self.insecure else "https"
        return f"{scheme}://{registry}"
