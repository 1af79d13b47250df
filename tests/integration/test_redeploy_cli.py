"""``armirror redeploy`` as a user runs it: the GKE stand-in, real registries, DuckDB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from armirror.cli import cli
from armirror.events import parse_log_entry
from armirror.store.duckdb import DuckDBStore
from click.testing import CliRunner, Result
from redeploy_support import Mirror, make_mirror
from standins.kube import KubeStandin
from standins.kube_objects import HELM, cronjob, pod, workload
from standins.logentries import kubelet_entry
from standins.registry import Registry


@pytest.fixture(scope="module")
def mirror(source_registry: Registry, dest_registry: Registry) -> Mirror:
    return make_mirror(source_registry, dest_registry, ready=2, absent=1)


@pytest.fixture
def standin(mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeStandin]:  # fmt: skip
    a, b = mirror.ready
    objects = [
        workload("Deployment", "shop", "web", [("web", a)]),
        cronjob("shop", "nightly", [("report", b)]),
    ]
    with KubeStandin(objects) as server:
        monkeypatch.setenv("KUBECONFIG", str(server.write_kubeconfig(tmp_path / "kubeconfig")))
        monkeypatch.chdir(tmp_path)
        yield server


def run(mirror: Mirror, *args: str, store: Path | None = None) -> Result:
    """The command, with a store of the test's own (never the shared default file)."""
    store = store or Path.cwd() / "redeploys.duckdb"
    options = ["--upstream", f"docker.io={mirror.upstreams['docker.io']}", "--poll", "0"]
    options += ["--store", f"duckdb://{store}"]
    return CliRunner().invoke(cli, ["redeploy", *args, *options])


def test_dry_run_then_move_then_nothing_left_then_undo(standin: KubeStandin, mirror: Mirror, tmp_path: Path) -> None:  # fmt: skip
    a, b = mirror.ready
    store = tmp_path / "store.duckdb"
    dry = run(mirror, "--cluster", "--to", mirror.prefix, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Deployment shop/web  would-move" in dry.stdout
    assert f"web: {a} would become {mirror.mirrored(a)}" in dry.stdout
    assert "dry run: nothing was changed" in dry.stderr
    assert "read access to the mirror is not checked (see --gke-node-sa)" in dry.stderr
    assert not list(tmp_path.glob("armirror-undo-*.json"))

    moved = run(mirror, "--cluster", "--to", mirror.prefix, "--wait", "--format", "json", store=store)  # fmt: skip
    assert moved.exit_code == 0, moved.output
    document = json.loads(moved.stdout)
    (undo_file,) = tmp_path.glob("armirror-undo-*.json")
    assert document["summary"]["undo_file"] == str(undo_file)
    assert document["summary"]["by_status"] == {"moved": 2}
    web = next(w for w in document["workloads"] if w["name"] == "web")
    assert web["containers"] == [
        {
            "field": "containers",
            "container": "web",
            "before": a,
            "after": mirror.mirrored(a),
            "status": "move",
            "reason": "",
        }
    ]
    assert web["rollout"] == "ready"
    assert standin.get("Deployment", "shop", "web")["spec"]["template"]["spec"]["containers"][0]["image"] == mirror.mirrored(a)  # fmt: skip

    again = run(mirror, "--cluster", "--to", mirror.prefix, "--format", "json", store=store)
    assert again.exit_code == 0
    assert json.loads(again.stdout)["summary"]["by_status"] == {"already": 2}
    assert len(list(tmp_path.glob("armirror-undo-*.json"))) == 1

    undone = run(mirror, "--undo", str(undo_file), store=store)
    assert undone.exit_code == 0, undone.output
    assert "Deployment shop/web  restored" in undone.stdout
    assert standin.get("CronJob", "shop", "nightly")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] == b  # fmt: skip
    with DuckDBStore(store) as opened:
        actions = [(r.name, r.action) for r in opened.redeploys()]
        # Today's pulls, so that the report has a chart to mark.
        now = datetime.now(UTC)
        opened.record(parse_log_entry(kubelet_entry("pull-1", now, "Pulling", mirror.mirrored(a))).events)  # fmt: skip
    # report shows when each workload moved, and marks the day on the pulls chart.
    page = tmp_path / "report.html"
    shown = CliRunner().invoke(cli, ["report", "--store", f"duckdb://{store}", "--html", str(page), "--format", "json"])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    marks = json.loads(shown.stdout)["redeploys"]
    assert [(m["workload"], m["action"], m["containers"]) for m in marks] == [
        ("Deployment shop/web", "moved", 1),
        ("CronJob shop/nightly", "moved", 1),
        ("CronJob shop/nightly", "restored", 1),  # undo goes newest first
        ("Deployment shop/web", "restored", 1),
    ]
    html = page.read_text()
    assert html.count('<line class="mark"') == 1  # both moved on the same day
    assert "moved onto the mirror: Deployment shop/web, CronJob shop/nightly" in html
    assert '<table id="redeploys">' in html
    text = CliRunner().invoke(cli, ["report", "--store", f"duckdb://{store}"]).stdout
    assert "redeploys: 2 workload(s) moved onto the mirror, 2 restored by --undo" in text
    assert sorted(actions) == [("nightly", "moved"), ("nightly", "restored"), ("web", "moved"), ("web", "restored")]  # fmt: skip


def test_something_left_behind_is_exit_1(standin: KubeStandin, mirror: Mirror, tmp_path: Path) -> None:  # fmt: skip
    (gone,) = mirror.absent
    standin.add(workload("Deployment", "shop", "old", [("old", gone)]))
    standin.add(workload("Deployment", "shop", "chart", [("c", mirror.ready[0])], labels=HELM))
    standin.add(pod("shop", "debug", [("sh", mirror.ready[1])]))
    result = run(mirror, "--cluster", "-n", "shop", "--to", mirror.prefix, "--undo-file", str(tmp_path / "u.json"))  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "Deployment shop/old  left-alone" in result.stdout
    assert f"old: {gone}  (left: missing in the mirror" in result.stdout
    assert "Deployment shop/chart  refused\n    managed by Helm, which would put" in result.stdout
    assert "armirror rewrite" in result.stdout and "--include-managed" in result.stdout
    assert "Pod shop/debug  not-changeable" in result.stdout
    assert f"undo file: {tmp_path / 'u.json'}" in result.stderr
    # The ones that could move did.
    assert "Deployment shop/web  moved" in result.stdout


def test_a_conflict_is_exit_1_and_overwrites_nothing(standin: KubeStandin, mirror: Mirror) -> None:
    standin.before_patch = lambda: standin.edit(
        "Deployment", "shop", "web", lambda o: o["spec"].update(replicas=7)
    )
    result = run(mirror, "--cluster", "--to", mirror.prefix, "--format", "json")
    assert result.exit_code == 1
    web = next(w for w in json.loads(result.stdout)["workloads"] if w["name"] == "web")
    assert web["status"] == "conflict" and "modified" in web["reason"]
    assert standin.get("Deployment", "shop", "web")["spec"]["replicas"] == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to", "127.0.0.1:5000/m"], "choose one of --cluster, --cloud-run or --undo"),
        (["--cluster", "--cloud-run", "--to", "127.0.0.1:5000/m"], "choose one of"),
        (["--cluster"], "--to PREFIX is required"),
        (["--cluster", "--to", "nginx"], "destination prefix needs a registry host"),
        (["--cloud-run", "--project", "p", "--to", "127.0.0.1:5000/m"], "at least one --region"),
        (["--cluster", "--context", "nope", "--to", "127.0.0.1:5000/m"], "nope"),
        (["--cluster", "--to", "127.0.0.1:5000/m", "--timeout", "soon"], "soon"),
    ],
)
def test_bad_input_is_exit_2(standin: KubeStandin, mirror: Mirror, args: list[str], message: str) -> None:  # fmt: skip
    result = run(mirror, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not [r for r in standin.requests if r.method == "PATCH"]


def test_an_existing_undo_file_is_never_overwritten(standin: KubeStandin, mirror: Mirror, tmp_path: Path) -> None:  # fmt: skip
    taken = tmp_path / "undo.json"
    taken.write_text("keep me")
    result = run(mirror, "--cluster", "--to", mirror.prefix, "--undo-file", str(taken))
    assert result.exit_code == 2 and "exists" in result.output
    assert taken.read_text() == "keep me"
    assert not [r for r in standin.requests if r.method == "PATCH"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"format": "something/9"}', "not an armirror undo file"),
        (
            {
                "format": "armirror-undo/1",
                "platform": "gke",
                "target": {},
                "changes": [{"kind": "Pod"}],
            },
            "kind 'Pod' is not one armirror changes",
        ),
        (
            {
                "format": "armirror-undo/1",
                "platform": "gke",
                "target": {},
                "changes": [
                    {
                        "kind": "Deployment",
                        "namespace": "shop",
                        "name": "web",
                        "version": "1",
                        "generation": 1,
                        "state": "applied",
                        "containers": [
                            {
                                "field": "containers",
                                "index": 0,
                                "name": "web",
                                "old": "$(evil)",
                                "new": "nginx",
                            }
                        ],
                    }
                ],
            },
            "invalid image reference",
        ),
    ],
)
def test_a_bad_undo_file_is_exit_2_and_sends_nothing(
    standin: KubeStandin, mirror: Mirror, tmp_path: Path, content: Any, message: str
) -> None:
    path = tmp_path / "undo.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    result = run(mirror, "--undo", str(path))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not [r for r in standin.requests if r.method == "PATCH"]


def test_undo_for_another_cluster_is_refused(standin: KubeStandin, mirror: Mirror, tmp_path: Path) -> None:  # fmt: skip
    path = tmp_path / "undo.json"
    document: dict[str, Any] = {
        "format": "armirror-undo/1",
        "platform": "gke",
        "target": {"server": "https://elsewhere.example", "context": ""},
        "changes": [],
    }
    path.write_text(json.dumps(document))
    result = run(mirror, "--undo", str(path))
    assert result.exit_code == 2 and "https://elsewhere.example" in result.output
