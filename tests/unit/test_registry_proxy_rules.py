"""The proxy rules' edges: NO_PROXY entries written as URLs, bracketed addresses and
networks, ports at their limits, proxy URLs armirror refuses and how it says so, and
which variable a message names.

tests/unit/test_registry_proxies.py holds the main table; these are the cases at its
borders.  Every message is written out in full: what a user reads is the behaviour.
"""

from __future__ import annotations

import os

import httpx
import pytest
from armirror.registry.errors import HostRefused
from armirror.registry.hostguard import HostGuard
from armirror.registry.proxied import TargetJudge
from armirror.registry.proxies import (
    Proxy,
    ProxyConfigError,
    ProxyRoutes,
    parse_no_proxy,
    parse_proxy,
)
from armirror.registry.redact import scrub

HTTPS = Proxy("http://proxy.corp.test:3128", "HTTPS_PROXY")
HTTP = Proxy("http://plain-proxy.corp.test:8080", "HTTP_PROXY")
SPEAKS_ONLY = "armirror speaks only to HTTP proxies (http:// or https://)"


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name == "REQUEST_METHOD":
            monkeypatch.delenv(name)


def proxied(no_proxy: str, url: str) -> bool:
    bypass = parse_no_proxy(no_proxy)
    assert bypass is not None
    return ProxyRoutes(http=HTTP, https=HTTPS, bypass=bypass).proxy_for(httpx.URL(url)) is not None


@pytest.mark.parametrize(
    ("no_proxy", "url", "expected"),
    [
        # A URL entry keeps its host and port, whatever its path says.
        ("https://ghcr.io/v2/", "https://ghcr.io/v2/", False),
        ("https://ghcr.io/v2/", "https://v2/", True),
        (
            "http://internal.corp.test/go?to=https://other.test",
            "https://internal.corp.test/",
            False,
        ),
        ("http://internal.corp.test/go?to=https://other.test", "https://other.test/", True),
        ("https://quay.io:8443/path", "https://quay.io:8443/v2/", False),
        ("https://quay.io:8443/path", "https://quay.io/v2/", True),
        # A bracketed address without a port matches it on every port.
        ("[fd12::1]", "https://[fd12::1]:8443/v2/", False),
        ("[fd12::1]", "https://[fd12::2]/v2/", True),
        # A network written with host bits set is the network (curl, Go).
        ("10.1.2.3/8", "https://10.20.30.40/v2/", False),
        ("10.1.2.3/8", "https://11.1.2.3/v2/", True),
        ("fd12::1/16", "https://[fd12:ffff::9]/v2/", False),
        # Ports at the limits of the range.
        ("quay.io:1", "https://quay.io:1/v2/", False),
        ("quay.io:65535", "https://quay.io:65535/v2/", False),
        ("quay.io:65535", "https://quay.io/v2/", True),
    ],
)
def test_no_proxy_entries_at_the_edges(no_proxy: str, url: str, expected: bool) -> None:
    assert proxied(no_proxy, url) is expected


@pytest.mark.parametrize("value", [".", "*.", "*..", ". *. ,"])
def test_a_no_proxy_entry_that_names_nothing_is_ignored(value: str) -> None:
    assert parse_no_proxy(value) == ()


@pytest.mark.parametrize(
    "entry", ["quay.io:65536", "[fd12::1]:5000]", "[fd12::1]:", "10.0.0.1:0", "h:65536"]
)
def test_a_no_proxy_entry_with_a_broken_port_is_refused(entry: str) -> None:
    with pytest.raises(ProxyConfigError) as caught:
        parse_no_proxy(f"example.com {entry}")
    assert str(caught.value) == f"NO_PROXY entry {entry!r} has a port that is not one"


def test_a_long_no_proxy_entry_is_cut_in_the_message() -> None:
    entry = "a" * 150 + ":x"
    with pytest.raises(ProxyConfigError) as caught:
        parse_no_proxy(entry)
    assert str(caught.value) == f"NO_PROXY entry {'a' * 99 + '…'!r} has a port that is not one"


def test_no_proxy_from_the_environment_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.test:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://plain-proxy.corp.test:8080")
    monkeypatch.setenv("NO_PROXY", "quay.io, 10.0.0.0/8")
    routes = ProxyRoutes.from_environment()
    assert routes.proxy_for(httpx.URL("https://quay.io/v2/")) is None
    assert routes.proxy_for(httpx.URL("http://10.1.1.1:5000/v2/")) is None
    assert routes.proxy_for(httpx.URL("https://ghcr.io/v2/")) == HTTPS
    assert routes.proxy_for(httpx.URL("http://plain.test/v2/")) == HTTP


def test_without_no_proxy_nothing_is_bypassed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.test:3128")
    assert ProxyRoutes.from_environment().bypass == ()


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("HTTPS_PROXY", "socks5://proxy.corp.test:1080", "HTTPS_PROXY"),
        ("https_proxy", "socks5://proxy.corp.test:1080", "https_proxy"),
        ("HTTP_PROXY", "socks5://proxy.corp.test:1080", "HTTP_PROXY"),
        ("http_proxy", "socks5://proxy.corp.test:1080", "http_proxy"),
        ("ALL_PROXY", "socks5://proxy.corp.test:1080", "ALL_PROXY"),
        ("all_proxy", "socks5://proxy.corp.test:1080", "all_proxy"),
    ],
)
def test_a_refused_proxy_names_the_variable_as_it_is_spelled(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ProxyConfigError) as caught:
        ProxyRoutes.from_environment()
    assert str(caught.value) == f"{named}={value}: {SPEAKS_ONLY}, not socks5://"


@pytest.mark.parametrize(
    ("environment", "variables"),
    [
        ({"HTTPS_PROXY": "http://a:1"}, (None, "HTTPS_PROXY")),
        ({"https_proxy": "http://a:1", "HTTP_PROXY": "http://b:2"}, ("HTTP_PROXY", "https_proxy")),
        ({"all_proxy": "http://a:1"}, ("all_proxy", "all_proxy")),
        ({"ALL_PROXY": "http://a:1", "http_proxy": "http://b:2"}, ("http_proxy", "ALL_PROXY")),
    ],
)
def test_each_proxy_knows_the_variable_that_named_it(
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    variables: tuple[str | None, str | None],
) -> None:
    """The variable goes into the 407 message: "the credentials go in HTTPS_PROXY"."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    routes = ProxyRoutes.from_environment()
    found = (routes.http and routes.http.variable, routes.https and routes.https.variable)
    assert found == variables


@pytest.mark.parametrize(
    ("routes", "truth"),
    [
        (ProxyRoutes(), False),
        (ProxyRoutes(http=HTTP), True),
        (ProxyRoutes(https=HTTPS), True),
        (ProxyRoutes(http=HTTP, https=HTTPS), True),
    ],
)
def test_routes_are_true_when_any_proxy_is_set(routes: ProxyRoutes, truth: bool) -> None:
    assert bool(routes) is truth


def test_two_proxies_are_two_pools_in_order() -> None:
    assert ProxyRoutes(http=HTTP, https=HTTPS).proxies() == (HTTP, HTTPS)
    assert ProxyRoutes(https=HTTPS).proxies() == (HTTPS,)
    assert ProxyRoutes().proxies() == ()


@pytest.mark.parametrize(
    ("url", "proxy"),
    [
        # A scoped link-local or loopback address is judged by its address.
        ("http://[::1%25lo]:5000/v2/", None),
        ("https://[fe80::1%25eth0]/v2/", None),
        ("https://[fe90::1%25eth0]/v2/", HTTPS),
        # and so is an IPv4 address with one (or two) attached
        ("http://127.0.0.1%25lo:5000/v2/", None),
        ("http://127.0.0.1%25a%25b:5000/v2/", None),
        ("http://10.0.0.1%25lo:5000/v2/", HTTP),
    ],
)
def test_addresses_with_a_zone(url: str, proxy: Proxy | None) -> None:
    bypass = parse_no_proxy("fe80::/16")
    assert bypass is not None
    routes = ProxyRoutes(http=HTTP, https=HTTPS, bypass=bypass)
    assert routes.proxy_for(httpx.URL(url)) == proxy


def test_a_proxy_without_credentials_sends_none() -> None:
    proxy = parse_proxy("http://proxy.corp.test:3128", "HTTPS_PROXY")
    assert proxy.auth is None
    assert proxy.variable == "HTTPS_PROXY"


@pytest.mark.parametrize(
    ("value", "auth"),
    [
        ("http://jane@proxy.corp.test:3128", ("jane", "")),
        ("http://:Only-Pass-77@proxy.corp.test:3128", ("", "Only-Pass-77")),
        ("http://jane:a:b:c@proxy.corp.test:3128", ("jane", "a:b:c")),
    ],
)
def test_partial_credentials_still_go_to_the_proxy(value: str, auth: tuple[str, str]) -> None:
    proxy = parse_proxy(value, "HTTPS_PROXY")
    assert proxy.auth == auth
    assert proxy.url == "http://proxy.corp.test:3128"


def test_the_userinfo_as_written_is_a_secret_too() -> None:
    """A proxy that echoes the URL-encoded userinfo it was given is redacted."""
    parse_proxy("http://corp%5Cann:Enc%40ded-Pass-5@proxy.corp.test:3128", "HTTPS_PROXY")
    assert scrub("bad user corp%5Cann:Enc%40ded-Pass-5 here") == "bad user REDACTED here"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://[::1/", "HTTPS_PROXY is not a URL (http://[::1/)"),
        ("http://proxy.corp.test:65536", "HTTPS_PROXY is not a URL (http://proxy.corp.test:65536)"),
        ("http://proxy.corp.test:0", "HTTPS_PROXY is not a URL (http://proxy.corp.test:0)"),
        (
            "averyveryverylongschemename://proxy.corp.test:1",
            "HTTPS_PROXY=averyveryverylongschemename://proxy.corp.test:1: "
            f"{SPEAKS_ONLY}, not averyveryverylongsc…://",
        ),
        (
            "socks5://" + "p" * 120 + ":1080",
            f"HTTPS_PROXY={('socks5://' + 'p' * 120)[:99]}…: {SPEAKS_ONLY}, not socks5://",
        ),
    ],
)
def test_a_proxy_url_armirror_cannot_use_says_why(value: str, message: str) -> None:
    with pytest.raises(ProxyConfigError) as caught:
        parse_proxy(value, "HTTPS_PROXY")
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("http://proxy.corp.test:1", "http://proxy.corp.test:1"),
        ("http://proxy.corp.test:65535", "http://proxy.corp.test:65535"),
        ("HTTP://Proxy.Corp.Test:3128", "http://proxy.corp.test:3128"),
        ("https://10.9.8.7", "https://10.9.8.7:443"),
        ("[fd00::2]:3128", "http://[fd00::2]:3128"),
    ],
)
def test_proxy_urls_armirror_takes(value: str, url: str) -> None:
    assert parse_proxy(value, "HTTPS_PROXY").url == url


class CountingResolver:
    """This machine's DNS as the host guard sees it (its one seam): a table, counted."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return self.table.get(host, [])


def judge_with(table: dict[str, list[str]]) -> tuple[TargetJudge, CountingResolver]:
    resolver = CountingResolver(table)
    return TargetJudge(HostGuard(resolve=resolver)), resolver


def test_a_target_that_passed_is_not_resolved_again() -> None:
    judge, resolver = judge_with({"quay.io": ["3.3.3.3"]})
    url = httpx.URL("https://quay.io/v2/")
    assert not judge.passed(url)
    judge.check(url)
    assert judge.passed(url)
    judge.check(url)
    assert resolver.asked == [("quay.io", 443)]
    # another port is another target
    judge.check(httpx.URL("http://quay.io/v2/"))
    assert resolver.asked == [("quay.io", 443), ("quay.io", 80)]
    assert not judge.passed(httpx.URL("https://quay.io:8443/v2/"))


def test_an_exempt_target_passes_without_a_lookup() -> None:
    judge, resolver = judge_with({})
    judge.guard.exempt("plain.corp.test", 80)
    judge.guard.exempt("registry.corp.test", 443)
    for url in ("http://plain.corp.test/v2/", "https://registry.corp.test/v2/"):
        assert judge.passed(httpx.URL(url))
        judge.check(httpx.URL(url))
    assert not judge.passed(httpx.URL("https://plain.corp.test/v2/"))
    assert resolver.asked == []


def test_a_target_that_does_not_resolve_here_is_refused() -> None:
    judge, _ = judge_with({})
    with pytest.raises(HostRefused) as caught:
        judge.check(httpx.URL("https://internal.corp.test:8443/v2/"))
    assert str(caught.value) == (
        "connection to internal.corp.test:8443 refused: it does not resolve here, and behind "
        "a proxy armirror judges each host by the addresses it resolves to before the proxy "
        "is asked; name the registry with --upstream (ARMIRROR_UPSTREAMS) or as the "
        "destination to trust it, or let this machine resolve it"
    )
    assert not judge.passed(httpx.URL("https://internal.corp.test:8443/v2/"))


def test_a_target_that_resolves_here_to_a_private_address_is_refused() -> None:
    judge, resolver = judge_with({"rebind.corp.test": ["3.3.3.3", "10.1.2.3"]})
    with pytest.raises(HostRefused) as caught:
        judge.check(httpx.URL("http://rebind.corp.test/v2/"))
    assert str(caught.value).startswith(
        "connection to rebind.corp.test:80 refused: it resolves to a private address (10.1.2.3)"
    )
    assert resolver.asked == [("rebind.corp.test", 80)]
    assert not judge.passed(httpx.URL("http://rebind.corp.test/v2/"))


def test_a_long_target_name_is_cut_in_the_message() -> None:
    judge, _ = judge_with({})
    host = "a" * 150 + ".test"
    with pytest.raises(HostRefused) as caught:
        judge.check(httpx.URL(f"https://{host}/v2/"))
    assert str(caught.value).startswith(f"connection to {'a' * 99}…:443 refused")
