"""Which proxy carries a request: HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY.

A platform engineer behind a corporate proxy sets these for curl, skopeo and crane;
armirror reads them the same way:

- The variables are read by :func:`urllib.request.getproxies`, as httpx reads them:
  upper or lower case, the lower-case one winning; an empty one unsets the other.
- An https:// request goes through HTTPS_PROXY, an http:// one through HTTP_PROXY;
  either falls back to ALL_PROXY.
- A proxy URL is ``http://`` or ``https://`` (a bare ``host:port`` means ``http://``).
  Credentials in it (``http://user:password@proxy:3128``) go to the proxy as
  Proxy-Authorization and are never shown: messages name the proxy without them, and
  the password is redacted wherever it is echoed (:func:`armirror.registry.redact.scrub`).
- NO_PROXY, separated by commas or spaces, as curl reads it: ``*`` turns proxies off;
  a name matches itself and every name under it, with or without a leading ``.`` or
  ``*.`` (``example.com``, ``.example.com``); an IP address or CIDR network
  (``10.0.0.0/8``, ``fd00::/8``) matches hosts written as addresses in it; any entry may
  end in ``:PORT`` to match that port only.
- ``localhost`` and loopback addresses never go through a proxy, as in Go's net/http
  (skopeo's and crane's): loopback stand-ins are spoken to directly.

httpx has this logic only in private functions (``httpx._utils``), and its NO_PROXY
reading differs from curl's (``.example.com`` misses ``example.com``; CIDR entries match
one address), so the matching is done here; ``tests/unit/test_registry_proxies.py``
holds its table.
"""

from __future__ import annotations

import ipaddress
import os
import re
import urllib.request
from dataclasses import dataclass, field

import httpx

from armirror.config import ConfigError
from armirror.registry.hostguard import IPAddress, embedded_ipv4
from armirror.registry.redact import remember, remember_basic, scrub, url_for_log

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_HOST = re.compile(r"[A-Za-z0-9_.-]+")
DEFAULT_PORTS = {"http": 80, "https": 443}


class ProxyConfigError(ConfigError):
    """A proxy variable armirror cannot use; the message names it, never its password."""


@dataclass(frozen=True)
class Proxy:
    """One proxy: its URL without credentials, and the credentials apart (never shown)."""

    url: str
    #: The variable that named it, for messages (two variables may name one proxy).
    variable: str = field(compare=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Bypass:
    """One NO_PROXY entry: a name (and the names under it) or a network, maybe a port."""

    name: str = ""
    network: IPNetwork | None = None
    port: int | None = None

    def matches(self, host: str, ip: IPAddress | None, port: int) -> bool:
        if self.port is not None and port != self.port:
            return False
        if self.network is not None:
            return ip is not None and ip.version == self.network.version and ip in self.network
        return host == self.name or host.endswith("." + self.name)


@dataclass(frozen=True)
class ProxyRoutes:
    """The proxy for each request, from the environment (:meth:`from_environment`)."""

    http: Proxy | None = None
    https: Proxy | None = None
    bypass: tuple[Bypass, ...] = ()

    def __bool__(self) -> bool:
        return self.http is not None or self.https is not None

    def proxies(self) -> tuple[Proxy, ...]:
        """Each distinct proxy once."""
        return tuple(dict.fromkeys(p for p in (self.http, self.https) if p is not None))

    def proxy_for(self, url: httpx.URL) -> Proxy | None:
        """The proxy a request to ``url`` goes through, or None for a direct connection."""
        proxy = {"http": self.http, "https": self.https}.get(url.scheme)
        if proxy is None:
            return None
        host = url.host.lower().rstrip(".")
        ip = _address(host)
        if host == "localhost" or (ip is not None and embedded_ipv4(ip).is_loopback):
            return None
        port = url.port or DEFAULT_PORTS[url.scheme]
        if any(rule.matches(host, ip, port) for rule in self.bypass):
            return None
        return proxy

    @classmethod
    def from_environment(cls) -> ProxyRoutes:
        """The routes the environment asks for.  Raises ProxyConfigError (a ConfigError)
        for a proxy URL armirror cannot use, naming the variable."""
        found = urllib.request.getproxies()
        bypass = parse_no_proxy(found.get("no", ""))
        if bypass is None:  # NO_PROXY=*
            return cls()
        fallback = found.get("all")
        routes = {}
        for scheme in ("http", "https"):
            value, name = found.get(scheme), f"{scheme}_proxy"
            if not value and fallback:
                value, name = fallback, "all_proxy"
            routes[scheme] = parse_proxy(value, _spelling(name)) if value else None
        return cls(http=routes["http"], https=routes["https"], bypass=bypass)


def _spelling(name: str) -> str:
    """The variable as the environment spells it (lower case wins, as getproxies reads)."""
    return name if os.environ.get(name) else name.upper()


def _address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def parse_proxy(value: str, variable: str) -> Proxy:
    """A proxy URL from ``variable``; its credentials are remembered as secrets."""
    text = value.strip()
    if "://" not in text:
        text = "http://" + text
    shown = scrub(url_for_log(text), 100)
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError):
        raise ProxyConfigError(f"{variable} is not a URL ({shown})") from None
    if url.scheme not in DEFAULT_PORTS:
        raise ProxyConfigError(
            f"{variable}={shown}: armirror speaks only to HTTP proxies "
            f"(http:// or https://), not {scrub(url.scheme, 20)}://"
        )
    if not url.host:
        raise ProxyConfigError(f"{variable}={shown} names no host")
    port = DEFAULT_PORTS[url.scheme] if url.port is None else url.port
    if not (_HOST.fullmatch(url.host) or _address(url.host)) or not 0 < port < 65536:
        raise ProxyConfigError(f"{variable} is not a URL ({shown})")
    auth = None
    if url.username or url.password:
        auth = (url.username, url.password)
        remember_basic(*auth)
        remember(url.userinfo.decode("ascii", "replace"))
    host = f"[{url.host}]" if ":" in url.host else url.host
    return Proxy(url=f"{url.scheme}://{host}:{port}", auth=auth, variable=variable)


def parse_no_proxy(value: str) -> tuple[Bypass, ...] | None:
    """NO_PROXY's entries; None when it is ``*`` (no proxy for anything)."""
    rules = []
    for entry in value.replace(",", " ").split():
        entry = entry.lower()
        if entry == "*":
            return None
        rule = _bypass(entry)
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def _bypass(entry: str) -> Bypass | None:
    text = entry.split("://", 1)[-1]
    if "://" in entry:  # a URL: keep its host and port
        text = text.split("/", 1)[0]
    port: int | None = None
    if text.startswith("["):  # [v6] or [v6]:port
        inside, _, rest = text[1:].partition("]")
        text, port = inside, _port(rest.removeprefix(":"), entry) if rest else None
    elif text.count(":") == 1:  # name:port or v4:port
        text, _, digits = text.partition(":")
        port = _port(digits, entry)
    try:
        return Bypass(network=ipaddress.ip_network(text, strict=False), port=port)
    except ValueError:
        pass
    name = text.removeprefix("*").removeprefix(".").rstrip(".")
    return Bypass(name=name, port=port) if name else None


def _port(digits: str, entry: str) -> int:
    if not digits.isdigit() or not 0 < int(digits) < 65536:
        raise ProxyConfigError(f"NO_PROXY entry {scrub(entry, 100)!r} has a port that is not one")
    return int(digits)
