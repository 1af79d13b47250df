"""The scanner cannot be exhausted (issue 12 §6): hostile files are refused by name.

The whole-command tests run `armirror scan` in a subprocess under an address-space and
CPU-time limit, so a regression fails the test instead of taking the machine down.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from armirror.scan import scan_paths
from armirror.scan.dockerfile import scan_dockerfile
from armirror.scan.limits import (
    MAX_ALIAS_NODES,
    MAX_EXPANDED_LENGTH,
    Refused,
    budget,
    count_alias_nodes,
)
from armirror.scan.manifests import scan_chart_template, scan_yaml
from armirror.scan.walk import candidates

ROOT = Path(__file__).resolve().parents[2]


def arg_bomb(lines: int) -> str:
    """``ARG A0=x`` then ``ARG An=${An-1}${An-1}``: line n+1 holds 2**n characters."""
    out = ["ARG A0=x"]
    out += [f"ARG A{n}=${{A{n - 1}}}${{A{n - 1}}}" for n in range(1, lines)]
    return "\n".join([*out, f"FROM ${{A{lines - 1}}}", ""])


def alias_bomb(levels: int, width: int = 9) -> str:
    """The classic YAML "billion laughs": each level is ``width`` aliases of the last."""
    out = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for n in range(1, levels):
        out.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * width) + "]")
    return "\n".join([*out, "image: nginx:1", ""])


def test_the_arg_bomb_is_refused_at_the_first_value_over_the_cap() -> None:
    assert MAX_EXPANDED_LENGTH == 65536
    # 2**16 characters (A16, line 17) is exactly the cap; A17 on line 18 is over it.
    with pytest.raises(Refused) as info:
        scan_dockerfile(arg_bomb(31), "Dockerfile")
    assert str(info.value) == "line 18: an expanded value is longer than 65536 characters"
    findings = scan_dockerfile(arg_bomb(17), "Dockerfile")
    assert [len(f.image) for f in findings] == [65536]


def test_a_value_at_the_cap_in_a_default_is_refused_one_character_later() -> None:
    at_cap = "a" * MAX_EXPANDED_LENGTH
    scan_dockerfile(f"ARG V={at_cap}\nARG W=${{V}}\nFROM x\n", "Dockerfile")
    with pytest.raises(Refused, match=r"^line 2: an expanded value is longer"):
        scan_dockerfile(f"ARG V={at_cap}\nARG W=${{V}}b\nFROM x\n", "Dockerfile")
    with pytest.raises(Refused, match=r"^line 3: an expanded value is longer"):
        scan_dockerfile(f"ARG V={at_cap}\nARG E\nFROM ${{V}}${{E:-x}}\n", "Dockerfile")


def test_empty_values_do_not_pile_up() -> None:
    # An empty value doubled 40 times is still empty: nothing is kept for it.
    text = "ARG A0=''\n" + "".join(f"ARG A{n}=${{A{n - 1}}}${{A{n - 1}}}\n" for n in range(1, 40))
    findings = scan_dockerfile(text + "FROM nginx${A39}:1\n", "Dockerfile")
    assert [str(f.reference) for f in findings] == ["docker.io/library/nginx:1"]


def _alias_nodes(text: str) -> int:
    with budget() as current:
        count_alias_nodes(yaml.compose(text, Loader=yaml.CSafeLoader))
        return current.alias_nodes


def test_alias_nodes_are_what_aliases_add() -> None:
    assert _alias_nodes("a: [1, 2]\nb: {c: d}\n") == 0
    # b's two aliases each repeat a's sequence of 3 nodes
    assert _alias_nodes("a: &x [1, 2]\nb: [*x, *x]\n") == 6
    assert _alias_nodes("a: &x 1\nb: [*x, *x, *x]\n") == 3  # scalars count too
    # a0 is 1+9 nodes, a1 1+9*10 = 91, a2 1+9*91 = 820: with the root, four keys and
    # "nginx:1", 927 nodes expanded; written: root, 4 keys, a0's 10, a1, a2, nginx:1 = 18
    assert _alias_nodes(alias_bomb(3)) == 927 - 18


def test_the_alias_bomb_is_refused_and_a_recursive_alias_too() -> None:
    assert MAX_ALIAS_NODES == 1_000_000
    findings, error = scan_yaml(alias_bomb(6), "values.yaml", "helm")  # 9**6: about 600,000
    assert error is None and [f.image for f in findings] == ["nginx:1"]
    with pytest.raises(Refused, match=r"^YAML aliases expand to more than 1000000 extra nodes$"):
        scan_yaml(alias_bomb(7), "values.yaml", "helm")
    with pytest.raises(Refused, match="a YAML alias refers to a node that contains it"):
        scan_yaml("a: &a [1, *a]\nimage: nginx\n", "values.yaml", "helm")
    with pytest.raises(Refused, match="a YAML alias refers to a node that contains it"):
        scan_yaml("a: &a {b: {c: *a}}\n", "values.yaml", "helm")


def test_alias_nodes_add_up_over_the_documents_of_a_file() -> None:
    six = alias_bomb(6)  # about 590,000 extra nodes: one document passes, two do not
    with budget():
        scan_yaml(six, "values.yaml", "helm")
    with budget(), pytest.raises(Refused, match="extra nodes"):
        scan_yaml(six + "---\n" + six, "values.yaml", "helm")


def test_the_time_cap_is_checked_in_every_kind_of_file(tmp_path: Path) -> None:
    files = {
        "Dockerfile": "FROM nginx:1\n",
        "values.yaml": "image: nginx:1\n",
        "k8s.yaml": "kind: Pod\napiVersion: v1\nspec: {containers: [{image: nginx:1}]}\n",
        "chart/Chart.yaml": "name: c\n",
        "chart/templates/pod.yaml": "image: nginx:1\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    from armirror.scan import scan_candidate

    refused = []
    for candidate in candidates(tmp_path):
        if candidate.rel == "chart/Chart.yaml":
            continue
        _, findings, error = scan_candidate(candidate, seconds=0)
        assert findings == []
        assert error is not None
        refused.append((error.file, error.message))
        _, findings, error = scan_candidate(candidate)
        assert error is None and [f.image for f in findings] == ["nginx:1"]
    assert sorted(refused) == [
        ("Dockerfile", "refused: took more than 0 s of CPU time"),
        ("chart/templates/pod.yaml", "refused: took more than 0 s of CPU time"),
        ("k8s.yaml", "refused: took more than 0 s of CPU time"),
        ("values.yaml", "refused: took more than 0 s of CPU time"),
    ]


def test_long_blank_runs_are_read_in_linear_time() -> None:
    # These lines made the template and ${ } patterns backtrack quadratically (minutes).
    blanks = " " * 300_000
    template = f"image: nginx{blanks}:1 # note{blanks}\n  image: {blanks}redis:7{blanks}\n"
    with budget():
        found = scan_chart_template(template, "t.yaml")
    assert [(f.line, f.image) for f in found] == [(1, f"nginx{blanks}:1"), (2, "redis:7")]
    unclosed = "${A:-" * 12_000
    with budget():
        [finding] = scan_dockerfile(f"FROM {unclosed}\n", "Dockerfile")
    assert finding.reference is None


def _hostile_tree(root: Path) -> None:
    (root / "bomb").mkdir()
    (root / "bomb" / "Dockerfile").write_text(arg_bomb(31))
    (root / "laughs").mkdir()
    (root / "laughs" / "values.yaml").write_text(alias_bomb(10))  # 9**10 nodes, 1 KB
    (root / "loop.yaml").write_text(
        "kind: Pod\napiVersion: v1\nspec: &s {containers: [{image: nginx:1}], x: *s}\n"
    )
    (root / "good").mkdir()
    (root / "good" / "Dockerfile").write_text("FROM python:3.12-slim\n")
    (root / "good" / "values.yaml").write_text("image:\n  repository: bitnami/redis\n  tag: '7'\n")


def _limited() -> None:
    gib = 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (gib, gib))
    resource.setrlimit(resource.RLIMIT_CPU, (120, 120))


def test_armirror_scan_refuses_hostile_files_by_name_and_goes_on(tmp_path: Path) -> None:
    assert len(alias_bomb(10).encode()) < 1100
    _hostile_tree(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARMIRROR_")}
    result = subprocess.run(
        [sys.executable, "-m", "armirror.cli", "scan", str(tmp_path), "--format", "json"],
        capture_output=True, text=True, env=env, cwd=ROOT, preexec_fn=_limited, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(result.stderr.splitlines()) == [
        "error: bomb/Dockerfile: refused: line 18: an expanded value is longer than "
        "65536 characters",
        "error: laughs/values.yaml: refused: YAML aliases expand to more than 1000000 extra nodes",
        "error: loop.yaml: refused: a YAML alias refers to a node that contains it",
    ]
    rows = json.loads(result.stdout)
    assert [(r["file"], r["reference"]) for r in rows] == [
        ("good/Dockerfile", "docker.io/library/python:3.12-slim"),
        ("good/values.yaml", "docker.io/bitnami/redis:7"),
    ]


def test_rewrite_leaves_hostile_files_alone(tmp_path: Path) -> None:
    _hostile_tree(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARMIRROR_")}
    result = subprocess.run(
        [sys.executable, "-m", "armirror.cli", "rewrite", str(tmp_path),
         "--to", "us-docker.pkg.dev/p/m", "--format", "json", "--force"],
        capture_output=True, text=True, env=env, cwd=ROOT, preexec_fn=_limited, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert sorted(e["file"] for e in report["errors"]) == [
        "bomb/Dockerfile",
        "laughs/values.yaml",
        "loop.yaml",
    ]
    assert sorted(report["files_changed"]) == ["good/Dockerfile", "good/values.yaml"]
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert {p for p in before if before[p] != after[p]} == {
        tmp_path / "good" / "Dockerfile",
        tmp_path / "good" / "values.yaml",
    }


def test_scan_paths_reports_the_refused_file_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "Dockerfile").write_text(arg_bomb(20))
    (tmp_path / "b.yaml").write_text("kind: Pod\napiVersion: v1\nspec: {containers: [{image: x}]}")
    result = scan_paths([tmp_path])
    assert [(e.file, e.message) for e in result.errors] == [
        ("a/Dockerfile", "refused: line 18: an expanded value is longer than 65536 characters")
    ]
    assert [f.file for f in result.findings] == ["b.yaml"]
    assert result.files_scanned == 2
