"""rewrite --pin-digests against a real registry playing Artifact Registry.

The digest is read at the destination with HEAD requests through armirror's registry
client; a reference that is not at the destination yet is left alone and listed.
"""

from __future__ import annotations

import json
from pathlib import Path

from armirror.cli import cli
from click.testing import CliRunner
from registry_checks import unique
from standins.images import push, single_image
from standins.registry import Registry


def test_pin_digests_from_the_destination(dest_registry: Registry, tmp_path: Path) -> None:
    mirror = unique("mirror")
    prefix = f"{dest_registry.host}/{mirror}"
    nginx = single_image(f"{mirror}/docker.io/library/nginx", "1.27", seed=31)
    digest = push(dest_registry.url, nginx)
    redis = single_image(f"{mirror}/quay.io/opstree/redis", "v7", seed=32)
    redis_digest = push(dest_registry.url, redis)

    (tmp_path / "Dockerfile").write_text("FROM nginx:1.27 AS base\nFROM postgres:16\n")
    (tmp_path / "kustomization.yaml").write_text(
        "images:\n- name: redis\n  newName: quay.io/opstree/redis\n  newTag: v7\n"
    )
    result = CliRunner().invoke(
        cli, ["rewrite", str(tmp_path), "--to", prefix, "--pin-digests", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (tmp_path / "Dockerfile").read_text() == (
        f"FROM {prefix}/docker.io/library/nginx:1.27@{digest} AS base\nFROM postgres:16\n"
    )
    assert (tmp_path / "kustomization.yaml").read_text() == (
        f"images:\n- name: redis\n  newName: {prefix}/quay.io/opstree/redis\n"
        f"  digest: {redis_digest}\n  newTag: v7\n"
        # the twin for resources that name the mirror of redis, pinned the same way
        f"- name: {prefix}/docker.io/library/redis\n"
        f"  newName: {prefix}/quay.io/opstree/redis\n  newTag: v7\n  digest: {redis_digest}\n"
    )
    assert [s["image"] for s in report["skipped"]] == ["postgres:16"]
    assert "not in the mirror" in report["skipped"][0]["reason"]

    again = CliRunner().invoke(cli, ["rewrite", str(tmp_path), "--to", prefix, "--pin-digests"])
    assert again.exit_code == 0
    assert "0 files changed, 0 references rewritten" in again.stderr
