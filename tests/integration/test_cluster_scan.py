"""scan --cluster with the real kubernetes client against a local API stand-in.

The stand-in (infra/local/standins/kube.py, shared with redeploy and the demo) serves
real-shaped PodList JSON at /api/v1/pods on 127.0.0.1, here one pod a page
(limit/continue), and records the requests it gets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from armirror.cli import cli
from click.testing import CliRunner
from standins.kube import KubeStandin

DIGEST = "sha256:" + "c" * 64
PAUSE_DIGEST = "sha256:" + "d" * 64


def pod(namespace: str, name: str, spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": spec,
        "status": {"phase": "Running", **status},
    }


PAGE_1 = {
    "kind": "PodList",
    "apiVersion": "v1",
    "metadata": {"resourceVersion": "100", "continue": "page-2"},
    "items": [
        pod(
            "shop",
            "web-7d9c",
            {
                "initContainers": [{"name": "migrate", "image": "postgres:16"}],
                "containers": [
                    {"name": "web", "image": "nginx:1.27"},
                    {"name": "app", "image": "us-docker.pkg.dev/acme/apps/web:1"},
                ],
                "ephemeralContainers": [{"name": "debug", "image": "busybox:1.36"}],
            },
            {
                "initContainerStatuses": [
                    {
                        "name": "migrate",
                        "image": "docker.io/library/postgres:16",
                        "imageID": f"docker.io/library/postgres@{DIGEST}",
                        "ready": True,
                        "restartCount": 0,
                    }
                ],
                "containerStatuses": [
                    {
                        "name": "web",
                        "image": "docker.io/library/nginx:1.27",
                        "imageID": f"docker-pullable://nginx@{DIGEST}",
                        "ready": True,
                        "restartCount": 0,
                    }
                ],
            },
        )
    ],
}
PAGE_2 = {
    "kind": "PodList",
    "apiVersion": "v1",
    "metadata": {"resourceVersion": "100"},
    "items": [
        pod(
            "kube-system",
            "kube-proxy-x1",
            {"containers": [{"name": "kube-proxy", "image": "registry.k8s.io/kube-proxy:v1.31.0"}]},
            {
                "containerStatuses": [
                    {
                        "name": "kube-proxy",
                        "image": "registry.k8s.io/kube-proxy:v1.31.0",
                        "imageID": f"registry.k8s.io/kube-proxy@{PAUSE_DIGEST}",
                        "ready": True,
                        "restartCount": 0,
                    }
                ]
            },
        )
    ],
}


@pytest.fixture
def api_server() -> Iterator[KubeStandin]:
    """The shared Kubernetes API stand-in, answering one pod a page."""
    with KubeStandin(PAGE_1["items"] + PAGE_2["items"]) as server:
        server.page_size = 1
        yield server


@pytest.fixture
def kubeconfig(api_server: KubeStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": {"server": api_server.url}}],
                "users": [{"name": "me", "user": {"token": "t0ken"}}],
                "contexts": [
                    {"name": "local", "context": {"cluster": "local", "user": "me"}},
                    {"name": "other", "context": {"cluster": "missing", "user": "me"}},
                ],
                "current-context": "local",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


def test_every_container_kind_and_digest_across_pages(
    kubeconfig: Path, api_server: KubeStandin
) -> None:
    result = CliRunner().invoke(
        cli, ["scan", "--cluster", "--context", "local", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    got = [(r["file"], r["where"], r["reference"], r.get("digest")) for r in rows]
    # In the API server's order: by namespace, then name.
    assert got == [
        (
            "kube-system/kube-proxy-x1",
            "containers[kube-proxy]",
            "registry.k8s.io/kube-proxy:v1.31.0",
            PAUSE_DIGEST,
        ),
        ("shop/web-7d9c", "initContainers[migrate]", "docker.io/library/postgres:16", DIGEST),
        ("shop/web-7d9c", "containers[web]", "docker.io/library/nginx:1.27", DIGEST),
        ("shop/web-7d9c", "ephemeralContainers[debug]", "docker.io/library/busybox:1.36", None),
    ]
    assert all(r["kind"] == "cluster" and r["line"] is None for r in rows)
    paths = [urlparse(r.path).path for r in api_server.requests]
    assert paths == ["/api/v1/pods", "/api/v1/pods"]
    assert "continue" not in api_server.requests[0].query
    assert api_server.requests[1].query["continue"] == ["1"]


def test_all_includes_first_party_and_images_format(kubeconfig: Path) -> None:
    runner = CliRunner()
    everything = json.loads(
        runner.invoke(cli, ["scan", "--cluster", "--all", "--format", "json"]).stdout
    )
    assert "us-docker.pkg.dev/acme/apps/web:1" in {r["reference"] for r in everything}
    images = runner.invoke(cli, ["scan", "--cluster", "--format", "images"]).stdout.split()
    assert images == [
        "registry.k8s.io/kube-proxy:v1.31.0",
        "docker.io/library/postgres:16",
        "docker.io/library/nginx:1.27",
        "docker.io/library/busybox:1.36",
    ]


def test_files_and_cluster_together(kubeconfig: Path, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM nginx:1.27\n")
    result = CliRunner().invoke(cli, ["scan", str(tmp_path), "--cluster", "--format", "json"])
    kinds = [r["kind"] for r in json.loads(result.stdout)]
    assert kinds[0] == "dockerfile" and kinds.count("cluster") == 4


def test_a_refused_listing_is_an_error_not_a_crash(
    kubeconfig: Path, api_server: KubeStandin
) -> None:
    api_server.fail_with = 403
    result = CliRunner().invoke(cli, ["scan", "--cluster", "--format", "json"])
    assert result.exit_code == 1
    assert "403" in result.stderr and json.loads(result.stdout) == []


def test_unknown_context_is_a_usage_error(kubeconfig: Path) -> None:
    result = CliRunner().invoke(cli, ["scan", "--cluster", "--context", "nope"])
    assert result.exit_code == 2
    assert "nope" in result.output
