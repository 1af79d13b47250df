"""rewrite: only the reference changes, in every shape; atomic, idempotent, honest."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from armirror.cli import cli
from armirror.reference import destination_for, parse
from armirror.rewrite import rewrite_paths, rewrite_text
from armirror.scan import scan_text
from click.testing import CliRunner

PREFIX = "us-docker.pkg.dev/acme/mirror"
M = PREFIX + "/docker.io/library"
DIGEST = "sha256:" + "b" * 64


def rewrite(text: str, type_: str = "yaml", hint: str | None = None, **kwargs: object) -> str:
    findings, error = scan_text(text, "f", type_, hint)
    assert error is None
    new, _, _, _ = rewrite_text(text, findings, PREFIX, **kwargs)  # type: ignore[arg-type]
    # a second rewrite of the result changes nothing
    again, error = scan_text(new, "f", type_, hint)
    assert error is None
    assert rewrite_text(new, again, PREFIX, **kwargs)[0] == new  # type: ignore[arg-type]
    return new


POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"


@pytest.mark.parametrize(
    ("written", "rewritten"),
    [
        ("nginx:1.27", f"{M}/nginx:1.27"),
        ("'nginx:1.27'   # pinned", f"'{M}/nginx:1.27'   # pinned"),
        ('"nginx:1.27"', f'"{M}/nginx:1.27"'),
        ("nginx", f"{M}/nginx"),  # implicit latest stays implicit
        ("quay.io/a/b@" + DIGEST, f"{PREFIX}/quay.io/a/b@{DIGEST}"),
        ("localhost:5000/x:1", f"{PREFIX}/localhost_5000/x:1"),
    ],
)
def test_quoting_and_comments_stay(written: str, rewritten: str) -> None:
    assert rewrite(POD + f"  - image: {written}\n") == POD + f"  - image: {rewritten}\n"


def test_crlf_and_missing_final_newline_stay() -> None:
    text = POD.replace("\n", "\r\n") + "  - image: redis:7\r\n  - image: alpine:3"
    assert (
        rewrite(text)
        == POD.replace("\n", "\r\n") + f"  - image: {M}/redis:7\r\n  - image: {M}/alpine:3"
    )


def test_first_party_and_templates_are_left_alone() -> None:
    text = POD + "  - image: gcr.io/p/a:1\n  - image: us-docker.pkg.dev/p/r/a:1\n  - image: ${X}\n"
    findings, _ = scan_text(text, "f", "yaml")
    new, changes, _, unresolved = rewrite_text(text, findings, PREFIX)
    assert new == text and changes == []
    assert [f.image for f in unresolved] == ["${X}"]
    moved = rewrite_text(text, findings, PREFIX, include_first_party=True)[0]
    assert f"{PREFIX}/gcr.io/p/a:1" in moved and "us-docker.pkg.dev/p/r/a:1" in moved


def test_same_mapping_as_copy() -> None:
    for source in ["nginx", "quay.io/a/b:1", "registry.k8s.io/pause:3.9", "ghcr.io/o/r@" + DIGEST]:
        text = POD + f"  - image: {source}\n"
        new = rewrite(text)
        assert new == POD + f"  - image: {_familiar_dest(source)}\n"


def _familiar_dest(source: str) -> str:
    dest = destination_for(parse(source), PREFIX)
    return dest.name if ":" not in source and "@" not in source else str(dest)


def test_dockerfile_shapes() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=python:3.12-slim\n"
        "ARG REG=ghcr.io\n"
        "FROM ${BASE} AS build\n"
        "FROM ${REG}/acme/tool:1 AS tool\n"
        "COPY --from=quay.io/a/b:2 /x /y\n"
        "FROM build\n"
    )
    assert rewrite(text, "dockerfile") == (
        f"# syntax={PREFIX}/docker.io/docker/dockerfile:1\n"
        f"ARG BASE={M}/python:3.12-slim\n"
        f"ARG REG={PREFIX}/ghcr.io\n"
        "FROM ${BASE} AS build\n"
        "FROM ${REG}/acme/tool:1 AS tool\n"
        f"COPY --from={PREFIX}/quay.io/a/b:2 /x /y\n"
        "FROM build\n"
    )


def test_shared_arg_with_conflicting_destinations_is_skipped() -> None:
    text = "ARG R=docker.io\nFROM ${R}/nginx:1\nFROM ${R}/bitnami/redis:7\n"
    findings, _ = scan_text(text, "f", "dockerfile")
    _new, changes, skipped, _ = rewrite_text(text, findings, PREFIX)
    assert len(changes) == 1 and len(skipped) == 1
    assert "shares its value" in skipped[0].reason


def test_kustomize_gets_new_name_in_its_style() -> None:
    text = (
        "images:\n  - name: nginx\n    newTag: '1.27'\n"
        "  - {name: redis, newTag: '7'}\n  - name: busybox\n"
        "    newName: quay.io/x/busybox  # fork\n"
    )
    assert rewrite(text, hint="kustomize") == (
        f"images:\n  - name: nginx\n    newName: {M}/nginx\n    newTag: '1.27'\n"
        f"  - name: {M}/nginx\n    newTag: '1.27'\n"
        f"  - {{name: redis, newName: {M}/redis, newTag: '7'}}\n"
        f"  - name: busybox\n    newName: {PREFIX}/quay.io/x/busybox  # fork\n"
        f"  - name: {M}/busybox\n    newName: {PREFIX}/quay.io/x/busybox\n"
    )


def test_kustomize_twin_keeps_line_endings_and_a_missing_final_newline() -> None:
    text = "images:\r\n- name: nginx   # pinned by ops\r\n  newTag: '1.27'"
    assert rewrite(text, hint="kustomize") == (
        f"images:\r\n- name: nginx   # pinned by ops\r\n  newName: {M}/nginx\r\n"
        f"  newTag: '1.27'\r\n- name: {M}/nginx\r\n  newTag: '1.27'"
    )


def test_helm_maps() -> None:
    text = (
        "image:\n  registry: docker.io\n  repository: bitnami/nginx\n"
        "  tag: 1.27\nother:\n  image:\n    repository: grafana/grafana\n"
        '    tag: "11"\n'
    )
    assert rewrite(text, hint="helm") == (
        f"image:\n  registry: us-docker.pkg.dev\n"
        f"  repository: acme/mirror/docker.io/bitnami/nginx\n  tag: 1.27\n"
        f'other:\n  image:\n    repository: {PREFIX}/docker.io/grafana/grafana\n    tag: "11"\n'
    )


def test_pinning_writes_tag_and_digest_where_each_shape_can() -> None:
    dest = {
        destination_for(parse(s), PREFIX): DIGEST for s in ["nginx:1.27", "redis:7", "alpine:3"]
    }
    pod = POD + "  - image: nginx:1.27\n  - image: mysql:8\n"
    findings, _ = scan_text(pod, "f", "yaml")
    new, _changes, skipped, _ = rewrite_text(pod, findings, PREFIX, digests=dest)
    assert new == POD + f"  - image: {M}/nginx:1.27@{DIGEST}\n  - image: mysql:8\n"
    assert "not found at the destination" in skipped[0].reason
    assert rewrite("images:\n- name: redis\n  newTag: '7'\n", hint="kustomize", digests=dest) == (
        f"images:\n- name: redis\n  newName: {M}/redis\n  digest: {DIGEST}\n  newTag: '7'\n"
        f"- name: {M}/redis\n  newTag: '7'\n  digest: {DIGEST}\n"
    )
    assert rewrite(
        "image:\n  repository: alpine\n  tag: '3'\n  digest: ''\n", hint="helm", digests=dest
    ) == (f"image:\n  repository: {M}/alpine\n  tag: '3'\n  digest: '{DIGEST}'\n")


def test_dry_run_writes_nothing_and_prints_a_diff(tmp_path: Path) -> None:
    target = tmp_path / "Dockerfile"
    target.write_text("FROM nginx:1.27")
    before = target.stat().st_mtime_ns
    result = CliRunner().invoke(
        cli, ["rewrite", str(tmp_path), "--to", PREFIX, "--dry-run", "--force"]
    )
    assert result.exit_code == 0, result.output
    assert target.read_text() == "FROM nginx:1.27" and target.stat().st_mtime_ns == before
    assert (
        f"-FROM nginx:1.27\n\\ No newline at end of file\n+FROM {M}/nginx:1.27\n" in result.stdout
    )
    assert "1 files would change, 1 references rewritten" in result.stderr  # a message


def test_write_is_atomic_keeps_mode_and_reports_json(tmp_path: Path) -> None:
    target = tmp_path / "deploy.yaml"
    target.write_text(POD + "  - image: nginx:1.27\n")
    target.chmod(0o640)
    (tmp_path / "link.yaml").symlink_to(target)
    result = CliRunner().invoke(
        cli, ["rewrite", str(tmp_path), "--to", PREFIX, "--format", "json", "--force"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["files_changed"] == ["deploy.yaml"] and report["references_rewritten"] == 1
    assert report["changes"][0]["from"] == "docker.io/library/nginx:1.27"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert (tmp_path / "link.yaml").is_symlink()
    assert [
        p.name for p in tmp_path.iterdir() if p.name.startswith(".")
    ] == []  # no temp files left
    second = CliRunner().invoke(
        cli, ["rewrite", str(tmp_path), "--to", PREFIX, "--format", "json", "--force"]
    )
    assert json.loads(second.stdout)["references_rewritten"] == 0


def test_a_file_that_does_not_parse_is_left_alone(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(POD + "  - image: nginx:1\n    x: [\n")
    result = rewrite_paths([tmp_path], PREFIX)
    assert bad.read_text().endswith("x: [\n")
    assert result.errors and result.errors[0].file == "bad.yaml" and result.changes == []


def test_a_file_changed_meanwhile_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "Dockerfile"
    target.write_text("FROM nginx:1\n")
    import armirror.rewrite as rw

    real = rw.rewrite_text

    def edit_then_rewrite(*args, **kwargs):  # type: ignore[no-untyped-def]
        target.write_text("FROM nginx:2\n")  # someone saves the file mid-run
        return real(*args, **kwargs)

    monkeypatch.setattr(rw, "rewrite_text", edit_then_rewrite)
    result = rw.rewrite_paths([tmp_path], PREFIX)
    assert target.read_text() == "FROM nginx:2\n"
    assert "changed while" in result.errors[0].message


def test_bad_prefix_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["rewrite", str(tmp_path), "--to", "nohost"])
    assert result.exit_code == 2


def test_unreadable_directory_entry_does_not_stop_the_run(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM nginx:1\n")
    (tmp_path / "x.yaml").write_bytes(b"\xff\xfe image: bad\n")
    result = rewrite_paths([tmp_path], PREFIX)
    assert result.files_changed == ["Dockerfile"]
    assert [e.file for e in result.errors] == ["x.yaml"]
    assert os.path.exists(tmp_path / "Dockerfile")


def test_images_built_here_are_left_alone(tmp_path: Path) -> None:
    compose = "services:\n  app:\n    build: .\n    image: acme/app:1\n  db:\n    image: redis:7\n"
    (tmp_path / "compose.yaml").write_text(compose)
    (tmp_path / "skaffold.yaml").write_text(
        "apiVersion: skaffold/v4beta11\nkind: Config\nbuild:\n  artifacts:\n  - image: web\n"
    )
    (tmp_path / "k8s.yaml").write_text(
        POD + "  - {name: w, image: web}\n  - {name: r, image: redis:7}\n"
    )
    result = rewrite_paths([tmp_path], PREFIX)
    assert sorted((c.file, c.line) for c in result.changes) == [
        ("compose.yaml", 6),
        ("k8s.yaml", 7),
    ]
    assert (tmp_path / "compose.yaml").read_text() == compose.replace("redis:7", f"{M}/redis:7")
    assert "image: web}" in (tmp_path / "k8s.yaml").read_text()
    assert result.skipped == [] and result.errors == []


def test_an_image_in_dotenv_is_rewritten_there(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: ${A_IMAGE}\n")
    (tmp_path / ".env").write_text("# images\nA_IMAGE=redis:7  # pinned\nOTHER=x\n")
    result = rewrite_paths([tmp_path], PREFIX)
    assert [(c.file, c.line, c.destination) for c in result.changes] == [
        (".env", 2, f"{M}/redis:7")
    ]
    assert (tmp_path / ".env").read_text() == f"# images\nA_IMAGE={M}/redis:7  # pinned\nOTHER=x\n"
    assert (tmp_path / "compose.yaml").read_text() == "services:\n  a:\n    image: ${A_IMAGE}\n"
    assert rewrite_paths([tmp_path], PREFIX).changes == []


def test_an_overlay_entry_resolved_to_several_images_gains_one_twin(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "kustomization.yaml").write_text("resources: [pods.yaml]\n")
    (tmp_path / "base" / "pods.yaml").write_text(
        POD + "  - {name: a, image: nginx:1.25}\n  - {name: b, image: nginx:1.26}\n"
    )
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [base]\nimages:\n- name: nginx\n  newName: quay.io/x/nginx\n"
    )
    result = rewrite_paths([tmp_path], PREFIX)
    assert result.errors == [] and result.skipped == []
    overlay = [c.destination for c in result.changes if c.file == "kustomization.yaml"]
    assert overlay == [f"{PREFIX}/quay.io/x/nginx:1.25", f"{PREFIX}/quay.io/x/nginx:1.26"]
    assert (tmp_path / "kustomization.yaml").read_text() == (
        "resources: [base]\nimages:\n- name: nginx\n"
        f"  newName: {PREFIX}/quay.io/x/nginx\n"
        f"- name: {M}/nginx\n"
        f"  newName: {PREFIX}/quay.io/x/nginx\n"
    )
