"""Registry auth: challenges, scopes, Docker config credentials and the httpx.Auth flow."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from armirror.registry.auth import (
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
