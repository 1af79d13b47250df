"""Which addresses the copier may connect to (issue 12 §1).

The copier runs inside the organisation's network with credentials.  Anyone who can
name an image (a log entry, a task body, a request_copy call) or run a registry (its
redirects, its token realm) could otherwise make it reach the metadata server or an
internal service, and read the answer back in an error.  So every connection the
registry client opens is judged here: the source registry, each redirect hop, each
token realm.

- Only globally routable addresses pass.  An IPv6 address that embeds an IPv4 one
  (IPv4-mapped, 6to4, NAT64) is judged by the IPv4 address it carries.
- Where the operator allows private hosts (local mode, tests), loopback and private
  networks (RFC 1918, unique-local IPv6) pass too; link-local (the metadata server),
  shared (100.64.0.0/10), "this network" (0.0.0.0/8) and other special ranges never do.
- The configured upstream endpoints and the destination are exempt: the operator named
  them.
- A name is resolved once and the connection goes to the address that was checked
  (:mod:`armirror.registry.pinned`), so a DNS answer that changes gets no window.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

import httpx

from armirror.registry.errors import HostRefused
from armirror.registry.redact import scrub

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: host, port -> the addresses it resolves to (empty when it does not resolve).
Resolver = Callable[[str, int], list[str]]

METADATA_NAMES = frozenset({"metadata.google.internal", "metadata", "metadata.goog"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
#: What "private hosts" means when the operator allows them.
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
REMEDY = (
    "only the configured upstream endpoints and the destination may be internal "
    "(ARMIRROR_UPSTREAMS, ARMIRROR_DESTINATION; ARMIRROR_ALLOW_PRIVATE_HOSTS for loopback "
    "and private networks in local mode)"
)


def default_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


def embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), else ``ip``."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_problem(address: str | IPAddress, *, allow_private: bool = False) -> str | None:
    """Why the copier must not connect to ``address``, or None.

    An IPv6 zone id (``fe80::1%eth0``, as getaddrinfo gives it) is read by
    :mod:`ipaddress` itself and does not change the verdict.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"{scrub(str(address), 60)} is not an IP address"
    ip = embedded_ipv4(ip)
    if ip.is_link_local:
        return "a link-local (metadata) address"
    if ip.is_multicast:
        return "a multicast address"
    if ip in _SHARED:
        return "a shared (carrier-grade NAT) address"
    private = next((n for n in PRIVATE_NETWORKS if ip.version == n.version and ip in n), None)
    if private is not None:
        if allow_private:
            return None
        return "a loopback address" if ip.is_loopback else "a private address"
    if not ip.is_global:
        return "a reserved or special-purpose address"
    return None


def name_problem(host: str) -> str | None:
    """Names refused whatever they resolve to: the metadata server's."""
    name = host.lower().rstrip(".")
    if name in METADATA_NAMES or name.endswith(".internal"):
        return "the metadata server or an internal name"
    return None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


class HostGuard:
    """Judge each connection by host and port; exempt the operator's own endpoints."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        exempt: Iterable[tuple[str, int]] = (),
        resolve: Resolver = default_resolver,
    ) -> None:
        self.allow_private = allow_private
        self._exempt = {(host.lower().strip("[]").rstrip("."), port) for host, port in exempt}
        self._resolve = resolve

    def exempt(self, host: str, port: int) -> None:
        """Trust ``host:port`` from now on (an endpoint the operator configured)."""
        self._exempt.add((host.lower().strip("[]").rstrip("."), port))

    def is_exempt(self, host: str, port: int) -> bool:
        return (host.lower().strip("[]").rstrip("."), port) in self._exempt

    def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses to connect to for ``host:port``: resolved once, each
        one allowed.  Raises HostRefused; an empty list means the name did not resolve."""
        where = f"{scrub(host, 100)}:{port}"

        def refused(why: str) -> HostRefused:
            return HostRefused(f"connection to {where} refused: it {why}; {REMEDY}")

        problem = name_problem(host)
        if problem:
            raise refused(f"is {problem}")
        literal = _literal(host)
        if literal is not None:
            problem = address_problem(literal, allow_private=self.allow_private)
            if problem:
                raise refused(f"is {problem}")
            return [str(literal)]
        found = self._resolve(host, port)
        for address in found:
            problem = address_problem(address, allow_private=self.allow_private)
            if problem:
                raise refused(f"resolves to {problem} ({address})")
        return found

    def realm_problem(self, realm: str) -> str | None:
        """Why a token realm must not be asked (credentials go with the request), or None.

        A realm must be HTTPS, but for a plain-HTTP realm on loopback where private
        hosts are allowed, or on an exempt endpoint; its address is judged when the
        connection is made, like every other.
        """
        try:
            url = httpx.URL(realm)
        except (httpx.InvalidURL, TypeError):
            return "it is not a URL"
        if url.scheme not in ("https", "http") or not url.host:
            return "it is not an http(s) URL"
        if url.userinfo:
            return "it carries credentials in its URL"
        if url.scheme == "https":
            return None
        port = url.port or 80
        if self.is_exempt(url.host, port):
            return None
        literal = _literal(url.host)
        loopback = url.host.lower() == "localhost" or (literal is not None and literal.is_loopback)
        if loopback and self.allow_private:
            return None
        return "it is plain HTTP (a realm must be HTTPS)"
