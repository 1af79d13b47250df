"""Bearer tokens from the real token server in front of a real docker-registry."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from armirror.reference import parse
from armirror.registry import RegistryClient
from armirror.registry.auth import cache_seconds
from faultproxy import FaultProxy
from registry_checks import credentials, unique
from standins.registry import Registry, start_registry
from standins.token_server import TokenServer

LIFETIME = 3


@pytest.fixture(scope="module")
def short_token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("short-token-registry")
    server = TokenServer(root / "token", anonymous_pull=True, lifetime=LIFETIME)
    with start_registry(root, auth="token", token_server=server) as registry:
        yield registry


def test_an_expired_token_is_replaced_before_it_is_sent(short_token_registry: Registry) -> None:
    """A new token is fetched once the old one expired, without first being refused.

    docker-registry accepts a token up to a minute past its expiry, so the client's own
    cache has to know when a token expires: the registry would not tell it.
    """
    server: TokenServer = short_token_registry.extras[0]  # type: ignore[assignment]
    # A missing tag is as good as any: the HEAD needs a pull token all the same.
    with FaultProxy(short_token_registry.url) as hub:
        ref = parse(f"docker.io/{unique('library/short')}:1")

        async def head_twice() -> None:
            async with RegistryClient(
                upstreams={"docker.io": hub.url},
                credentials=credentials(),
                allow_private_hosts=True,
            ) as client:
                assert await client.head_manifest(ref) is None
                first_tokens, first_heads = len(server.requests), len(hub.arrived("HEAD"))
                await asyncio.sleep(LIFETIME + 0.5)  # let the token expire
                assert await client.head_manifest(ref) is None
                assert len(server.requests) == first_tokens + 1, "the expired token was reused"
                assert len(hub.arrived("HEAD")) == first_heads + 1, (
                    "the expired token was sent and refused"
                )

        asyncio.run(head_twice())


@pytest.mark.parametrize(("expires_in", "seconds"), [
    (300, 290.0),        # ten seconds' margin
    (3, 2.25),           # a quarter of a short lifetime, never past the expiry
    (None, 50.0),        # the specification's 60 s default
    ("soon", 50.0),      # garbage is the default
    (-5, 0.0),           # not cached
    (float("nan"), 0.0),
    (10**9, 3590.0),     # asked again within the hour
])  # fmt: skip
def test_how_long_a_token_is_reused(expires_in: object, seconds: float) -> None:
    assert cache_seconds({"expires_in": expires_in}) == seconds
