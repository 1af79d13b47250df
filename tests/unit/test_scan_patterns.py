"""Shapes found in real repositories (issue 16), each reproduced by a fixture of our own
in tests/fixtures/scan/patterns, with its findings written out by hand; and the rules
behind them, table by table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from armirror.scan import scan_paths, scan_tree
from armirror.scan.cloudbuild import build_files
from armirror.scan.dotenv import parse_dotenv
from armirror.scan.kustomize import ImageEntry, Kustomization
from armirror.scan.manifests import scan_yaml, scan_yaml_file
from armirror.scan.overlays import Resolver, apply, split
from armirror.scan.walk import CHART_TEMPLATE, candidates
from armirror.scan.yamldoc import LOADER
from yaml import compose

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "scan"
PATTERNS = FIXTURES / "patterns"
SHA = "sha256:" + "ab" * 32


def row(finding: Any) -> dict[str, Any]:
    return {
        "file": finding.file,
        "line": finding.line,
        "kind": finding.kind,
        "image": finding.image,
        "reference": str(finding.reference) if finding.reference else None,
        "third_party": finding.third_party,
        **({"built": True} if finding.built else {}),
    }


def test_exact_findings_of_the_patterns_corpus() -> None:
    result = scan_paths([PATTERNS])
    assert result.errors == []
    assert [row(f) for f in result.findings] == json.loads(
        (FIXTURES / "patterns-expected.json").read_text()
    )


def test_recall_is_one_and_nothing_else_is_called_third_party() -> None:
    expected = json.loads((FIXTURES / "patterns-expected.json").read_text())
    truth = {(r["file"], r["line"]) for r in expected if r["third_party"] is True}
    found = {(f.file, f.line) for f in scan_paths([PATTERNS]).findings if f.third_party}
    assert len(truth) == 63
    assert found == truth


def test_every_first_party_reference_is_found_with_all() -> None:
    everything = {
        (f.file, f.line) for f in scan_paths([PATTERNS], include_first_party=True).findings
    }
    assert {
        ("build-configs/cloudbuild.yaml", 4),  # gcr.io/cloud-builders/docker
        ("build-configs/cloudbuild.yaml", 7),  # gcr.io/kaniko-project/executor
        ("build-configs/cloudbuild.yaml", 20),  # the image it pushes (unresolved)
        ("build-configs/docker/app.build", 5),  # gcr.io/distroless
        ("build-names/Dockerfile_4-2", 3),
        ("skaffold/skaffold.yaml", 13),  # gcr.io/buildpacks/builder
        ("tekton/task.yaml", 16),  # gcr.io/go-containerregistry/crane
    } <= everything
    # what is never an image, even with --all
    never = {
        "build-names/Dockerfile.md",
        "build-names/Dockerfile.dockerignore",
        "crds/allowlist.yaml",
        "crds/crd.yaml",
        "negatives/.github/workflows/ci.yml",
        "negatives/.devcontainer/devcontainer.json",
        "negatives/chart-tests/deployment_test.yaml",
        "negatives/docs/notes.yaml",
    }
    assert not {file for file, _ in everything} & never
    assert ("ingress/deploy.yaml", 12) not in everything  # ConfigMap data
    assert ("ingress/deploy.yaml", 19) not in everything  # an annotation


# -- kustomize: how an images entry changes an image ---------------------------------


@pytest.mark.parametrize(
    ("image", "parts"),
    [
        ("nginx", ("nginx", "", "")),
        ("nginx:1.25", ("nginx", "1.25", "")),
        ("localhost:5000/x", ("localhost:5000/x", "", "")),
        ("localhost:5000/x:1", ("localhost:5000/x", "1", "")),
        (f"x:1@{SHA}", ("x", "1", SHA)),
        (f"x@{SHA}", ("x", "", SHA)),
        (f"a.io:443/b/c:t@{SHA}", ("a.io:443/b/c", "t", SHA)),
    ],
)
def test_split(image: str, parts: tuple[str, str, str]) -> None:
    assert split(image) == parts


def entry(
    name: str | None, new_name: str | None = None, tag: str | None = None, digest: str | None = None
) -> ImageEntry:
    return ImageEntry(name, new_name, tag, digest, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rule", "image", "result"),
    [
        (entry("nginx", "q.io/n"), "nginx:1.25", "q.io/n:1.25"),  # the tag comes along
        (entry("nginx", "q.io/n"), "nginx", "q.io/n"),
        (entry("nginx", "q.io/n"), f"nginx@{SHA}", f"q.io/n@{SHA}"),
        (entry("nginx", "q.io/n"), f"nginx:1@{SHA}", f"q.io/n:1@{SHA}"),
        (entry("nginx", tag="2"), f"nginx:1@{SHA}", "nginx:2"),  # newTag clears the digest
        (entry("nginx", digest=SHA), "nginx:1", f"nginx@{SHA}"),  # digest clears the tag
        (entry("nginx", tag="2", digest=SHA), "nginx:1", f"nginx:2@{SHA}"),
        (entry("nginx", "q.io/n", "2"), "nginx:1", "q.io/n:2"),
        (entry("nginx"), "nginx:1", "nginx:1"),  # a placeholder matches and keeps all
        (entry("nginx", "q.io/n"), "nginxx:1", None),
        (entry("nginx", "q.io/n"), "docker.io/library/nginx:1", None),  # names match as written
        (entry("nginx", "q.io/n"), "library/nginx:1", None),
        (entry(None, "q.io/n"), "nginx:1", None),
        (entry("localhost:5000/x", tag="9"), "localhost:5000/x", "localhost:5000/x:9"),
    ],
)
def test_apply(rule: ImageEntry, image: str, result: str | None) -> None:
    assert apply(rule, image) == result


def kustomization(
    resources: tuple[str, ...], *entries: ImageEntry, components: tuple[str, ...] = ()
) -> Kustomization:
    return Kustomization(resources, components, entries, (), ())


def test_entries_apply_in_order_bases_first_and_cycles_end() -> None:
    first, second = entry("nginx", "a.io/nginx"), entry("a.io/nginx", tag="9")
    base_rule = entry("redis", tag="7")
    files = {"/t/base/app.yaml": ["nginx:1", "redis:6", "envoy:1"]}
    tree = {
        "/t/base": kustomization(("app.yaml",), base_rule),
        "/t/prod": kustomization(("../base", "https://example.com/remote"), first, second),
        "/t/loop-a": kustomization(("../loop-b",)),
        "/t/loop-b": kustomization(("../loop-a",)),
    }
    resolver = Resolver(tree, files.get)
    assert resolver.build("/t/prod") == ["a.io/nginx:9", "redis:7", "envoy:1"]
    assert resolver.build("/t/loop-a") == []
    assert [f for f in resolver.produced.values()] == [
        ["redis:7"],
        ["a.io/nginx:1"],
        ["a.io/nginx:9"],
    ]


def test_components_apply_to_what_the_kustomization_has_so_far() -> None:
    rule = entry("nginx", tag="2")
    tree = {
        "/t/app": kustomization(("app.yaml",), components=("../comp", "../missing")),
        "/t/comp": kustomization(("extra.yaml",), rule),
    }
    files = {"/t/app/app.yaml": ["nginx:1"], "/t/comp/extra.yaml": ["nginx:3", "busybox:1"]}
    assert Resolver(tree, files.get).build("/t/app") == ["nginx:2", "busybox:1"]  # distinct


# -- kustomize: patches ----------------------------------------------------------------

KUSTOMIZATION = """\
resources: [deploy.yaml]
patches:
- patch: |-
    - op: remove
      path: /spec/template/spec/containers/0
    - op: replace
      path: /spec/template/spec/containers/0/image
      value: redis:7.4
    - op: add
      path: /spec/template/spec/initContainers
      value:
      - name: a
        image: alpine:3.20
      - name: b
        image: "busybox:1.36"
    - op: add
      path: /spec/template/spec
      value:
        containers:
        - {name: c, image: envoyproxy/envoy:v1.31.0}
    - op: add
      path: /metadata/labels/image
      value: not-an-image-but-a-label
- path: more.yaml
  target: {kind: Deployment}
- patch: '[{"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "d", "image": "nats:2.10"}}]'
- patch: >-
    [{"op": "add", "path": "/spec/template/spec/containers/-",
    "value": {"name": "e", "image": "memcached:1.6"}}]
"""


def test_json_patch_operations() -> None:
    scanned = scan_yaml_file(KUSTOMIZATION, "k/kustomization.yaml", "kustomize")
    assert [(f.line, f.image, f.kind, bool(f.slots)) for f in scanned.findings] == [
        (8, "redis:7.4", "kustomize", True),
        (13, "alpine:3.20", "kustomize", True),
        (15, "busybox:1.36", "kustomize", True),
        (20, "envoyproxy/envoy:v1.31.0", "kustomize", True),
        # line 23: a label called "image" is not an image
        (26, "nats:2.10", "kustomize", True),
        (28, "memcached:1.6", "kustomize", False),  # folded: found, never rewritten
    ]
    assert [(link.path, link.type) for link in scanned.links] == [("more.yaml", "kustomize-patch")]
    for finding in scanned.findings:
        for slot in finding.slots:
            assert KUSTOMIZATION[slot.start : slot.end] == finding.image


def test_an_inline_patch_with_crlf_line_endings_maps_its_spans() -> None:
    text = KUSTOMIZATION.replace("\n", "\r\n")
    findings, error = scan_yaml(text, "k.yaml", "kustomize")
    assert error is None
    assert [(f.line, f.image) for f in findings][:2] == [(8, "redis:7.4"), (13, "alpine:3.20")]
    for finding in findings:
        for slot in finding.slots:
            assert text[slot.start : slot.end] == finding.image


# -- compose --------------------------------------------------------------------------


def test_legacy_compose_only_when_named_as_compose() -> None:
    legacy = "web:\n  image: tomcat:9\nnotes:\n  text: hello\ndb:\n  build: .\n"
    findings, _ = scan_yaml(legacy, "docker-compose.yml", "compose")
    assert [(f.line, f.image) for f in findings] == [(2, "tomcat:9")]
    assert scan_yaml(legacy, "settings.yml")[0] == []


def test_a_service_that_builds_names_its_build() -> None:
    text = (
        "services:\n  a:\n    build: {context: ctx, dockerfile: ../Other.df}\n    image: acme/a:1\n"
    )
    scanned = scan_yaml_file(text, "compose.yaml", "compose")
    [finding] = scanned.findings
    assert finding.built and finding.third_party is False
    assert [link.path for link in scanned.links] == ["Other.df"]
    remote = "services:\n  a:\n    build: https://github.com/acme/a.git\n    image: a\n"
    assert scan_yaml_file(remote, "compose.yaml", "compose").links == []


@pytest.mark.parametrize(
    ("line", "name", "value", "span"),
    [
        ("A=nginx:1", "A", "nginx:1", (2, 9)),
        ("export A=nginx:1", "A", "nginx:1", (9, 16)),
        ("A = nginx:1  # pinned", "A", "nginx:1", (4, 11)),
        ("A='nginx:1 # kept'", "A", "nginx:1 # kept", (3, 17)),
        ('A="nginx:1"', "A", "nginx:1", (3, 10)),
        ('A="a\\tb"', "A", "a\tb", None),
        ("A='unterminated", "A", "'unterminated", None),
        ("A=", "A", "", (2, 2)),
    ],
)
def test_dotenv_values_and_spans(
    line: str, name: str, value: str, span: tuple[int, int] | None
) -> None:
    parsed = parse_dotenv(f"{line}\n")
    assert list(parsed) == [name]
    assert (parsed[name].value, parsed[name].span, parsed[name].line) == (value, span, 1)


def test_dotenv_skips_comments_and_later_definitions_win() -> None:
    parsed = parse_dotenv("# A=x\n  \nA=1\nnot a line\nA=2\nB.c-d=3\n")
    assert {k: (v.value, v.line) for k, v in parsed.items()} == {"A": ("2", 5), "B.c-d": ("3", 6)}


# -- build configs ----------------------------------------------------------------------


def step(text: str) -> Any:
    return compose(text, Loader=LOADER)


@pytest.mark.parametrize(
    ("text", "files"),
    [
        ("name: gcr.io/cloud-builders/docker\nargs: [build, -f, a/B.df, .]", ["a/B.df"]),
        ("name: docker\nargs: [build, --file=x.df, .]", ["x.df"]),
        ("name: docker\nargs: [build, -f=x.df, .]", ["x.df"]),
        ("name: docker\ndir: sub\nargs: [build, --file, ../x.df]", ["x.df"]),
        ("name: docker\nargs: [push, -f, x.df]", []),  # not a build
        ("name: docker\nargs: [build, -f, $_DOCKERFILE]", []),
        ("name: gcr.io/kaniko-project/executor\nargs: [--dockerfile=k.df]", ["k.df"]),
        ("name: gcr.io/kaniko-project/executor\nargs: [--dockerfile, k.df]", ["k.df"]),
        ("name: bash\nargs: [-c, 'docker buildx build -f s.df -t t .']", ["s.df"]),
        (
            "name: bash\nscript: |\n  docker build --file=s.df .\n  docker build -f 't.df' .",
            ["s.df", "t.df"],
        ),
        ("name: ubuntu\nargs: [echo, -f, x]", []),
    ],
)
def test_cloud_build_names_its_dockerfiles(text: str, files: list[str]) -> None:
    assert build_files(step(text)) == files


SKAFFOLD = """\
apiVersion: skaffold/v2beta29
kind: Config
build:
  artifacts:
  - image: base
  - image: app
    requires: [{image: base, alias: BASE}]
    jib: {fromImage: base}
  - image: cnb
    buildpacks: {builder: paketobuildpacks/builder-jammy-base:0.4, runImage: base}
profiles:
- name: ci
  build:
    artifacts:
    - image: ci-tools
      context: tools
      kaniko: {dockerfile: Tools.df}
"""


def test_skaffold_artifacts_are_built_and_builders_pulled() -> None:
    scanned = scan_yaml_file(SKAFFOLD, "skaffold.yaml")
    assert [(f.line, f.image, f.built) for f in scanned.findings] == [
        (5, "base", True),
        (6, "app", True),
        (8, "base", True),  # Jib builds on another artifact
        (9, "cnb", True),
        (10, "paketobuildpacks/builder-jammy-base:0.4", False),
        (10, "base", True),
        (15, "ci-tools", True),
    ]
    assert [link.path for link in scanned.links] == ["Dockerfile", "tools/Tools.df"]


# -- workloads ------------------------------------------------------------------------


def test_a_container_reached_through_an_alias_is_one_finding() -> None:
    text = (
        "kind: List\napiVersion: v1\nitems:\n"
        "- kind: Pod\n  apiVersion: v1\n  metadata: {annotations: {image: not-this}}\n"
        "  spec:\n    containers: &c\n    - {name: a, image: nginx:1}\n"
        "- kind: Pod\n  apiVersion: v1\n  spec: {containers: *c, initContainers: [{name: b}]}\n"
    )
    findings, _ = scan_yaml(text, "pods.yaml")
    assert [(f.line, f.image) for f in findings] == [(9, "nginx:1"), (9, "nginx:1")]  # a pod each


# -- the walk: Helm templates at any depth ------------------------------------------------


def test_every_file_under_templates_is_a_template(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "templates" / "primary" / "deep").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("name: c\n")
    (chart / "templates" / "primary" / "deep" / "sts.yaml").write_text("image: {{ .Values.x }}\n")
    found = [(c.rel, c.type) for c in candidates(tmp_path)]
    assert found == [
        ("chart/Chart.yaml", "yaml"),
        ("chart/templates/primary/deep/sts.yaml", CHART_TEMPLATE),
    ]
    single = list(candidates(chart / "templates" / "primary" / "deep" / "sts.yaml"))
    assert [c.type for c in single] == [CHART_TEMPLATE]
    assert scan_paths([tmp_path]).errors == []


def test_a_named_file_outside_the_scanned_directory_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "outside.df").write_text("FROM nginx:1\n")
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "real.df").write_text("FROM redis:7\n")
    (tmp_path / "tree" / "link.df").symlink_to(tmp_path / "outside.df")
    (tmp_path / "tree" / "cloudbuild.yaml").write_text(
        "steps:\n- name: docker\n  args: [build, -f, ../outside.df, -f, link.df, -f, real.df, -f, gone.df]\n"
    )
    tree = scan_tree([tmp_path / "tree"])
    assert [f.candidate.rel for f in tree.files] == ["cloudbuild.yaml", "real.df"]
    single = scan_tree([tmp_path / "tree" / "cloudbuild.yaml"])
    assert [f.candidate.rel for f in single.files] == [
        (tmp_path / "tree" / "cloudbuild.yaml").as_posix(),
        (tmp_path / "tree" / "real.df").as_posix(),
    ]


def test_hostile_overlay_trees_stay_bounded() -> None:
    # a chain deeper than any real tree, and a diamond that lists each base twice
    chain = {f"/t/{n}": kustomization((f"../{n + 1}",)) for n in range(500)}
    chain["/t/500"] = kustomization(("app.yaml",))
    files = {"/t/500/app.yaml": ["nginx:1"]}
    assert Resolver(chain, files.get).build("/t/0") == []  # too deep: left as written
    assert Resolver(chain, files.get).build("/t/450") == ["nginx:1"]
    diamond = {f"/d/{n}": kustomization((f"../{n + 1}", f"../{n + 1}")) for n in range(60)}
    diamond["/d/60"] = kustomization(("app.yaml",))
    assert Resolver(diamond, {"/d/60/app.yaml": ["nginx:1", "redis:7"]}.get).build("/d/0") == [
        "nginx:1",
        "redis:7",
    ]
