"""Which registry hosts a caller of request_copy may name.

The copier runs inside the organisation's network with credentials; a caller who could
point it at ``169.254.169.254`` or an internal service could use it to reach them.  So a
host that is an IP literal, or resolves to a loopback, private, link-local, reserved or
metadata address, is refused unless the operator allows private hosts.  Names that do
not resolve are judged by name alone: ``metadata.google.internal`` is refused even where
DNS is unavailable.  Registries the operator mapped with ARMIRROR_UPSTREAMS are trusted.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "metadata.goog"})
Resolver = Callable[[str], Iterable[str]]


def _default_resolver(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    return [str(info[4][0]) for info in infos]


def _forbidden_address(address: str) -> str | None:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local (metadata) address"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return "a reserved address"
    return None


def host_problem(
    registry: str,
    *,
    allow_private: bool = False,
    trusted: Iterable[str] = (),
    resolve: Resolver = _default_resolver,
) -> str | None:
    """Why a caller may not name ``registry`` (a host with optional port), or None."""
    name = registry.lower()
    if name in {t.lower() for t in trusted}:
        return None
    host = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    host = host.strip("[]").rstrip(".")
    # The metadata server is refused even when private hosts are allowed.
    if host in METADATA_NAMES or host.endswith(".internal"):
        return f"registry host {registry!r} is the metadata server or an internal name"
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if literal.is_link_local:
            return f"registry host {registry!r} is a link-local (metadata) address"
        if allow_private:
            return None
        return f"registry host {registry!r} is an IP address; name the registry by its host name"
    if host == "localhost" and not allow_private:
        return f"registry host {registry!r} is loopback"
    for address in resolve(host):
        reason = _forbidden_address(address)
        if reason and (not allow_private or "link-local" in reason):
            return f"registry host {registry!r} resolves to {reason} ({address})"
    return None
