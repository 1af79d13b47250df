"""rewrite points a file at an image only when the mirror has it (issue 15 §7).

Real registries: one playing the mirror, one that refuses anonymous callers.
"""

from __future__ import annotations

import json
from pathlib import Path

from armirror.cli import cli
from click.testing import CliRunner
from registry_checks import unique
from standins.images import push, single_image
from standins.registry import Registry


def test_a_typo_is_left_alone_and_named(dest_registry: Registry, tmp_path: Path) -> None:
    mirror = unique("mirror")
    prefix = f"{dest_registry.host}/{mirror}"
    push(dest_registry.url, single_image(f"{mirror}/docker.io/library/nginx", "1.27", seed=41))
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM nginx:1.27\nFROM ngnix:1.27\n")

    result = CliRunner().invoke(cli, ["rewrite", str(tmp_path), "--to", prefix])
    assert result.exit_code == 0, result.output
    assert dockerfile.read_text() == (
        f"FROM {prefix}/docker.io/library/nginx:1.27\nFROM ngnix:1.27\n"
    )
    warning = [line for line in result.stderr.splitlines() if "ngnix" in line]
    assert len(warning) == 1 and "left alone" in warning[0] and "not in the mirror" in warning[0]
    assert "1 references rewritten, 1 left alone" in result.stderr

    # --force does what it is told, without asking the mirror.
    forced = CliRunner().invoke(
        cli, ["rewrite", str(tmp_path), "--to", prefix, "--force", "--format", "json"]
    )
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["references_rewritten"] == 1
    assert f"FROM {prefix}/docker.io/library/ngnix:1.27" in dockerfile.read_text()


def test_a_mirror_that_cannot_be_asked_changes_nothing(
    htpasswd_registry: Registry, tmp_path: Path
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM nginx:1.27\n")
    prefix = f"{htpasswd_registry.host}/mirror"
    result = CliRunner().invoke(cli, ["rewrite", str(tmp_path), "--to", prefix, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert dockerfile.read_text() == "FROM nginx:1.27\n"
    (skipped,) = json.loads(result.stdout)["skipped"]
    assert "could not be asked" in skipped["reason"] and "401" in skipped["reason"]
