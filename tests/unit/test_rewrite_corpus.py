"""Rewrite the whole corpus, then check what the issue asks of every file:

1. a second scan finds no third-party reference;
2. the YAML and Dockerfile parse trees equal the originals except at the image values;
3. a second rewrite changes nothing.

Trees are compared with ruamel.yaml, a parser independent of the scanner's libyaml.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from armirror.rewrite import rewrite_paths
from armirror.scan import scan_paths
from ruamel.yaml import YAML

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "scan" / "corpus"
PREFIX = "us-docker.pkg.dev/acme/mirror"
#: Every change the rewrite makes to the corpus, written out (not computed with the
#: mapping under test): YAML values by path, Dockerfile tokens, kustomize twins.
EXPECTED = json.loads((CORPUS.parent / "corpus-rewritten.json").read_text())


@pytest.fixture(scope="module")
def rewritten(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    root = tmp_path_factory.mktemp("corpus") / "c"
    shutil.copytree(CORPUS, root)
    result = rewrite_paths([root], PREFIX)
    return root, result


def originals() -> dict[str, bytes]:
    return {
        p.relative_to(CORPUS).as_posix(): p.read_bytes() for p in CORPUS.rglob("*") if p.is_file()
    }


def test_rewrite_counts(rewritten: tuple[Path, Any]) -> None:
    _, result = rewritten
    unrewritable = [s for s in result.skipped]
    assert unrewritable == []
    assert len(result.changes) == 32  # every third-party finding in expected.json
    assert [e.file for e in result.errors] == ["broken/bad.yaml"]


def test_second_scan_finds_no_third_party_reference(rewritten: tuple[Path, Any]) -> None:
    root, _ = rewritten
    again = scan_paths([root])
    assert [f for f in again.findings if f.third_party] == []
    # what is left is exactly the unresolved templates and the images built here
    assert {f.image for f in again.findings} == {
        f.image for f in scan_paths([CORPUS]).findings if f.reference is None or f.built
    }


def test_second_rewrite_changes_nothing(rewritten: tuple[Path, Any]) -> None:
    root, _ = rewritten
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = rewrite_paths([root], PREFIX)
    assert result.changes == [] and result.files_changed == []
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_untouched_files_are_byte_identical_and_line_structure_kept(
    rewritten: tuple[Path, Any],
) -> None:
    root, result = rewritten
    changed = set(result.files_changed)
    for rel, data in originals().items():
        new = (root / rel).read_bytes()
        if rel not in changed:
            assert new == data, rel
            continue
        assert new.count(b"\r\n") == data.count(b"\r\n"), rel
        assert new.endswith(b"\n") == data.endswith(b"\n"), rel
        if not rel.endswith("kustomization.yaml"):  # the one shape that gains lines
            assert new.count(b"\n") == data.count(b"\n"), rel


def _load(text: str) -> list[Any]:
    yaml = YAML(typ="rt")
    return list(yaml.load_all(io.StringIO(text)))


def _without_twins(old: list[Any], new: list[Any], path: str, twins: list[str]) -> list[Any]:
    """A kustomize ``images`` list without the twin entries the rewrite adds: each
    follows its entry, names the mirror of the entry's ``name``, and repeats the
    rewritten entry's other keys (less a ``newName`` that the rewrite added)."""
    kept: list[Any] = []
    position = 0
    for entry in old:
        rewritten = new[position]
        kept.append(rewritten)
        position += 1
        twin = new[position] if position < len(new) else None
        if not (isinstance(twin, dict) and isinstance(entry, dict) and "name" in entry):
            continue
        if not str(twin.get("name", "")).startswith(PREFIX + "/"):
            continue
        expected = {
            key: value
            for key, value in rewritten.items()
            if key != "name" and (key != "newName" or "newName" in entry)
        }
        assert {k: v for k, v in twin.items() if k != "name"} == expected, (path, twin)
        twins.append(f"{path}: {twin['name']}")
        position += 1
    assert position == len(new), f"unexpected entries at {path}"
    return kept


def _compare(
    old: Any, new: Any, path: str, diffs: list[tuple[str, Any, Any]], twins: list[str]
) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        assert list(old) == [k for k in new if k in old], f"key order changed at {path}"
        for key in new:
            if key not in old:
                assert key == "newName", f"unexpected new key {key} at {path}"
                diffs.append((f"{path}.{key}", old.get("name"), new[key]))
                continue
            _compare(old[key], new[key], f"{path}.{key}", diffs, twins)
        assert set(old) <= set(new)
    elif isinstance(old, list) and isinstance(new, list):
        if path.endswith(".images") and len(new) > len(old):
            new = _without_twins(old, new, path, twins)
        assert len(old) == len(new), path
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _compare(a, b, f"{path}[{i}]", diffs, twins)
    elif old != new:
        diffs.append((path, old, new))


def test_yaml_trees_equal_except_image_values(rewritten: tuple[Path, Any]) -> None:
    root, result = rewritten
    diffs: list[tuple[str, Any, Any]] = []
    twins: list[str] = []
    for rel in sorted(result.files_changed):
        if not rel.endswith((".yaml", ".yml", ".json")) or "/templates/" in rel:
            continue
        old_docs = _load((CORPUS / rel).read_text())
        new_docs = _load((root / rel).read_text())
        assert len(old_docs) == len(new_docs)
        _compare(old_docs, new_docs, rel, diffs, twins)
    assert [list(d) for d in diffs] == EXPECTED["yaml"]
    # nginx and redis (its newName rewritten too) in the overlay; the flow-style busybox
    # entry gets none, and the first-party web entry needs none.
    assert EXPECTED["twins"] == twins


def _instructions(text: str) -> list[list[str]]:
    """A Dockerfile's instructions as token lists (continuations joined, comments dropped)."""
    escape = "`" if text.startswith("# escape=`") else "\\"
    joined = re.sub(re.escape(escape) + r"[ \t]*\r?\n(?:[ \t]*#[^\n]*\n)*", " ", text)
    return [
        line.split()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_dockerfile_trees_equal_except_image_tokens(rewritten: tuple[Path, Any]) -> None:
    root, result = rewritten
    changed: list[list[str]] = []
    for rel in sorted(r for r in result.files_changed if "ockerfile" in r):
        old, new = (
            _instructions((CORPUS / rel).read_text()),
            _instructions((root / rel).read_text()),
        )
        assert [i[0] for i in old] == [i[0] for i in new]
        for a, b in zip(old, new, strict=True):
            assert len(a) == len(b), (a, b)
            changed += [[rel, x, y] for x, y in zip(a, b, strict=True) if x != y]
    assert changed == EXPECTED["dockerfile"]
