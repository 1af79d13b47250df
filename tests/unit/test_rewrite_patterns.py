"""Rewrite the patterns corpus (shapes found in real repositories) and hold it to the
invariants of issue 16:

1. every third-party finding is rewritten (nothing skipped, no error), and a second
   scan finds no third-party reference: only templates and images built here are left;
2. parse trees are equal except at image values (YAML with ruamel.yaml, a parser
   independent of the scanner's; Dockerfile instructions as tokens; .env variables),
   and each changed value is its old reference moved under the prefix;
3. comments are untouched;
4. a second rewrite changes nothing.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from armirror.reference import destination_for, try_parse
from armirror.rewrite import RewriteResult, rewrite_paths
from armirror.scan import scan_paths, scan_tree
from armirror.scan.dotenv import parse_dotenv
from ruamel.yaml import YAML

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "scan"
PATTERNS = FIXTURES / "patterns"
PREFIX = "us-docker.pkg.dev/acme/mirror"


@pytest.fixture(scope="module")
def rewritten(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RewriteResult]:
    root = tmp_path_factory.mktemp("patterns") / "p"
    shutil.copytree(PATTERNS, root)
    return root, rewrite_paths([root], PREFIX)


def third_party_rows() -> list[dict[str, Any]]:
    rows = json.loads((FIXTURES / "patterns-expected.json").read_text())
    return [r for r in rows if r["third_party"] is True]


def test_every_third_party_reference_is_rewritten(rewritten: tuple[Path, RewriteResult]) -> None:
    _, result = rewritten
    assert result.errors == [] and result.skipped == []
    assert sorted((c.file, c.line) for c in result.changes) == sorted(
        (r["file"], r["line"]) for r in third_party_rows()
    )
    assert len(result.changes) == 63


def test_second_scan_leaves_templates_and_builds(rewritten: tuple[Path, RewriteResult]) -> None:
    root, _ = rewritten
    again = scan_paths([root])
    assert again.errors == []
    assert sorted((f.file, f.line) for f in again.findings) == [
        ("build-configs/compose.yaml", 6),
        ("charts/postgres/templates/metrics/deployment.yaml", 9),
        ("charts/postgres/templates/primary/statefulset.yaml", 14),
        ("compose-env/compose.yaml", 8),
        ("go-templates/testdata/gateway.yaml", 13),
        ("skaffold/k8s/deployment.yaml", 10),
        ("skaffold/k8s/deployment.yaml", 12),
        ("skaffold/skaffold.yaml", 7),
        ("skaffold/skaffold.yaml", 11),
        ("skaffold/skaffold.yaml", 14),
        ("tekton/params.yaml", 20),  # a Tekton parameter without a default
    ]


def test_second_rewrite_changes_nothing(rewritten: tuple[Path, RewriteResult]) -> None:
    root, _ = rewritten
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    again = rewrite_paths([root], PREFIX)
    assert again.changes == [] and again.files_changed == [] and again.errors == []
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


_COMMENT = re.compile(r"(?:^|[ \t])(#.*)$")


def _comments(text: str) -> list[str]:
    return [m.group(1) for line in text.splitlines() if (m := _COMMENT.search(line))]


def test_comments_and_untouched_files_stay(rewritten: tuple[Path, RewriteResult]) -> None:
    root, result = rewritten
    changed = set(result.files_changed)
    for path in PATTERNS.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(PATTERNS).as_posix()
        old, new = path.read_text(), (root / rel).read_text()
        if rel not in changed:
            assert old == new, rel
        assert _comments(old) == _comments(new), rel
        assert new.endswith("\n") == old.endswith("\n"), rel


# -- parse trees ---------------------------------------------------------------------


def _moved(old: str, new: str) -> bool:
    """Whether ``new`` is ``old`` with one reference (or name) in it moved under PREFIX;
    the text around it (``${VAR:-`` before, a ``${TAG}`` after) kept as written."""
    start = new.find(PREFIX + "/")
    if start == -1 or old[:start] != new[:start]:
        return False
    old, new = old[start:], new[start:]
    for end in range(len(old), 0, -1):
        head, tail = old[:end], old[end:]
        reference = try_parse(head)
        if reference is None or not new.endswith(tail):
            continue
        destination = destination_for(reference, PREFIX)
        if new[: len(new) - len(tail)] in (str(destination), destination.name):
            return True
    return False


def _load(text: str) -> list[Any]:
    return list(YAML(typ="safe", pure=True).load_all(io.StringIO(text)))


def _compare(old: Any, new: Any, path: str, changes: list[tuple[str, Any, Any]]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in new:
            if key not in old:
                assert key == "newName" and path.split(".")[-1].startswith("images["), path
                changes.append((f"{path}.newName", old.get("name"), new[key]))
        assert set(old) <= set(new), path
        for key in old:
            _compare(old[key], new[key], f"{path}.{key}", changes)
    elif isinstance(old, list) and isinstance(new, list):
        if path.endswith(".images"):  # the twins a rewrite adds for rewritten bases
            new = [
                e
                for e in new
                if not (isinstance(e, dict) and str(e.get("name", "")).startswith(PREFIX + "/"))
            ]
        assert len(old) == len(new), path
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            _compare(a, b, f"{path}[{index}]", changes)
    elif isinstance(old, str) and isinstance(new, str) and "\n" in old and old != new:
        _compare(_load(old), _load(new), f"{path}(inline)", changes)  # an inline patch
    elif old != new:
        changes.append((path, old, new))


def test_yaml_trees_equal_except_image_values(rewritten: tuple[Path, RewriteResult]) -> None:
    root, result = rewritten
    types = {f.candidate.rel: f.candidate.type for f in scan_tree([PATTERNS]).files}
    checked = 0
    for rel in result.files_changed:
        if types[rel] not in ("yaml", "json", "kustomize-patch"):
            continue
        if "{{" in (PATTERNS / rel).read_text():  # a Go template: not YAML until rendered
            continue
        changes: list[tuple[str, Any, Any]] = []
        _compare(_load((PATTERNS / rel).read_text()), _load((root / rel).read_text()), rel, changes)
        assert changes, rel
        for path, old, new in changes:
            assert re.search(r"(image|Image|name|newName|registry|repository|default)$", path), path
            if path.endswith(".registry"):
                assert (old, new) == ("docker.io", "us-docker.pkg.dev"), path
            elif path.endswith(".repository") and "/" not in old.split(":")[0].split("/")[0]:
                assert new in (f"acme/mirror/docker.io/{old}", f"{PREFIX}/docker.io/{old}"), path
            elif path.endswith(".newName") and old is not None and not new.startswith(PREFIX):
                pytest.fail(f"{path}: {new}")
            else:
                assert old is None or _moved(old, new), (path, old, new)
        checked += 1
    assert checked == 26  # of 41 changed: 12 Dockerfiles, 2 templates and a .env


def test_templates_change_only_their_literal_image_lines(
    rewritten: tuple[Path, RewriteResult],
) -> None:
    root, result = rewritten
    templates = [rel for rel in result.files_changed if "{{" in (PATTERNS / rel).read_text()]
    assert sorted(templates) == [
        "charts/postgres/templates/primary/statefulset.yaml",
        "go-templates/testdata/gateway.yaml",
    ]
    for rel in templates:
        old, new = (PATTERNS / rel).read_text().splitlines(), (root / rel).read_text().splitlines()
        assert len(old) == len(new)
        for a, b in zip(old, new, strict=True):
            if a != b:
                key, _, value = a.partition("image: ")
                assert b.startswith(key + "image: ") and "{{" not in a, (a, b)
                assert _moved(value, b[len(key) + 7 :]), (a, b)


def _instructions(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_dockerfile_instructions_equal_except_images(rewritten: tuple[Path, RewriteResult]) -> None:
    root, result = rewritten
    types = {f.candidate.rel: f.candidate.type for f in scan_tree([PATTERNS]).files}
    dockerfiles = [rel for rel in result.files_changed if types[rel] == "dockerfile"]
    assert len(dockerfiles) == 12
    for rel in dockerfiles:
        old, new = (
            _instructions((PATTERNS / rel).read_text()),
            _instructions((root / rel).read_text()),
        )
        assert [len(i) for i in old] == [len(i) for i in new], rel
        for a, b in zip(old, new, strict=True):
            for x, y in zip(a, b, strict=True):
                if x == y:
                    continue
                key, _, value = x.rpartition("=")  # ARG NAME=value
                quote = value[:1] if value[:1] in "'\"" else ""
                assert y.startswith(key + ("=" if key else "") + quote), (x, y)
                moved = y[len(key) + (1 if key else 0) :].strip(quote)
                assert _moved(value.strip(quote), moved), (x, y)


def test_dotenv_keeps_its_variables(rewritten: tuple[Path, RewriteResult]) -> None:
    root, _ = rewritten
    old = parse_dotenv((PATTERNS / "compose-env" / ".env").read_text())
    new = parse_dotenv((root / "compose-env" / ".env").read_text())
    assert list(old) == list(new)
    changed = {k for k in old if old[k].value != new[k].value}
    assert changed == {"GRAFANA_IMAGE", "COLLECTOR_IMAGE"}
    assert all(_moved(old[k].value, new[k].value) for k in changed)
