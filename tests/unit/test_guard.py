"""request_copy's host guard: callers cannot point the copier at internal addresses."""

from __future__ import annotations

import pytest
from armirror.guard import _default_resolver, host_problem, no_resolver


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    return lambda host: table.get(host, [])


PUBLIC = resolver({"registry-1.docker.io": ["54.1.2.3"], "quay.io": ["2600:1f18::1"]})


@pytest.mark.parametrize(
    "registry",
    ["169.254.169.254", "10.0.0.8:5000", "127.0.0.1:5000", "[::1]", "192.168.1.4"],
)
def test_ip_literals_are_refused(registry: str) -> None:
    problem = host_problem(registry, resolve=PUBLIC)
    assert problem is not None and registry.split(":")[0].strip("[]") in problem


@pytest.mark.parametrize(
    "name", ["metadata.google.internal", "METADATA.google.internal.", "metadata"]
)
def test_metadata_names_refused_without_dns(name: str) -> None:
    # No resolver answers: judged by name alone.
    assert "metadata" in (host_problem(name, resolve=resolver({})) or "")


def test_metadata_refused_even_when_private_hosts_allowed() -> None:
    assert host_problem("metadata.google.internal", allow_private=True) is not None
    assert host_problem("169.254.169.254", allow_private=True) is not None


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.1.2.3", "private"),
        ("127.0.0.2", "loopback"),
        ("169.254.10.1", "link-local"),
        ("fd00::1", "private"),
    ],
)
def test_names_resolving_to_internal_addresses_are_refused(address: str, kind: str) -> None:
    problem = host_problem(
        "registry.corp.example", resolve=resolver({"registry.corp.example": [address]})
    )
    assert problem is not None and kind in problem


def test_public_hosts_pass() -> None:
    assert host_problem("registry-1.docker.io", resolve=PUBLIC) is None
    assert host_problem("quay.io", resolve=PUBLIC) is None
    assert host_problem("unresolvable.example", resolve=resolver({})) is None


def test_private_allowed_by_operator() -> None:
    assert host_problem("10.0.0.8:5000", allow_private=True) is None
    assert host_problem("localhost:5000", allow_private=True) is None
    assert host_problem("localhost:5000") is not None


def test_upstream_mapped_registries_are_trusted() -> None:
    # docker.io mapped by the operator to a loopback mirror stays allowed.
    internal = resolver({"docker.io": ["127.0.0.1"]})
    assert host_problem("docker.io", resolve=internal) is not None
    assert host_problem("docker.io", trusted=["docker.io"], resolve=internal) is None


@pytest.mark.parametrize(
    ("registry", "kind"),
    [
        ("100.64.0.1", "shared"),  # carrier-grade NAT, not the internet
        ("0.0.0.1", "special-purpose"),
        ("198.18.0.1", "special-purpose"),
        ("224.0.1.1", "multicast"),
        ("169.254.169.254:80", "link-local"),
    ],
)
def test_special_ranges_are_refused_even_when_private_hosts_are_allowed(
    registry: str, kind: str
) -> None:
    problem = host_problem(registry, allow_private=True, resolve=PUBLIC)
    assert problem is not None and kind in problem


@pytest.mark.parametrize(
    "address",
    ["::ffff:169.254.169.254", "2002:a9fe:a9fe::1", "64:ff9b::a9fe:a9fe", "::ffff:100.64.1.1"],
)
def test_ipv6_spellings_of_ipv4_are_judged_by_the_ipv4_address(address: str) -> None:
    # ::ffff:169.254.169.254 once passed with private hosts allowed (issue 12 §1).
    problem = host_problem(
        "registry.example", allow_private=True, resolve=resolver({"registry.example": [address]})
    )
    assert problem is not None and address in problem


@pytest.mark.parametrize("registry", ["localhost", "LocalHost:5000", "localhost.", "[localhost]"])
def test_localhost_is_refused_by_name_whatever_dns_says(registry: str) -> None:
    # Judged before any lookup: a resolver that knows nothing must not let it through.
    assert host_problem(registry, resolve=no_resolver) == (
        f"registry host {registry!r} is a loopback address"
    )


def test_the_default_resolver_gives_the_addresses_of_a_name() -> None:
    addresses = set(_default_resolver("localhost"))
    assert addresses and addresses <= {"127.0.0.1", "::1"}
