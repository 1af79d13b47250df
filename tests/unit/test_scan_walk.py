"""The walk: .gitignore (nested, negated), .git, symlinks, file names."""

from __future__ import annotations

from pathlib import Path

import pytest
from armirror.scan import classify, scan_paths


def files(root: Path) -> list[str]:
    return sorted({f.file for f in scan_paths([root]).findings})


def test_gitignore_nested_and_negated_and_dot_git(tmp_path: Path) -> None:
    for rel in [
        "Dockerfile",
        "vendor/Dockerfile",
        "a/Dockerfile",
        "a/keep/Dockerfile",
        "a/b.Dockerfile",
        ".git/Dockerfile",
        "build/x/Dockerfile",
    ]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("FROM nginx:1\n")
    (tmp_path / ".gitignore").write_text("vendor/\n/build\n")
    (tmp_path / "a" / ".gitignore").write_text("*\n!*/\n!keep/**\n!*.Dockerfile\n")
    assert files(tmp_path) == ["Dockerfile", "a/b.Dockerfile", "a/keep/Dockerfile"]


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM nginx:1\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link").symlink_to(outside)
    (tree / "Dockerfile.dev").symlink_to(outside / "Dockerfile")
    assert files(tree) == []


def test_a_file_path_is_reported_as_given(tmp_path: Path) -> None:
    (tmp_path / "Containerfile").write_text("FROM nginx:1\n")
    result = scan_paths([tmp_path / "Containerfile"])
    assert [f.file for f in result.findings] == [(tmp_path / "Containerfile").as_posix()]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Dockerfile", ("dockerfile", None)),
        ("Dockerfile.prod", ("dockerfile", None)),
        ("api.Dockerfile", ("dockerfile", None)),
        ("Containerfile", ("dockerfile", None)),
        ("docker-compose.override.yml", ("yaml", "compose")),
        ("compose.yaml", ("yaml", "compose")),
        ("cloudbuild.yaml", ("yaml", "cloudbuild")),
        ("cloudbuild-release.json", ("json", "cloudbuild")),
        ("kustomization.yaml", ("yaml", "kustomize")),
        ("values.yaml", ("yaml", "helm")),
        ("values-prod.yaml", ("yaml", "helm")),
        ("prod.values.yaml", ("yaml", "helm")),
        ("deploy.yml", ("yaml", None)),
        ("README.md", None),
        ("Dockerfile.md", None),  # documentation, not a Dockerfile
        ("Dockerfile.dockerignore", None),
        ("Dockerfile-base", ("dockerfile", None)),
        ("Dockerfile_dev", ("dockerfile", None)),
        ("Dockerfile_4-2", ("dockerfile", None)),
        ("Dockerfile-failure", ("dockerfile", None)),
        ("Containerfile.arm64", ("dockerfile", None)),
        ("Containerfile-ci", ("dockerfile", None)),
        ("web.dockerfile", ("dockerfile", None)),
        ("Dockerfile.j2", ("dockerfile", None)),
        ("Dockerfiles", None),
        ("MyDockerfile", None),
        ("skaffold.yaml", ("yaml", "skaffold")),
    ],
)
def test_classify(name: str, expected: tuple[str, str | None] | None) -> None:
    assert classify(Path(name)) == expected


def test_gitignore_above_a_scanned_subdirectory_applies(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("*.generated.yaml\n")
    sub = tmp_path / "k8s"
    sub.mkdir()
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{image: a:1}]}\n"
    (sub / "x.generated.yaml").write_text(pod)
    (sub / "x.yaml").write_text(pod)
    assert files(sub) == ["x.yaml"]


def test_an_ignored_directory_named_explicitly_is_scanned(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitignore").write_text("work/\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "Dockerfile").write_text("FROM nginx:1\n")
    assert files(tmp_path) == []
    assert files(work) == ["Dockerfile"]
