"""Credential files and helpers, against a real helper executable speaking the protocol
(tests/bin/docker-credential-armirror-test)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from armirror.registry.credential_sources import (
    AuthFile,
    Credential,
    CredentialHelperError,
    auth_file_paths,
    helper_get,
)

BIN = Path(__file__).resolve().parents[1] / "bin"
SECRET = "hunter2-do-not-print"


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """The test helper on PATH, its store and its request log."""
    store, log = tmp_path / "helper-store.json", tmp_path / "helper.log"
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ARMIRROR_TEST_HELPER_STORE", str(store))
    monkeypatch.setenv("ARMIRROR_TEST_HELPER_LOG", str(log))
    return {"store": store, "log": log}


def _store(paths: dict[str, Path], entries: dict[str, object]) -> None:
    paths["store"].write_text(json.dumps(entries))


def _asked(paths: dict[str, Path]) -> list[str]:
    return [json.loads(line)["server"] for line in paths["log"].read_text().splitlines()]


def test_a_helper_answers_with_the_credential_and_names_itself(helper: dict[str, Path]) -> None:
    _store(helper, {"quay.io": {"Username": "robot", "Secret": SECRET}})
    found = helper_get("armirror-test", "quay.io")
    assert found == Credential("robot", SECRET, "credential helper docker-credential-armirror-test")
    assert SECRET not in repr(found) and SECRET not in str(found)


def test_a_helper_without_the_server_means_no_credential(helper: dict[str, Path]) -> None:
    _store(helper, {})
    assert helper_get("armirror-test", "quay.io") is None


@pytest.mark.parametrize(
    ("behaviour", "message"),
    [
        ("hang", "did not answer within 1 s"),
        ("flood", "printed more than 64 KiB"),
        ("garbage", "printed something that is not a credential"),
        ("crash", r"failed \(exit status 3\)"),
    ],
)
def test_a_misbehaving_helper_is_bounded_and_its_output_never_repeated(
    helper: dict[str, Path], behaviour: str, message: str
) -> None:
    _store(helper, {"quay.io": {"behaviour": behaviour, "Secret": SECRET}})
    with pytest.raises(CredentialHelperError, match=message) as caught:
        helper_get("armirror-test", "quay.io", timeout=1)
    assert SECRET not in str(caught.value)


def test_a_missing_or_odd_helper_is_a_clear_error(helper: dict[str, Path]) -> None:
    with pytest.raises(CredentialHelperError, match="docker-credential-absent is not on PATH"):
        helper_get("absent", "quay.io")
    with pytest.raises(CredentialHelperError, match="not a plain name"):
        helper_get("../../bin/sh", "quay.io")


def test_an_identity_token_is_refused_by_name(helper: dict[str, Path]) -> None:
    _store(helper, {"quay.io": {"Username": "<token>", "Secret": SECRET}})
    with pytest.raises(CredentialHelperError, match="identity token") as caught:
        helper_get("armirror-test", "quay.io")
    assert SECRET not in str(caught.value)


def _auth(user: str, secret: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{secret}".encode()).decode()}


def _file(tmp_path: Path, name: str, body: object, *, docker: bool = True) -> AuthFile:
    path = tmp_path / name
    path.write_text(json.dumps(body))
    loaded = AuthFile.load(path, namespaces_are_hosts=docker)
    assert loaded is not None
    return loaded


def test_cred_helpers_win_over_auths_in_the_same_file(
    tmp_path: Path, helper: dict[str, Path]
) -> None:
    _store(helper, {"quay.io": {"Username": "from-helper", "Secret": SECRET}})
    config = _file(
        tmp_path,
        "config.json",
        {
            "auths": {"quay.io": _auth("from-auths", "x")},
            "credHelpers": {"quay.io": "armirror-test"},
        },
    )
    errors: list[str] = []
    assert config.lookup("quay.io", errors).username == "from-helper"  # type: ignore[union-attr]
    assert errors == []


def test_creds_store_serves_every_registry_without_a_helper_and_hides_auths(
    tmp_path: Path, helper: dict[str, Path]
) -> None:
    hub_server = "https://index.docker.io/v1/"
    _store(helper, {hub_server: {"Username": "hub", "Secret": "s"}})
    config = _file(
        tmp_path,
        "config.json",
        {"credsStore": "armirror-test", "auths": {"quay.io": _auth("stale", "x")}},
    )
    errors: list[str] = []
    hub = config.lookup("docker.io", errors)
    assert hub is not None and hub.username == "hub"
    # The Docker CLI never reads auths when a credsStore is set; neither does armirror.
    assert config.lookup("quay.io", errors) is None
    assert _asked(helper) == [hub_server, "quay.io"]


def test_a_failing_helper_is_reported_and_not_a_credential(
    tmp_path: Path, helper: dict[str, Path]
) -> None:
    config = _file(tmp_path, "config.json", {"credHelpers": {"quay.io": "absent"}})
    errors: list[str] = []
    assert config.lookup("quay.io", errors) is None
    assert errors == [f"docker-credential-absent is not on PATH (named in {config.path})"]


def test_auths_keys_name_hosts_in_many_spellings(tmp_path: Path) -> None:
    config = _file(
        tmp_path,
        "config.json",
        {
            "auths": {
                "https://index.docker.io/v1/": _auth("hub", "a"),
                "http://LOCALHOST:5000/v2/": _auth("local", "b"),
                "quay.io/some-org": _auth("quay", "c"),
                "broken": {"auth": "!!not base64!!"},
                "empty": {},
            }
        },
    )
    errors: list[str] = []
    assert config.lookup("registry-1.docker.io", errors).username == "hub"  # type: ignore[union-attr]
    assert config.lookup("localhost:5000", errors).username == "local"  # type: ignore[union-attr]
    # The Docker CLI reads a key's host; the containers format scopes it to a namespace.
    assert config.lookup("quay.io", errors).username == "quay"  # type: ignore[union-attr]
    containers = _file(
        tmp_path, "auth.json", {"auths": {"quay.io/org": _auth("q", "c")}}, docker=False
    )
    assert containers.lookup("quay.io", errors) is None
    assert config.lookup("broken", errors) is None and config.lookup("empty", errors) is None


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"auths": [1]}'])
def test_a_broken_file_is_no_credentials(tmp_path: Path, content: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    loaded = AuthFile.load(path, namespaces_are_hosts=True)
    assert loaded is None or loaded.lookup("quay.io", []) is None


def test_auth_files_are_searched_in_skopeos_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"HOME": str(home), "XDG_RUNTIME_DIR": "/run/user/7"}
    assert auth_file_paths(env) == [
        (Path("/run/user/7/containers/auth.json"), False),
        (home / ".config/containers/auth.json", False),
        (home / ".docker/config.json", True),
    ]
    env.update(REGISTRY_AUTH_FILE="/etc/auth.json", XDG_CONFIG_HOME="/cfg", DOCKER_CONFIG="/dc")
    assert auth_file_paths(env) == [
        (Path("/etc/auth.json"), False),
        (Path("/cfg/containers/auth.json"), False),
        (Path("/dc/config.json"), True),
    ]
    assert auth_file_paths({"HOME": str(home)})[0] == (
        Path(f"/run/containers/{os.getuid()}/auth.json"),
        False,
    )


def test_a_registrys_credentials_are_never_offered_to_its_mirror(tmp_path: Path) -> None:
    """With docker.io=https://mirror.gcr.io,…, Docker Hub's password goes to Docker Hub's
    own endpoints (and loopback stand-ins), never to the mirror."""
    from armirror.registry.credentials import CredentialStore, DockerConfig, GoogleCredentials

    class NoGoogle(GoogleCredentials):
        def token(self) -> str | None:
            return None

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": _auth("hub", "pw")}}))
    store = CredentialStore(docker_config=DockerConfig(config), google=NoGoogle())
    assert store.lookup("mirror.gcr.io", "docker.io") is None
    assert store.lookup("registry-1.docker.io", "docker.io") == ("hub", "pw")
    assert store.lookup("127.0.0.1:5000", "docker.io") == ("hub", "pw")
    assert "looked in" in store.searched("mirror.gcr.io", "docker.io")
