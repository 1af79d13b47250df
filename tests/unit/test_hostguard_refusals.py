"""What the host guard tells an operator when it refuses a connection, and the address
forms it must read alike: zone ids, brackets, trailing dots, letter case (issue 18:
mutation survivors of armirror.registry.hostguard)."""

from __future__ import annotations

import pytest
from armirror.registry.errors import HostRefused
from armirror.registry.hostguard import (
    REMEDY,
    HostGuard,
    address_problem,
    default_resolver,
    name_problem,
)


class Recorder:
    """A resolver that answers from a table and notes each question."""

    def __init__(self, answer: list[str] | None = None) -> None:
        self.answer = answer or []
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return list(self.answer)


def refusal(guard: HostGuard, host: str, port: int = 443) -> str:
    with pytest.raises(HostRefused) as caught:
        guard.addresses(host, port)
    return str(caught.value)


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("169.254.169.254", "a link-local (metadata) address"),
        ("224.0.0.251", "a multicast address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("10.1.2.3", "a private address"),
        ("fd00::1", "a private address"),
        ("127.0.0.1", "a loopback address"),
        ("192.0.2.1", "a reserved or special-purpose address"),
        # zone ids, as getaddrinfo gives link-local and scoped addresses
        ("fe80::1%eth0", "a link-local (metadata) address"),
        ("fd00::1%eth0", "a private address"),
        ("::ffff:169.254.169.254%eth0", "a link-local (metadata) address"),
        ("64:ff9b::a9fe:a9fe%eth0", "a link-local (metadata) address"),
        ("2a00:1450::1%eth0", None),
        # an IPv4 address has no zone: that is not an address at all
        ("8.8.8.8%eth0", "8.8.8.8%eth0 is not an IP address"),
    ],
)
def test_address_problem_names_exactly_what_was_refused(address: str, problem: str) -> None:
    assert address_problem(address) == problem


def test_private_hosts_are_refused_unless_allowed() -> None:
    assert address_problem("10.0.0.1") == "a private address"
    assert address_problem("10.0.0.1", allow_private=True) is None


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("registry.example", "registry.example"),
        ("x" * 100, "x" * 59 + "…"),  # cut to 60 characters
        ("bad\naddress", "bad address"),  # no control characters in a message
    ],
)
def test_a_non_address_is_quoted_scrubbed_and_cut(address: str, shown: str) -> None:
    assert address_problem(address) == f"{shown} is not an IP address"


@pytest.mark.parametrize(
    "host",
    [
        "metadata",
        "metadata.",
        "Metadata.Google.Internal.",
        "registry.corp.internal",
        "REGISTRY.CORP.INTERNAL..",
    ],
)
def test_metadata_and_internal_names_are_refused_in_any_spelling(host: str) -> None:
    assert name_problem(host) == "the metadata server or an internal name"


def test_a_refused_name_is_not_resolved_and_the_message_says_why() -> None:
    resolver = Recorder(["8.8.8.8"])
    guard = HostGuard(resolve=resolver)
    assert refusal(guard, "metadata.google.internal.", 80) == (
        "connection to metadata.google.internal.:80 refused: it is the metadata server "
        f"or an internal name; {REMEDY}"
    )
    assert resolver.asked == []


def test_a_long_host_is_cut_to_100_characters_in_the_refusal() -> None:
    host = "a" * 150 + ".internal"
    assert refusal(HostGuard(resolve=Recorder()), host, 443) == (
        f"connection to {'a' * 99}…:443 refused: it is the metadata server or an internal "
        f"name; {REMEDY}"
    )


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("8.8.8.8", ["8.8.8.8"]),
        ("[2a00:1450::1]", ["2a00:1450::1"]),
        # the address connected to is the one checked, without its zone
        ("[2a00:1450::1%eth0]", ["2a00:1450::1"]),
        ("2a00:1450::1%eth0%lo", ["2a00:1450::1"]),
    ],
)
def test_an_allowed_literal_is_returned_bare_without_resolving(
    host: str, allowed: list[str]
) -> None:
    resolver = Recorder(["10.0.0.1"])
    assert HostGuard(resolve=resolver).addresses(host, 443) == allowed
    assert resolver.asked == []


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("10.0.0.1", "a private address"),
        ("[::1]", "a loopback address"),
        ("[fe80::1%eth0]", "a link-local (metadata) address"),
    ],
)
def test_a_refused_literal_is_not_resolved_and_the_message_says_why(
    host: str, problem: str
) -> None:
    resolver = Recorder(["8.8.8.8"])
    assert refusal(HostGuard(resolve=resolver), host, 5000) == (
        f"connection to {host}:5000 refused: it is {problem}; {REMEDY}"
    )
    assert resolver.asked == []


def test_a_private_literal_passes_where_private_hosts_are_allowed() -> None:
    guard = HostGuard(allow_private=True, resolve=Recorder())
    assert guard.addresses("10.0.0.1", 5000) == ["10.0.0.1"]
    assert guard.addresses("[::1]", 5000) == ["::1"]


def test_a_name_is_resolved_once_with_its_port_and_a_bad_answer_named() -> None:
    resolver = Recorder(["8.8.8.8", "169.254.169.254"])
    assert refusal(HostGuard(resolve=resolver), "registry.example", 8443) == (
        "connection to registry.example:8443 refused: it resolves to a link-local "
        f"(metadata) address (169.254.169.254); {REMEDY}"
    )
    assert resolver.asked == [("registry.example", 8443)]
    good = Recorder(["8.8.8.8"])
    assert HostGuard(resolve=good).addresses("registry.example", 443) == ["8.8.8.8"]
    assert good.asked == [("registry.example", 443)]


@pytest.mark.parametrize(
    ("configured", "asked"),
    [
        ("Registry.Local.", "registry.local"),
        ("registry.local", "REGISTRY.local."),
        ("[::1]", "::1"),
        ("::1", "[::1]"),
    ],
)
def test_an_exempt_endpoint_matches_in_any_spelling(configured: str, asked: str) -> None:
    assert HostGuard(exempt=[(configured, 5000)]).is_exempt(asked, 5000)
    added = HostGuard()
    added.exempt(configured, 5000)
    assert added.is_exempt(asked, 5000)
    assert not added.is_exempt(asked, 5001)


@pytest.mark.parametrize(
    ("realm", "problem"),
    [
        ("http://\x00/token", "it is not a URL"),
        ("ftp://auth.example/token", "it is not an http(s) URL"),
        ("https://user:secret@auth.example/token", "it carries credentials in its URL"),
        ("http://auth.example/token", "it is plain HTTP (a realm must be HTTPS)"),
    ],
)
def test_a_refused_realm_is_told_exactly_why(realm: str, problem: str) -> None:
    assert HostGuard().realm_problem(realm) == problem


def test_a_plain_http_realm_on_an_exempt_endpoint_defaults_to_port_80() -> None:
    guard = HostGuard(exempt=[("auth.local", 80)])
    assert guard.realm_problem("http://auth.local/token") is None
    assert guard.realm_problem("http://auth.local:8080/token") == (
        "it is plain HTTP (a realm must be HTTPS)"
    )


@pytest.mark.parametrize("realm", ["http://localhost:5000/token", "http://LocalHost/token"])
def test_a_plain_http_realm_on_localhost_passes_only_where_private_hosts_are_allowed(
    realm: str,
) -> None:
    assert HostGuard(allow_private=True).realm_problem(realm) is None
    assert HostGuard().realm_problem(realm) == "it is plain HTTP (a realm must be HTTPS)"


def test_the_real_resolver_returns_addresses_as_strings() -> None:
    assert default_resolver("192.0.2.7", 443) == ["192.0.2.7"]  # once, no port, no dupes
    local = default_resolver("localhost", 443)
    assert local and all(address_problem(a) == "a loopback address" for a in local), local
    assert default_resolver("a" * 300 + ".example", 443) == []  # a label too long for DNS


def test_a_name_that_merely_contains_an_address_is_resolved() -> None:
    resolver = Recorder(["8.8.8.8"])
    assert HostGuard(resolve=resolver).addresses("X10.0.0.1X", 443) == ["8.8.8.8"]
    assert resolver.asked == [("X10.0.0.1X", 443)]
