"""Where a registry lives: the URL its requests go to.

A reference keeps its registry's name (``docker.io/library/nginx``) while the requests
may go elsewhere: an upstream the operator mapped (``docker.io=https://mirror.gcr.io``),
Docker Hub's API host, plain HTTP for loopback and for hosts named insecure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

import httpx

from armirror.reference import DOCKER_HUB

DOCKER_HUB_ENDPOINT = "https://registry-1.docker.io"


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


def host_port(url: str | httpx.URL) -> tuple[str, int]:
    """The (lower-case host, port) a URL connects to, default ports filled in."""
    parsed = httpx.URL(str(url))
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return parsed.host.lower().rstrip("."), port


class Endpoints:
    """Registry name -> base URL, from the operator's upstream mappings."""

    def __init__(
        self, upstreams: Mapping[str, str] | None = None, insecure: Iterable[str] = ()
    ) -> None:
        self.upstreams = {k.lower(): v.rstrip("/") for k, v in (upstreams or {}).items()}
        self.insecure = {h.lower() for h in insecure}

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
