"""Which proxy a request takes: the environment as curl, skopeo and crane read it.

The proxies themselves are exercised against a real forward proxy in
tests/integration/test_proxy.py; these are the tables behind them.
"""

from __future__ import annotations

import os

import httpx
import pytest
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


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy") or name == "REQUEST_METHOD":
            monkeypatch.delenv(name)


def routes(no_proxy: str) -> ProxyRoutes:
    bypass = parse_no_proxy(no_proxy)
    assert bypass is not None
    return ProxyRoutes(http=HTTP, https=HTTPS, bypass=bypass)


@pytest.mark.parametrize(
    ("no_proxy", "url", "proxied"),
    [
        ("", "https://registry-1.docker.io/v2/", True),
        ("", "http://registry.corp.test:5000/v2/", True),
        # a name matches itself and every name under it, leading dot or not (curl)
        ("docker.io", "https://registry-1.docker.io/v2/", False),
        ("docker.io", "https://docker.io/v2/", False),
        (".docker.io", "https://docker.io/v2/", False),
        ("*.docker.io", "https://auth.docker.io/token", False),
        ("docker.io", "https://notdocker.io/v2/", True),
        ("docker.io", "https://docker.io.evil.test/v2/", True),
        ("DOCKER.IO.", "https://Registry-1.Docker.IO./v2/", False),
        # a port narrows an entry to it; the URL's default port counts
        ("quay.io:443", "https://quay.io/v2/", False),
        ("quay.io:443", "https://quay.io:8443/v2/", True),
        ("quay.io:80", "https://quay.io/v2/", True),
        # addresses and networks match hosts written as addresses
        ("10.0.0.0/8", "https://10.20.30.40/v2/", False),
        ("10.0.0.0/8", "https://11.0.0.1/v2/", True),
        ("10.0.0.0/8", "https://ten.corp.test/v2/", True),  # a name is not resolved for this
        ("192.168.1.5", "http://192.168.1.5:5000/v2/", False),
        ("192.168.1.5:5000", "http://192.168.1.5:5001/v2/", True),
        ("fd00::/8", "https://[fd12::1]/v2/", False),
        ("[fd12::1]:5000", "https://[fd12::1]:5000/v2/", False),
        ("[fd12::1]:5000", "https://[fd12::1]/v2/", True),
        # separators: commas, spaces, both
        ("example.com, gcr.io quay.io", "https://quay.io/v2/", False),
        ("example.com,,gcr.io", "https://mirror.gcr.io/v2/", False),
        # a URL entry keeps its host and port
        ("https://ghcr.io", "https://ghcr.io/v2/", False),
        # loopback never goes through a proxy, as in Go's net/http (skopeo, crane)
        ("", "http://localhost:5000/v2/", False),
        ("", "http://127.0.0.1:5000/v2/", False),
        ("", "http://127.9.9.9:5000/v2/", False),
        ("", "http://[::1]:5000/v2/", False),
        ("", "http://[::ffff:127.0.0.1]:5000/v2/", False),
        ("", "https://localhost.corp.test/v2/", True),
    ],
)
def test_proxy_for(no_proxy: str, url: str, proxied: bool) -> None:
    chosen = routes(no_proxy).proxy_for(httpx.URL(url))
    expected = (HTTPS if url.startswith("https:") else HTTP) if proxied else None
    assert chosen == expected


def test_no_proxy_star_turns_proxies_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.test:3128")
    monkeypatch.setenv("NO_PROXY", "example.com, *")
    assert not ProxyRoutes.from_environment()


@pytest.mark.parametrize(
    ("environment", "https", "http"),
    [
        ({}, None, None),
        ({"HTTPS_PROXY": "http://a:1"}, "http://a:1", None),
        ({"https_proxy": "http://a:1"}, "http://a:1", None),
        ({"HTTP_PROXY": "http://b:2"}, None, "http://b:2"),
        # lower case wins, as urllib and httpx read them
        (
            {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:1"},
            "http://lower:1",
            None,
        ),
        # ALL_PROXY for whichever scheme has none of its own
        ({"ALL_PROXY": "http://all:3", "HTTP_PROXY": "http://b:2"}, "http://all:3", "http://b:2"),
        ({"all_proxy": "http://all:3"}, "http://all:3", "http://all:3"),
        # a bare host:port is http://, a URL without a port gets its scheme's
        ({"HTTPS_PROXY": "proxy.corp.test:3128"}, "http://proxy.corp.test:3128", None),
        ({"HTTPS_PROXY": "https://proxy.corp.test"}, "https://proxy.corp.test:443", None),
        ({"HTTPS_PROXY": "http://[fd00::1]:3128/"}, "http://[fd00::1]:3128", None),
    ],
)
def test_from_environment(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], https: str, http: str
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    found = ProxyRoutes.from_environment()
    assert (found.https and found.https.url, found.http and found.http.url) == (https, http)


def test_an_empty_lower_case_variable_unsets_the_upper_case_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://a:1")
    monkeypatch.setenv("https_proxy", "")
    assert not ProxyRoutes.from_environment()


def test_one_proxy_for_both_schemes_is_one_pool() -> None:
    one = parse_proxy("http://proxy.corp.test:3128", "HTTPS_PROXY")
    same = parse_proxy("proxy.corp.test:3128", "HTTP_PROXY")
    assert ProxyRoutes(http=same, https=one).proxies() == (one,)


def test_credentials_are_kept_apart_and_never_shown() -> None:
    proxy = parse_proxy("http://corp%5Cjane:S3cret%40Proxy!@proxy.corp.test:3128", "HTTPS_PROXY")
    assert proxy.url == "http://proxy.corp.test:3128"
    assert proxy.auth == ("corp\\jane", "S3cret@Proxy!")
    assert "S3cret" not in repr(proxy) and "S3cret" not in repr(ProxyRoutes(https=proxy))
    # Once read, the password is a known secret: an echo of it anywhere is redacted.
    assert "S3cret@Proxy!" not in scrub("the proxy said: S3cret@Proxy! is wrong")
    # So is the userinfo as it was written, percent-encoded, quoted without its URL.
    echoed = scrub("proxy login corp%5Cjane:S3cret%40Proxy! refused")
    assert "S3cret%40Proxy!" not in echoed and echoed.startswith("proxy login")
    # And a proxy URL quoted whole loses its userinfo, read or not.
    assert "Other-Pass" not in scrub("HTTPS_PROXY=http://joe:Other-Pass@proxy.corp.test:3128")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("socks5://jane:Hidden-Pass-1@proxy.corp.test:1080", "only to HTTP proxies"),
        ("socks5h://proxy.corp.test:1080", "not socks5h://"),
        ("http://jane:Hidden-Pass-1@:3128", "no host"),
        ("http://jane:Hidden-Pass-1@proxy corp:3128", "not a URL"),
        ("http://jane:Hidden-Pass-1@proxy.corp.test:99999", "not a URL"),
    ],
)
def test_a_proxy_url_armirror_cannot_use(value: str, says: str) -> None:
    with pytest.raises(ProxyConfigError) as caught:
        parse_proxy(value, "HTTPS_PROXY")
    message = str(caught.value)
    assert says in message and message.startswith("HTTPS_PROXY")
    assert "Hidden-Pass-1" not in message


@pytest.mark.parametrize("entry", ["example.com:http", "example.com:0", "[::1]:99999", "h:"])
def test_a_no_proxy_port_that_is_not_one(entry: str) -> None:
    with pytest.raises(ProxyConfigError, match="NO_PROXY entry"):
        parse_no_proxy(entry)
