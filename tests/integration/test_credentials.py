"""Credentials where docker, skopeo and crane find them (issue 13 §1).

``armirror copy`` runs as a subprocess against real registries that want credentials
(htpasswd basic auth; a token server), with credentials only in the places a user
keeps them: a credHelpers entry answered by a real helper executable on PATH
(tests/bin/docker-credential-armirror-test), a credsStore, the containers auth file.
skopeo, given the same environment, is the oracle: what it can read, armirror reads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest
from registry_checks import cli_env, run_cli, skopeo_digest, unique
from standins import images
from standins.registry import Registry

BIN = Path(__file__).resolve().parents[1] / "bin"


def _env(
    tmp_path: Path, config: dict[str, object], helper_store: dict[str, object]
) -> dict[str, str]:
    """A CLI environment whose Docker config is ``config``, with the test helper on PATH
    answering from ``helper_store``."""
    docker = tmp_path / "docker"
    docker.mkdir(exist_ok=True)
    (docker / "config.json").write_text(json.dumps(config))
    store = tmp_path / "helper-store.json"
    store.write_text(json.dumps(helper_store))
    env = cli_env(docker)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env["ARMIRROR_TEST_HELPER_STORE"] = str(store)
    env["ARMIRROR_TEST_HELPER_LOG"] = str(tmp_path / "helper.log")
    return env


def _skopeo_inspect(
    host: str, name: str, env: dict[str, str]
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{host}/{name}"],
        capture_output=True,
        timeout=60,
        env=env,
    )


def _asked(tmp_path: Path) -> list[str]:
    log = tmp_path / "helper.log"
    return [json.loads(line)["server"] for line in log.read_text().splitlines()]


def _push_somewhere(registry: Registry, stem: str, seed: int) -> images.Image:
    image = images.single_image(unique(stem), "1", seed=seed)
    auth = (registry.username, registry.password) if registry.username else None
    images.push(registry.url, image, auth=auth)  # type: ignore[arg-type]
    return image


def test_a_cred_helper_serves_the_destination_as_it_serves_skopeo(
    tmp_path: Path, source_registry: Registry, htpasswd_registry: Registry
) -> None:
    host = htpasswd_registry.host
    env = _env(
        tmp_path,
        {"credHelpers": {host: "armirror-test"}},
        {host: {"Username": "armirror", "Secret": "s3cret"}},
    )
    # The oracle: skopeo reads this configuration and gets in.
    present = _push_somewhere(htpasswd_registry, "library/present", 13001)
    assert _skopeo_inspect(host, f"{present.repository}:1", env).returncode == 0

    image = images.single_image(unique("library/helped"), "1", seed=13002)
    images.push(source_registry.url, image)
    prefix = f"{host}/{unique('mirror')}"
    status, results, stderr = run_cli(
        f"{image.repository}:1", "--to", prefix, "--upstream", f"docker.io={source_registry.url}",
        env=env,
    )  # fmt: skip
    assert status == 0, stderr
    assert results[0]["status"] == "copied", results[0]["error"]
    mirrored = f"{prefix.split('/', 1)[1]}/docker.io/{image.repository}:1"
    assert skopeo_digest(host, mirrored, "armirror:s3cret") == image.digest
    # The helper was asked about the registry, once for the whole run.
    assert _asked(tmp_path).count(host) >= 1
    assert "s3cret" not in stderr


def test_a_creds_store_serves_docker_hub_under_its_docker_name(
    tmp_path: Path, htpasswd_registry: Registry, dest_registry: Registry
) -> None:
    """Docker Hub's credentials are asked for as https://index.docker.io/v1/, as the
    Docker CLI asks, and sent to Docker Hub's endpoint (a local stand-in here)."""
    env = _env(
        tmp_path,
        {"credsStore": "armirror-test"},
        {"https://index.docker.io/v1/": {"Username": "armirror", "Secret": "s3cret"}},
    )
    image = _push_somewhere(htpasswd_registry, "library/private", 13003)
    status, results, stderr = run_cli(
        f"docker.io/{image.repository}:1", "--to", f"{dest_registry.host}/{unique('mirror')}",
        "--upstream", f"docker.io={htpasswd_registry.url}", env=env,
    )  # fmt: skip
    assert status == 0, stderr
    assert results[0]["status"] == "copied", results[0]["error"]
    assert "https://index.docker.io/v1/" in _asked(tmp_path)


def test_the_containers_auth_file_comes_before_the_docker_config(
    tmp_path: Path, source_registry: Registry, token_registry: Registry
) -> None:
    host = token_registry.host
    good = base64.b64encode(b"armirror:s3cret").decode()
    bad = base64.b64encode(b"armirror:wrong-password").decode()
    env = _env(tmp_path, {"auths": {host: {"auth": bad}}}, {})
    auth_file = tmp_path / "containers-auth.json"
    auth_file.write_text(json.dumps({"auths": {host: {"auth": good}}}))
    env["REGISTRY_AUTH_FILE"] = str(auth_file)

    image = images.single_image(unique("library/podman"), "1", seed=13004)
    images.push(source_registry.url, image)
    prefix = f"{host}/{unique('mirror')}"
    status, results, stderr = run_cli(
        f"{image.repository}:1", "--to", prefix, "--upstream", f"docker.io={source_registry.url}",
        env=env,
    )  # fmt: skip
    assert status == 0, stderr
    assert results[0]["status"] == "copied", results[0]["error"]
    mirrored = f"{prefix.split('/', 1)[1]}/docker.io/{image.repository}:1"
    assert _skopeo_inspect(host, mirrored, env).returncode == 0  # skopeo agrees

    # Swap them: the auth file's wrong password is what gets sent, and refused.
    auth_file.write_text(json.dumps({"auths": {host: {"auth": bad}}}))
    (tmp_path / "docker" / "config.json").write_text(json.dumps({"auths": {host: {"auth": good}}}))
    status, results, _ = run_cli(
        f"{image.repository}:1", "--to", f"{host}/{unique('mirror')}",
        "--upstream", f"docker.io={source_registry.url}", env=env,
    )  # fmt: skip
    assert status == 1
    assert f"refused the credentials given (auths in {auth_file})" in results[0]["error"]
    assert _skopeo_inspect(host, mirrored, env).returncode != 0  # skopeo is refused too


@pytest.mark.parametrize("behaviour", ["hang", "crash"])
def test_a_broken_helper_is_named_and_its_output_never_shown(
    tmp_path: Path, source_registry: Registry, htpasswd_registry: Registry, behaviour: str
) -> None:
    host = htpasswd_registry.host
    secret = "leaky-" + hashlib.sha256(behaviour.encode()).hexdigest()[:8]
    env = _env(
        tmp_path,
        {"credHelpers": {host: "armirror-test"}},
        {host: {"behaviour": behaviour, "Username": "armirror", "Secret": secret}},
    )
    image = images.single_image(unique("library/broken-helper"), "1", seed=13005)
    images.push(source_registry.url, image)
    status, results, stderr = run_cli(
        f"{image.repository}:1", "--to", f"{host}/{unique('mirror')}",
        "--upstream", f"docker.io={source_registry.url}", env=env,
    )  # fmt: skip
    assert status == 1
    error = results[0]["error"]
    assert f"no credentials for {host}" in error
    assert "docker-credential-armirror-test get" in error
    assert secret not in error and secret not in stderr
