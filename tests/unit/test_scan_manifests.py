"""YAML/JSON scanning: shapes that hold images, shapes that do not, and exact spans."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from armirror.scan import Finding, scan_paths, scan_text


def scan(
    text: str, hint: str | None = None, type_: str = "yaml", app: str | None = None
) -> list[Finding]:
    findings, error = scan_text(text, "f.yaml", type_, hint, app)
    assert error is None, error
    return findings


def images(findings: list[Finding]) -> list[tuple[int, str]]:
    return [
        (f.line, str(f.reference) if f.reference else f"unresolved:{f.image}") for f in findings
    ]


def spans(text: str, findings: list[Finding]) -> list[list[tuple[str, str]]]:
    return [[(s.part, text[s.start : s.end]) for s in f.slots] for f in findings]


POD_SPEC = """
      initContainers: [{name: i, image: busybox:1.36}]
      containers:
      - name: c
        image: nginx:1.27
      ephemeralContainers:
      - {name: e, image: "nicolaka/netshoot:v0.13"}
"""


@pytest.mark.parametrize(
    ("kind", "prefix"),
    [
        ("Deployment", "spec:\n  template:\n    spec:"),
        ("StatefulSet", "spec:\n  template:\n    spec:"),
        ("DaemonSet", "spec:\n  template:\n    spec:"),
        ("ReplicaSet", "spec:\n  template:\n    spec:"),
        ("Job", "spec:\n  template:\n    spec:"),
    ],
)
def test_every_pod_template_and_container_list(kind: str, prefix: str) -> None:
    text = f"apiVersion: apps/v1\nkind: {kind}\nmetadata: {{name: x}}\n{prefix}{POD_SPEC}"
    assert [str(f.reference) for f in scan(text)] == [
        "docker.io/library/busybox:1.36",
        "docker.io/library/nginx:1.27",
        "docker.io/nicolaka/netshoot:v0.13",
    ]


def test_pod_and_cronjob_paths() -> None:
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
        "  containers: [{name: a, image: redis:7}]\n"
    )
    cron = (
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n"
        "    spec:\n      template:\n        spec:\n          containers:\n"
        "          - image: alpine:3\n"
    )
    assert images(scan(pod)) == [(5, "docker.io/library/redis:7")]
    assert images(scan(cron)) == [(10, "docker.io/library/alpine:3")]


def test_unrelated_documents_and_block_text_are_not_images() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  image: nginx:1\n"
        "  script: |\n    image: redis:7\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 80}]\n---\n"
        "# image: comment:1\nbranding:\n  image: logo.png\n"
    )
    assert scan(text) == []


def test_list_multi_document_and_cloud_run() -> None:
    text = (
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n"
        "  spec: {containers: [{image: ubuntu:24.04}]}\n---\n"
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: run}\nspec:\n"
        "  template:\n    spec:\n      containers:\n      - image: ghcr.io/acme/run:1\n"
    )
    found = scan(text)
    assert [(f.kind, f.line, str(f.reference)) for f in found] == [
        ("kubernetes", 7, "docker.io/library/ubuntu:24.04"),
        ("cloudrun", 16, "ghcr.io/acme/run:1"),
    ]


def test_json_manifest() -> None:
    text = (
        '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},\n'
        ' "spec": {"containers": [{"image": "alpine:3.20"}]}}'
    )
    found = scan(text, type_="json")
    assert images(found) == [(2, "docker.io/library/alpine:3.20")]
    assert spans(text, found) == [[("ref", "alpine:3.20")]]


def test_templates_are_unresolved_never_images() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        "  - image: '{{ .Values.image }}'\n  - image: ${IMAGE}\n  - image: ${IMAGE:-redis:7}\n"
        "  - image: gcr.io/$PROJECT/app:1\n"
    )
    found = scan(text)
    assert images(found) == [
        (6, "unresolved:{{ .Values.image }}"),
        (7, "unresolved:${IMAGE}"),
        (8, "docker.io/library/redis:7"),
        (9, "unresolved:gcr.io/$PROJECT/app:1"),
    ]
    assert found[1].third_party is None and found[3].third_party is False
    assert spans(text, found)[2] == [("ref", "redis:7")]


def test_spans_survive_bom_crlf_and_unicode() -> None:
    text = (
        "\ufeff# é 日本\r\napiVersion: v1\r\nkind: Pod\r\nmetadata: {name: p}\r\n"
        'spec:\r\n  containers:\r\n  - image: "alpine:3"  # ü\r\n'
    )
    found = scan(text)
    assert spans(text, found) == [[("ref", "alpine:3")]]
    assert found[0].line == 7


def test_escaped_or_multiline_values_get_no_slot() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
        '  - image: "alp\\x69ne:3"\n  - image: >-\n      redis:7\n'
    )
    found = scan(text)
    assert [str(f.reference) for f in found] == [
        "docker.io/library/alpine:3",
        "docker.io/library/redis:7",
    ]
    assert found[0].slots == () and "by hand" in (found[0].problem or "")
    assert spans(text, found)[1] == [("ref", "redis:7")]


def test_compose_defaults_merge_keys_and_escapes() -> None:
    text = (
        "x-base: &base\n  image: postgres:16\nservices:\n  db:\n    <<: *base\n"
        "  web:\n    image: ${WEB:-nginx:1.27}\n  api:\n    image: ${API}\n"
    )
    found = scan(text, "compose")
    assert images(found) == [
        (2, "docker.io/library/postgres:16"),
        (7, "docker.io/library/nginx:1.27"),
        (9, "unresolved:${API}"),
    ]
    assert spans(text, found)[1] == [("ref", "nginx:1.27")]


def test_cloudbuild_steps_images_and_substitutions() -> None:
    text = (
        "substitutions:\n  _BASE: node:20\nsteps:\n- name: $_BASE\n"
        "- name: gcr.io/cloud-builders/docker\n"
        "- name: 'ubuntu'\nimages: ['ghcr.io/acme/app:$SHORT_SHA']\n"
    )
    found = [f for f in scan(text, "cloudbuild")]
    assert images(found) == [
        (4, "docker.io/library/node:20"),
        (5, "gcr.io/cloud-builders/docker:latest"),
        (6, "docker.io/library/ubuntu:latest"),
        (7, "unresolved:ghcr.io/acme/app:$SHORT_SHA"),
    ]
    assert spans(text, found)[0] == [("ref", "node:20")]  # the substitution's value
    assert found[3].registry == "ghcr.io" and found[3].third_party is True


def test_kustomize_entries() -> None:
    text = (
        "images:\n- name: nginx\n  newTag: '1.27'\n- name: redis\n  newName: quay.io/o/redis\n"
        "  digest: sha256:" + "a" * 64 + "\n- {name: busybox}\n"
    )
    found = scan(text, "kustomize")
    assert [str(f.reference) for f in found] == [
        "docker.io/library/nginx:1.27",
        "quay.io/o/redis@sha256:" + "a" * 64,
        "docker.io/library/busybox",
    ]
    assert found[2].tagless
    assert found[0].slots[0].is_insert and found[0].slots[0].template == "\n  newName: {}"
    assert found[2].slots[0].template == ", newName: {}"


def test_helm_values_shapes() -> None:
    text = (
        "image:\n  registry: docker.io\n  repository: bitnami/nginx\n  tag: 1.20\n"
        "other:\n  image:\n    repository: grafana/grafana\n  sidecarImage: 'busybox:1.36'\n"
        "podAnnotations:\n  image: not-an-image\nglobal:\n  image: '{{ .Values.x }}'\n"
    )
    found = scan(text, "helm", app="9.9")
    assert images(found) == [
        (1, "docker.io/bitnami/nginx:1.20"),  # the tag as written, not the float 1.2
        (6, "docker.io/grafana/grafana"),  # appVersion only for the top-level image
        (8, "docker.io/library/busybox:1.36"),
        (12, "unresolved:{{ .Values.x }}"),
    ]
    assert spans(text, found)[0] == [
        ("registry", "docker.io"),
        ("repository", "bitnami/nginx"),
        ("tag+digest", "1.20"),
    ]
    top = scan("image:\n  repository: nginx\n", "helm", app="1.27")
    assert str(top[0].reference) == "docker.io/library/nginx:1.27"


def test_invalid_yaml_reports_the_parser_message_and_keeps_earlier_documents() -> None:
    text = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec: {containers: [{image: a:1}]}\n---\nimage: [\n"
    )
    findings, error = scan_text(text, "f.yaml", "yaml")
    assert [str(f.reference) for f in findings] == ["docker.io/library/a:1"]
    assert error is not None and error.startswith("invalid YAML: line 7")


def test_bad_files_are_reported_and_the_scan_goes_on(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("image: [\n")
    (tmp_path / "latin1.yaml").write_bytes(b"# caf\xe9\nimage: x\n")
    (tmp_path / "Dockerfile").write_text("FROM nginx:1\n")
    locked = tmp_path / "locked.yaml"
    locked.write_text("image: x\n")
    locked.chmod(0)
    try:
        result = scan_paths([tmp_path])
    finally:
        locked.chmod(0o644)
    messages = {e.file: e.message for e in result.errors}
    assert messages["bad.yaml"].startswith("invalid YAML")
    assert "not UTF-8" in messages["latin1.yaml"]
    if os.geteuid() != 0:
        assert "locked.yaml" in messages
    assert [str(f.reference) for f in result.findings] == ["docker.io/library/nginx:1"]


def test_chart_templates_are_read_line_by_line(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: c\nversion: 1.0.0\nappVersion: '2.0'\n"
    )
    (chart / "values.yaml").write_text("image:\n  repository: acme/app\n")
    (chart / "templates" / "d.yaml").write_text(
        "{{- if .Values.on }}\nspec:\n  containers:\n  - image: {{ .Values.image.repository }}\n"
        '  - image: "busybox:1.36"  \n{{- end }}\n'
    )
    result = scan_paths([tmp_path])
    assert result.errors == []
    assert [(f.file, f.line, f.image) for f in result.findings] == [
        ("chart/values.yaml", 1, "acme/app:2.0"),
        ("chart/templates/d.yaml", 4, "{{ .Values.image.repository }}"),
        ("chart/templates/d.yaml", 5, "busybox:1.36"),
    ]
