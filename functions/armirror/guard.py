"""Which registry hosts a caller may name, judged before anything is queued.

``request_copy``, ``on_pull_event`` and ``copy_image`` refuse a reference whose registry
is an internal host at once, with a reason.  The rules are the registry client's host
guard (:mod:`armirror.registry.hostguard`), which judges every connection again when it
is made, redirects and token realms included; this early check only spares a queue slot
and gives the caller a clear answer.

Names that do not resolve are judged by name alone: ``metadata.google.internal`` is
refused even where DNS is unavailable.  Registries the operator mapped with
ARMIRROR_UPSTREAMS are trusted.  Without ARMIRROR_ALLOW_PRIVATE_HOSTS an IP literal is
refused even when public: a registry is named by its host name.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

from armirror.registry.hostguard import address_problem, name_problem

Resolver = Callable[[str], Iterable[str]]


def _default_resolver(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, OSError):
        return []
    return [str(info[4][0]) for info in infos]


def no_resolver(host: str) -> list[str]:
    """Judge by name and literal only (the connection-time guard resolves)."""
    return []


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
    problem = name_problem(host)
    if problem:  # the metadata server: refused even when private hosts are allowed
        return f"registry host {registry!r} is {problem}"
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        problem = address_problem(literal, allow_private=allow_private)
        if problem:
            return f"registry host {registry!r} is {problem}"
        if not allow_private:
            return (
                f"registry host {registry!r} is an IP address; name the registry by its host name"
            )
        return None
    if host == "localhost" and not allow_private:
        return f"registry host {registry!r} is a loopback address"
    for address in resolve(host):
        problem = address_problem(address, allow_private=allow_private)
        if problem:
            return f"registry host {registry!r} resolves to {problem} ({address})"
    return None
