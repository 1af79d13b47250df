"""Independent checks of what a registry holds, and small runners for CLI tests.

The checks never use armirror's client: raw httpx requests and skopeo are the oracles.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from armirror.reference import Reference, destination_for, parse
from armirror.registry import Copier, CopyResult, RegistryClient, RetryPolicy
from armirror.registry.credentials import CredentialStore, DockerConfig, GoogleCredentials

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
ROOT = Path(__file__).resolve().parent.parent


def unique(stem: str) -> str:
    """A repository path component no other test uses."""
    return f"{stem}-{uuid.uuid4().hex[:8]}"


# -- oracles ---------------------------------------------------------------------------------


def skopeo_raw(host: str, name: str, creds: str | None = None) -> bytes:
    """``skopeo inspect --raw`` of ``host/name`` (name is ``repo:tag`` or ``repo@digest``)."""
    command = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
    if creds:
        command += ["--creds", creds]
    result = subprocess.run(
        [*command, f"docker://{host}/{name}"], capture_output=True, timeout=60, check=True
    )
    return result.stdout


def skopeo_digest(host: str, name: str, creds: str | None = None) -> str:
    return "sha256:" + hashlib.sha256(skopeo_raw(host, name, creds)).hexdigest()


def skopeo_tags(host: str, repository: str) -> list[str]:
    result = subprocess.run(
        ["skopeo", "list-tags", "--tls-verify=false", f"docker://{host}/{repository}"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return sorted(json.loads(result.stdout)["Tags"])


def head_manifest(
    url: str, repository: str, ident: str, auth: httpx.Auth | None = None
) -> str | None:
    """The digest a tag or digest names, or None when absent."""
    response = httpx.head(
        f"{url}/v2/{repository}/manifests/{ident}", headers={"Accept": ACCEPT}, auth=auth
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


def verify_image(
    url: str, repository: str, digest: str, auth: httpx.Auth | None = None
) -> list[str]:
    """Fetch a manifest tree by digest and every blob it names, hashing everything.

    Returns the blob digests; fails the test on any missing or wrong content.
    """
    blobs: list[str] = []
    with httpx.Client(base_url=url, auth=auth, timeout=60) as client:
        pending = [digest]
        while pending:
            current = pending.pop()
            response = client.get(
                f"/v2/{repository}/manifests/{current}", headers={"Accept": ACCEPT}
            )
            assert response.status_code == 200, f"{repository}@{current} missing"
            assert "sha256:" + hashlib.sha256(response.content).hexdigest() == current
            body = json.loads(response.content)
            pending += [m["digest"] for m in body.get("manifests", [])]
            descriptors = ([body["config"]] if "config" in body else []) + body.get("layers", [])
            for descriptor in descriptors:
                hasher, size = hashlib.sha256(), 0
                with client.stream("GET", f"/v2/{repository}/blobs/{descriptor['digest']}") as r:
                    assert r.status_code == 200, f"blob {descriptor['digest']} missing"
                    for chunk in r.iter_raw():
                        hasher.update(chunk)
                        size += len(chunk)
                assert "sha256:" + hasher.hexdigest() == descriptor["digest"]
                assert size == descriptor["size"]
                blobs.append(descriptor["digest"])
    return blobs


def assert_tag_sound(
    url: str, repository: str, tag: str, allowed: Iterable[str | None]
) -> str | None:
    """A tag is absent or names one of ``allowed`` digests, and that image is complete."""
    digest = head_manifest(url, repository, tag)
    assert digest in set(allowed), f"{repository}:{tag} names {digest}"
    if digest is not None:
        verify_image(url, repository, digest)
    return digest


# -- runners ---------------------------------------------------------------------------------


class NoGoogle(GoogleCredentials):
    def token(self) -> str | None:
        return None


def credentials(explicit: dict[str, tuple[str, str]] | None = None) -> CredentialStore:
    """Credentials that ignore the user's Docker config and Google ADC."""
    return CredentialStore(
        docker_config=DockerConfig(Path("/nonexistent/config.json")),
        google=NoGoogle(),
        explicit=explicit,
    )


def fast_retry(attempts: int = 5) -> RetryPolicy:
    return RetryPolicy(attempts=attempts, base_delay=0.02, max_delay=0.2)


def run_copy(
    images: list[str],
    prefix: str,
    *,
    upstreams: dict[str, str],
    explicit: dict[str, tuple[str, str]] | None = None,
    retry: RetryPolicy | None = None,
    jobs: int = 8,
    checks: int = 32,
    destinations: list[Reference] | None = None,
    allow_private: bool = True,
    trusted: list[str] | None = None,
) -> tuple[list[CopyResult], RegistryClient]:
    """Copy in-process with a fresh client; returns the results and the (closed) client."""
    sources = [parse(image) for image in images]
    targets = destinations or [destination_for(s, prefix) for s in sources]

    async def main() -> tuple[list[CopyResult], RegistryClient]:
        client = RegistryClient(
            upstreams=upstreams,
            credentials=credentials(explicit),
            retry=retry or fast_retry(),
            allow_private_hosts=allow_private,
            trusted_registries=trusted or (),
        )
        async with client:
            copier = Copier(client, jobs=jobs, checks=checks)
            results = await asyncio.wait_for(
                copier.copy_many(list(zip(sources, targets, strict=True))), timeout=120
            )
        return results, client

    return asyncio.run(main())


def cli_env(docker_config: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: no ARMIRROR_* settings, and no credential file but
    ``docker_config`` (containers auth files are pointed at nothing)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARMIRROR_")}
    env["DOCKER_CONFIG"] = str(docker_config or Path("/nonexistent"))
    env["REGISTRY_AUTH_FILE"] = "/nonexistent/auth.json"
    env["XDG_CONFIG_HOME"] = "/nonexistent"
    env["NO_COLOR"] = "1"
    # Tests are local mode: registries and token servers on loopback (pass "false" to
    # see the host guard's strict default).
    env["ARMIRROR_ALLOW_PRIVATE_HOSTS"] = "true"
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "armirror.cli", "copy", *args]


def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[dict[str, Any]], str]:
    """``armirror copy ... --format json`` in a subprocess: (exit status, objects, stderr)."""
    result = subprocess.run(
        cli_command(*args, "--format", "json"),
        capture_output=True,
        text=True,
        env=env or cli_env(),
        timeout=120,
        cwd=ROOT,
    )
    try:
        objects = json.loads(result.stdout) if result.stdout.strip() else []
    except ValueError:
        raise AssertionError(f"not JSON: {result.stdout!r} {result.stderr!r}") from None
    return result.returncode, objects, result.stderr


def armirror(
    *args: str, stdin: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``armirror ARGS`` in a subprocess, in the environment of :func:`cli_env`."""
    return subprocess.run(
        [sys.executable, "-m", "armirror.cli", *args],
        capture_output=True, text=True, env=cli_env(), cwd=ROOT, timeout=timeout, input=stdin,
    )  # fmt: skip


def verify_json(*args: str, names: list[str] | None = None) -> tuple[int, dict[str, Any]]:
    """``armirror verify ARGS --format json``: (exit status, report), with no traceback;
    ``names`` are given on stdin with ``-f -``."""
    extra = ["-f", "-"] if names else []
    stdin = "\n".join(names) + "\n" if names else None
    result = armirror("verify", *args, *extra, "--format", "json", stdin=stdin)
    assert result.stdout, result.stderr
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


def docker_config_dir(directory: Path, auths: dict[str, tuple[str, str]]) -> Path:
    """A DOCKER_CONFIG directory whose config.json holds base64 ``auth`` entries."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = {
        host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        for host, (user, password) in auths.items()
    }
    (directory / "config.json").write_text(json.dumps({"auths": entries}))
    return directory
