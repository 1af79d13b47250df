"""The httpx.Auth flow against real registries: docker-registry behind the token server,
and docker-registry with htpasswd, each seen through the fault proxy."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from armirror.registry.auth import RegistryAuth
from faultproxy import FaultProxy
from registry_checks import unique
from standins.registry import Registry
from standins.token_server import TokenServer


@pytest.fixture
def token_proxy(token_registry: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(token_registry.url) as proxy:
        yield proxy


@pytest.fixture
def htpasswd_proxy(htpasswd_registry: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(htpasswd_registry.url) as proxy:
        yield proxy


def _run(url: str, credential: tuple[str, str] | None) -> list[int]:
    """Three HEADs (pull), then two upload starts (push) in one repository."""
    repository = unique("library/auth")

    async def main() -> list[int]:
        auth = RegistryAuth(lambda: credential)
        async with httpx.AsyncClient(base_url=url, auth=auth) as client:
            statuses = []
            for _ in range(3):
                response = await client.head(f"/v2/{repository}/manifests/1")
                statuses.append(response.status_code)
            for _ in range(2):
                response = await client.post(f"/v2/{repository}/blobs/uploads/")
                statuses.append(response.status_code)
        return statuses

    return asyncio.run(main())


def test_bearer_flow_fetches_one_token_per_scope_set(
    token_registry: Registry, token_proxy: FaultProxy
) -> None:
    server: TokenServer = token_registry.extras[0]  # type: ignore[assignment]
    before = len(server.requests)
    assert _run(token_proxy.url, ("armirror", "s3cret")) == [404, 404, 404, 202, 202]
    tokens = server.requests[before:]
    # One token for pull (after the challenge), one for pull,push (fetched up front).
    assert [t["scope"][0].rsplit(":", 1)[1] for t in tokens] == ["pull", "pull,push"]
    assert all(t["service"] == [server.service] for t in tokens)
    sent = [auth for _, _, auth in token_proxy.authorizations]
    # Only the very first request went without a token; the rest carried one.
    assert sent[0] is None
    assert all(auth and auth.startswith("Bearer ") for auth in sent[1:])
    assert len(sent) == 6  # the challenged HEAD once more, nothing else repeated


def test_bearer_flow_with_wrong_credentials_surfaces_the_token_error(
    token_proxy: FaultProxy,
) -> None:
    with pytest.raises(httpx.HTTPStatusError, match=r"token server .* answered 401") as raised:
        _run(token_proxy.url, ("armirror", "wrong-password"))
    assert "wrong-password" not in str(raised.value)


def test_basic_flow_switches_to_basic_once(htpasswd_proxy: FaultProxy) -> None:
    assert _run(htpasswd_proxy.url, ("armirror", "s3cret")) == [404, 404, 404, 202, 202]
    sent = [auth for _, _, auth in htpasswd_proxy.authorizations]
    assert sent[0] is None
    assert all(auth and auth.startswith("Basic ") for auth in sent[1:])
    assert len(sent) == 6


def test_basic_flow_without_credentials_returns_the_401(htpasswd_proxy: FaultProxy) -> None:
    assert _run(htpasswd_proxy.url, None) == [401] * 5
    assert [auth for _, _, auth in htpasswd_proxy.authorizations] == [None] * 5
