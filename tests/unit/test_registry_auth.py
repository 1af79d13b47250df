"""Registry auth: challenges, scopes, Docker config credentials and the httpx.Auth flow."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from armirror.registry.auth import (
    RegistryAuth,
    parse_challenge,
    scopes_for,
)
from armirror.registry.credentials import CredentialStore, DockerConfig, GoogleCredentials


@pytest.mark.parametrize(
    ("header", "scheme", "params"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/nginx:pull"',
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/nginx:pull",
            },
        ),
        (
            # Scopes with commas and spaces inside the quotes stay one value.
            'Bearer realm="http://127.0.0.1:1/token", service="svc", '
            'scope="repository:a/b:pull,push repository:c:pull"',
            "bearer",
            {
                "realm": "http://127.0.0.1:1/token",
                "service": "svc",
                "scope": "repository:a/b:pull,push repository:c:pull",
            },
        ),
        ('Basic realm="armirror-local"', "basic", {"realm": "armirror-local"}),
        ("BASIC realm=unquoted", "basic", {"realm": "unquoted"}),
        ('bearer Realm="r",Service=s', "bearer", {"realm": "r", "service": "s"}),
        ("Bearer", "bearer", {}),
        ('  Bearer realm="r"  ', "bearer", {"realm": "r"}),
    ],
)
def test_parse_challenge(header: str, scheme: str, params: dict[str, str]) -> None:
    assert parse_challenge(header) == (scheme, params)


def _request(method: str, url: str) -> httpx.Request:
    return httpx.Request(method, "http://registry.test" + url)


@pytest.mark.parametrize(
    ("method", "path", "scopes"),
    [
        ("GET", "/v2/", ()),
        ("GET", "/token?scope=x", ()),
        ("HEAD", "/v2/library/nginx/manifests/latest", ("repository:library/nginx:pull",)),
        ("GET", "/v2/library/nginx/manifests/sha256:ab", ("repository:library/nginx:pull",)),
        ("HEAD", "/v2/a/b/c/blobs/sha256:ab", ("repository:a/b/c:pull",)),
        ("GET", "/v2/x/tags/list", ("repository:x:pull",)),
        ("GET", "/v2/x/referrers/sha256:ab", ("repository:x:pull",)),
        ("PUT", "/v2/x/manifests/v1", ("repository:x:pull,push",)),
        ("POST", "/v2/m/docker.io/x/blobs/uploads/", ("repository:m/docker.io/x:pull,push",)),
        (
            "PUT",
            "/v2/m/x/blobs/uploads/5d3c-11?_state=abc&digest=sha256:ab",
            ("repository:m/x:pull,push",),
        ),
        ("DELETE", "/v2/m/x/blobs/uploads/5d3c-11", ("repository:m/x:pull,push",)),
        (
            "POST",
            "/v2/dst/x/blobs/uploads/?mount=sha256:ab&from=src/x",
            ("repository:dst/x:pull,push", "repository:src/x:pull"),
        ),
        # Repository components may be named like API path segments.
        ("HEAD", "/v2/someone/blobs/blobs/sha256:ab", ("repository:someone/blobs:pull",)),
        ("GET", "/v2/org/manifests/manifests/v1", ("repository:org/manifests:pull",)),
        ("GET", "/v2/org/tags/tags/list", ("repository:org/tags:pull",)),
        ("POST", "/v2/a/blobs/blobs/uploads/", ("repository:a/blobs:pull,push",)),
        ("GET", "/v2/x/manifests/blobs", ("repository:x:pull",)),
    ],
)
def test_scopes_for(method: str, path: str, scopes: tuple[str, ...]) -> None:
    assert scopes_for(_request(method, path)) == scopes


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _config(tmp_path: Path, auths: object) -> DockerConfig:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": auths}))
    return DockerConfig(path)


def test_docker_config_auth_field_is_base64_user_colon_password(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        {
            "127.0.0.1:5000": {"auth": _b64("armirror:s3cret")},
            "quay.io": {"auth": _b64("robot:pa:ss:word")},  # only the first ':' splits
        },
    )
    assert config.lookup("127.0.0.1:5000") == ("armirror", "s3cret")
    assert config.lookup("quay.io") == ("robot", "pa:ss:word")
    assert config.lookup("QUAY.IO") == ("robot", "pa:ss:word")
    assert config.lookup("ghcr.io") is None


def test_docker_config_username_and_password_fields(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        {
            "ghcr.io": {"username": "me", "password": "tok"},
            "partial.io": {"username": "me"},
            "empty.io": {"auth": "", "username": "u", "password": "p"},
        },
    )
    assert config.lookup("ghcr.io") == ("me", "tok")
    assert config.lookup("partial.io") is None
    assert config.lookup("empty.io") == ("u", "p")


def test_docker_config_keys_with_scheme_and_path(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        {
            "http://127.0.0.1:5001": {"auth": _b64("a:1")},
            "https://registry.example.com/v2/": {"auth": _b64("b:2")},
        },
    )
    assert config.lookup("127.0.0.1:5001") == ("a", "1")
    assert config.lookup("registry.example.com") == ("b", "2")


@pytest.mark.parametrize("key", ["https://index.docker.io/v1/", "index.docker.io", "docker.io"])
def test_docker_hub_key_aliases(tmp_path: Path, key: str) -> None:
    config = _config(tmp_path, {key: {"auth": _b64("hubuser:hubtoken")}})
    for host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert config.lookup(host) == ("hubuser", "hubtoken"), host


def test_docker_config_ignores_bad_entries(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        {
            "bad64.io": {"auth": "!!!not base64!!!"},
            "nouser.io": {"auth": _b64(":password")},
            "notadict.io": "nope",
            "good.io": {"auth": _b64("u:p")},
        },
    )
    assert config.lookup("bad64.io") is None
    assert config.lookup("nouser.io") is None
    assert config.lookup("notadict.io") is None
    assert config.lookup("good.io") == ("u", "p")


def test_docker_config_missing_or_unreadable(tmp_path: Path) -> None:
    assert DockerConfig(tmp_path / "absent.json").lookup("quay.io") is None
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert DockerConfig(broken).lookup("quay.io") is None
    no_auths = tmp_path / "no-auths.json"
    no_auths.write_text('{"credsStore": "desktop"}')
    assert DockerConfig(no_auths).lookup("quay.io") is None


def test_docker_config_directory_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"auths": {"127.0.0.1:9": {"auth": _b64("x:y")}}})
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    config = DockerConfig()
    assert config.path == tmp_path / "config.json"
    assert config.lookup("127.0.0.1:9") == ("x", "y")


class _FakeGoogle(GoogleCredentials):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def token(self) -> str | None:
        self.calls += 1
        return "ya29.token"


def test_credential_store_precedence(tmp_path: Path) -> None:
    google = _FakeGoogle()
    store = CredentialStore(
        docker_config=_config(
            tmp_path,
            {"127.0.0.1:5000": {"auth": _b64("cfg:1")}, "docker.io": {"auth": _b64("hub:2")}},
        ),
        google=google,
        explicit={"127.0.0.1:5000": ("explicit", "0")},
    )
    assert store.lookup("127.0.0.1:5000") == ("explicit", "0")
    # An upstream endpoint without credentials falls back to the registry's name.
    assert store.lookup("127.0.0.1:6000", "docker.io") == ("hub", "2")
    assert store.lookup("quay.io") is None
    assert google.calls == 0  # third-party hosts never ask Google
    assert store.lookup("us-docker.pkg.dev") == ("oauth2accesstoken", "ya29.token")
    assert store.lookup("eu.gcr.io") == ("oauth2accesstoken", "ya29.token")


# -- the httpx.Auth flow, against an in-memory registry -------------------------------------


class _Streamed(httpx.AsyncByteStream):
    """A body that is not read up front, as with a real connection."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body


def _challenge(header: str) -> httpx.Response:
    return httpx.Response(
        401,
        headers={"WWW-Authenticate": header, "Content-Type": "application/json"},
        stream=_Streamed(b'{"errors":[{"code":"UNAUTHORIZED"}]}'),
    )


class _FakeRegistry:
    """Answers like distribution: 401 with a challenge until the right header is sent."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.token_requests: list[dict[str, list[str]]] = []
        self.seen: list[tuple[str, str, str | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("Authorization")
        if request.url.path == "/token":
            self.token_requests.append(parse_qs(urlsplit(str(request.url)).query))
            if auth != "Basic " + _b64("u:p"):
                return httpx.Response(401, json={"details": "bad credentials"})
            return httpx.Response(200, json={"token": "T", "expires_in": 300})
        self.seen.append((request.method, request.url.path, auth))
        if self.mode == "basic":
            if auth == "Basic " + _b64("u:p"):
                return httpx.Response(200)
            return _challenge('Basic realm="r"')
        if auth == "Bearer T":
            return httpx.Response(200)
        scope = scopes_for(request)
        return _challenge(
            f'Bearer realm="http://registry.test/token",service="svc",scope="{" ".join(scope)}"'
        )


async def _run(registry: _FakeRegistry, credential: tuple[str, str] | None) -> list[int]:
    auth = RegistryAuth(lambda: credential)
    async with httpx.AsyncClient(
        base_url="http://registry.test", auth=auth, transport=httpx.MockTransport(registry)
    ) as client:
        statuses = []
        for _ in range(3):
            statuses.append((await client.head("/v2/a/manifests/1")).status_code)
        statuses.append((await client.post("/v2/a/blobs/uploads/")).status_code)
        statuses.append((await client.post("/v2/a/blobs/uploads/")).status_code)
    return statuses


def test_bearer_flow_fetches_one_token_per_scope_set() -> None:
    registry = _FakeRegistry("bearer")
    assert asyncio.run(_run(registry, ("u", "p"))) == [200] * 5
    # One token for pull (after the challenge), one for pull,push (fetched up front).
    assert len(registry.token_requests) == 2
    assert registry.token_requests[0]["service"] == ["svc"]
    assert registry.token_requests[0]["scope"] == ["repository:a:pull"]
    assert registry.token_requests[1]["scope"] == ["repository:a:pull,push"]
    # Only the very first request went without a token.
    assert [auth for _, _, auth in registry.seen].count(None) == 1


def test_bearer_flow_with_wrong_credentials_surfaces_the_token_error() -> None:
    registry = _FakeRegistry("bearer")
    with pytest.raises(httpx.HTTPStatusError, match=r"token request .* failed with 401"):
        asyncio.run(_run(registry, ("u", "wrong")))


def test_basic_flow_switches_to_basic_once() -> None:
    registry = _FakeRegistry("basic")
    assert asyncio.run(_run(registry, ("u", "p"))) == [200] * 5
    assert not registry.token_requests
    assert [auth for _, _, auth in registry.seen].count(None) == 1


def test_basic_flow_without_credentials_returns_the_401() -> None:
    registry = _FakeRegistry("basic")
    assert asyncio.run(_run(registry, None)) == [401] * 5
