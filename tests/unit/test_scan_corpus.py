"""The corpus: exact findings, and the command line's formats and exit status."""

from __future__ import annotations

import json
from pathlib import Path

from armirror.cli import cli
from armirror.scan import scan_paths
from click.testing import CliRunner

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "scan"
CORPUS = FIXTURES / "corpus"


def expected() -> list[dict[str, object]]:
    return json.loads((FIXTURES / "expected.json").read_text())


def test_exact_findings() -> None:
    result = scan_paths([CORPUS])
    got = [
        {
            "file": f.file,
            "line": f.line,
            "kind": f.kind,
            "image": f.image,
            "reference": str(f.reference) if f.reference else None,
            "third_party": f.third_party,
            **({"built": True} if f.built else {}),
        }
        for f in result.findings
    ]
    assert got == expected()
    assert [(e.file, e.message.split(":")[0]) for e in result.errors] == [
        ("broken/bad.yaml", "invalid YAML")
    ]


def test_all_adds_first_party_references() -> None:
    everything = scan_paths([CORPUS], include_first_party=True).findings
    first_party = {(f.file, f.line) for f in everything if f.third_party is False}
    assert {
        ("app/Dockerfile", 21),
        ("k8s/workloads.yaml", 28),
        ("k8s/debug-pod.json", 18),
        ("cloudbuild.yaml", 12),
        ("overlays/prod/kustomization.yaml", 12),
    } <= first_party


def test_cli_json_images_table_and_exit_status() -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["scan", str(CORPUS), "--format", "json"])
    assert out.exit_code == 1  # broken/bad.yaml could not be parsed
    rows = json.loads(out.stdout)
    assert len(rows) == len(expected())
    assert set(rows[0]) >= {"file", "line", "kind", "image", "reference", "registry", "third_party"}
    assert "broken/bad.yaml" in out.stderr

    images = runner.invoke(cli, ["scan", str(CORPUS), "--format", "images"]).stdout.split()
    assert len(images) == len(set(images))
    assert "docker.io/library/nginx:1.27.1" in images
    assert not any(i.startswith(("gcr.io", "us-docker.pkg.dev")) for i in images)
    assert "docker.io/envoyproxy/envoy" not in images  # no tag: not copyable as is

    table = runner.invoke(cli, ["scan", str(CORPUS / "k8s")], env={"COLUMNS": "200"})
    assert table.exit_code == 0
    assert "docker.io/library/nginx:1.27.1" in table.stdout
    assert "unresolved" in table.stdout and "${SEED_IMAGE}" in table.stdout


def test_cli_bad_path_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["scan", "/nonexistent/path"])
    assert result.exit_code == 2
