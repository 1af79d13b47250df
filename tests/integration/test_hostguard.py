"""The registry client's host guard (issue 12 §1): tables of what passes, and real
connections through the pinned transports to a registry stand-in on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator

import httpcore
import httpx
import pytest
from armirror.reference import parse
from armirror.registry import RegistryClient
from armirror.registry.errors import HostRefused
from armirror.registry.hostguard import HostGuard, address_problem
from armirror.registry.pinned import (
    GuardedAsyncBackend,
    GuardedSyncBackend,
    async_transport,
    sync_transport,
)
from hostile_registry import HostileRegistry, InternalService
from hypothesis import given
from hypothesis import strategies as st
from registry_checks import credentials


@pytest.mark.parametrize(
    ("address", "strict", "private"),
    [
        # address, problem without private hosts allowed, with them (None: passes)
        ("8.8.8.8", None, None),
        ("2a00:1450::1", None, None),
        ("127.0.0.1", "loopback", None),
        ("::1", "loopback", None),
        ("10.1.2.3", "private", None),
        ("192.168.0.9", "private", None),
        ("fd00::1", "private", None),
        ("169.254.169.254", "link-local", "link-local"),
        ("fe80::1", "link-local", "link-local"),
        ("::ffff:169.254.169.254", "link-local", "link-local"),  # passed once, issue 12 §1
        ("::ffff:127.0.0.1", "loopback", None),
        ("2002:a9fe:a9fe::1", "link-local", "link-local"),  # 6to4 of the metadata server
        ("64:ff9b::a9fe:a9fe", "link-local", "link-local"),  # NAT64 of it
        ("100.64.0.1", "shared", "shared"),
        ("0.0.0.0", "special-purpose", "special-purpose"),
        ("0.1.2.3", "special-purpose", "special-purpose"),
        ("::", "special-purpose", "special-purpose"),
        ("192.0.2.1", "special-purpose", "special-purpose"),
        ("224.0.0.251", "multicast", "multicast"),
        ("ff02::1", "multicast", "multicast"),
        ("255.255.255.255", "special-purpose", "special-purpose"),
    ],
)
def test_address_problem(address: str, strict: str | None, private: str | None) -> None:
    for allow, expected in ((False, strict), (True, private)):
        problem = address_problem(address, allow_private=allow)
        if expected is None:
            assert problem is None, (address, allow, problem)
        else:
            assert problem is not None and expected in problem, (address, allow, problem)


@given(st.ip_addresses(v=4))
def test_an_ipv4_address_is_judged_alike_in_every_ipv6_spelling(ip: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{ip}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(ip))
    for allow in (False, True):
        expected = address_problem(ip, allow_private=allow)
        assert address_problem(mapped, allow_private=allow) == expected
        assert address_problem(nat64, allow_private=allow) == expected


@pytest.mark.parametrize(
    ("realm", "allow_private", "problem"),
    [
        ("https://auth.docker.io/token", False, None),
        ("http://auth.docker.io/token", False, "plain HTTP"),
        ("http://127.0.0.1:9/token", False, "plain HTTP"),
        ("http://127.0.0.1:9/token", True, None),  # loopback, where private hosts are allowed
        ("http://10.0.0.1/token", True, "plain HTTP"),  # plain HTTP only on loopback
        ("http://exempt.test:5000/token", False, None),  # a configured endpoint
        ("https://user:pw@auth.test/token", False, "credentials"),
        ("ftp://auth.test/token", False, "not an http"),
        ("not a url", False, "not an http"),
    ],
)
def test_realm_problem(realm: str, allow_private: bool, problem: str | None) -> None:
    guard = HostGuard(allow_private=allow_private, exempt=[("exempt.test", 5000)])
    found = guard.realm_problem(realm)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_the_transports_use_the_guarded_backends() -> None:
    # pinned.py sets httpx's private _pool; this fails if an httpx upgrade moves it.
    guard = HostGuard()
    limits = httpx.Limits(max_connections=2)
    pool = async_transport(guard, verify=True, limits=limits)._pool
    assert isinstance(pool, httpcore.AsyncConnectionPool)
    assert isinstance(pool._network_backend, GuardedAsyncBackend)
    sync_pool = sync_transport(guard, verify=True, limits=limits)._pool
    assert isinstance(sync_pool, httpcore.ConnectionPool)
    assert isinstance(sync_pool._network_backend, GuardedSyncBackend)


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileRegistry]:
    with InternalService() as internal, HostileRegistry(internal) as registry:
        yield registry  # type: ignore[misc]


class Rebinding:
    """A DNS answer that changes: loopback first (allowed here), the metadata server after."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return ["127.0.0.1"] if self.calls == 1 else ["169.254.169.254"]


def head(client: RegistryClient, reference: str) -> object:
    async def run() -> object:
        async with client:
            return await client.head_manifest(parse(reference))

    return asyncio.run(run())


def test_a_name_is_resolved_once_and_the_checked_address_is_used(
    hostile: HostileRegistry,
) -> None:
    """rebind.test does not resolve on this machine: the request reaches the registry
    only because the connection goes to the address the guard checked."""
    resolver = Rebinding()
    name = f"rebind.test:{hostile.port}"
    before = len(hostile.requests)
    client = RegistryClient(
        credentials=credentials(),
        insecure={name},
        guard=HostGuard(allow_private=True, resolve=resolver),
    )
    assert head(client, f"{name}/ok/app:1") is None  # the registry's 404
    assert [m for m, p, _ in hostile.requests[before:]] == ["HEAD"]
    assert resolver.calls == 1


def test_a_name_resolving_to_loopback_is_refused_without_private_hosts(
    hostile: HostileRegistry,
) -> None:
    before = len(hostile.requests)
    client = RegistryClient(
        credentials=credentials(),
        insecure={f"internal.test:{hostile.port}"},
        guard=HostGuard(resolve=lambda host, port: ["127.0.0.1"]),
    )
    with pytest.raises(HostRefused, match="resolves to a loopback address"):
        head(client, f"internal.test:{hostile.port}/ok/app:1")
    assert hostile.requests[before:] == []


def test_an_ip_literal_source_is_judged_like_a_name(hostile: HostileRegistry) -> None:
    before = len(hostile.requests)
    with pytest.raises(HostRefused, match="loopback"):
        head(RegistryClient(credentials=credentials()), f"{hostile.host}/ok/app:1")
    assert hostile.requests[before:] == []
    # An upstream the operator configured is exempt, loopback or not.
    client = RegistryClient(credentials=credentials(), upstreams={"docker.io": hostile.url})
    assert head(client, "docker.io/ok/app:1") is None
    assert len(hostile.requests) == before + 1
