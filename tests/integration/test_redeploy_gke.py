"""redeploy on GKE: the real kubernetes client against the API stand-in, real registries
behind the verify step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from armirror.redeploy import UndoLog, read_undo_file, redeploy, restore
from armirror.redeploy.gke import Gke, api_client
from armirror.store.duckdb import DuckDBStore
from redeploy_support import Mirror, make_mirror
from standins.kube import KubeStandin
from standins.kube_objects import (
    ARGO_ANNOTATIONS,
    FLUX,
    HELM,
    HELM_ANNOTATIONS,
    cronjob,
    job,
    pod,
    replicaset,
    workload,
)
from standins.registry import Registry


@pytest.fixture(scope="module")
def mirror(source_registry: Registry, dest_registry: Registry) -> Mirror:
    return make_mirror(source_registry, dest_registry, ready=3, absent=1)


def cluster_objects(m: Mirror) -> list[dict[str, Any]]:
    a, b, c = m.ready
    (gone,) = m.absent
    return [
        workload(
            "Deployment",
            "shop",
            "web",
            [("web", a), ("sidecar", "us-docker.pkg.dev/acme/apps/proxy:2")],
            init=[("migrate", b)],
        ),
        replicaset("shop", "web-5d8f", "web", [("web", a)]),
        pod(
            "shop",
            "web-5d8f-x1",
            [("web", a)],
            owner=("ReplicaSet", "web-5d8f"),
            labels={"app": "web"},
        ),
        workload("StatefulSet", "shop", "db", [("db", b)]),
        pod("shop", "db-0", [("db", b)], owner=("StatefulSet", "db")),
        workload("DaemonSet", "ops", "agent", [("agent", c)]),
        cronjob("ops", "nightly", [("report", c)]),
        job("ops", "nightly-2901", "nightly", [("report", c)]),
        pod("ops", "nightly-2901-abc", [("report", c)], owner=("Job", "nightly-2901")),
        job("ops", "one-off", None, [("task", a)]),
        pod("ops", "one-off-q", [("task", a)], owner=("Job", "one-off")),
        pod("ops", "debug", [("shell", b)]),
        pod("ops", "done", [("shell", b)], phase="Succeeded"),
        workload("Deployment", "edge", "legacy", [("legacy", gone)]),
    ]


@pytest.fixture
def standin(mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeStandin]:  # fmt: skip
    with KubeStandin(cluster_objects(mirror)) as server:
        monkeypatch.setenv("KUBECONFIG", str(server.write_kubeconfig(tmp_path / "kubeconfig")))
        yield server


def gke(**kwargs: Any) -> Gke:
    client, _ = api_client()
    return Gke(client, **kwargs)


def images_of(standin: KubeStandin, kind: str, namespace: str, name: str) -> list[str]:
    obj = standin.get(kind, namespace, name)
    spec = obj["spec"]
    if kind == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod_spec = spec["template"]["spec"]
    return [c["image"] for c in pod_spec.get("initContainers", []) + pod_spec["containers"]]


def by_title(report: Any) -> dict[str, Any]:
    return {w.title: w for w in report.workloads}


def patches(standin: KubeStandin) -> list[Any]:
    return [r for r in standin.requests if r.method == "PATCH"]


def test_dry_run_plans_every_owner_and_changes_nothing(standin: KubeStandin, mirror: Mirror) -> None:  # fmt: skip
    before = {key: json.dumps(obj, sort_keys=True) for key, obj in standin.objects.items()}
    report = redeploy(gke(), prefix=mirror.prefix, check_images=mirror.check, dry_run=True)
    got = {title: w.status for title, w in by_title(report).items()}
    assert got == {
        "Deployment shop/web": "would-move",
        "StatefulSet shop/db": "would-move",
        "DaemonSet ops/agent": "would-move",
        "CronJob ops/nightly": "would-move",
        "Deployment edge/legacy": "left-alone",
        "Job ops/one-off": "not-changeable",
        "Pod ops/debug": "not-changeable",
    }
    web = by_title(report)["Deployment shop/web"]
    a, b, _ = mirror.ready
    assert [(c.name, c.before, c.after, c.status) for c in web.containers] == [
        ("migrate", b, mirror.mirrored(b), "move"),
        ("web", a, mirror.mirrored(a), "move"),
        ("sidecar", "us-docker.pkg.dev/acme/apps/proxy:2", None, "not-third-party"),
    ]
    legacy = by_title(report)["Deployment edge/legacy"].containers[0]
    assert legacy.status == "left" and legacy.reason.startswith("missing in the mirror")
    assert "armirror copy docker.io/library/" in legacy.reason
    assert "cannot be changed" in by_title(report)["Job ops/one-off"].reason
    assert "bare pod" in by_title(report)["Pod ops/debug"].reason
    # Every change was sent as a server-side dry run, and nothing was stored.
    sent = patches(standin)
    assert len(sent) == 4 and all(r.query.get("dryRun") == ["All"] for r in sent)
    assert all(r.content_type == "application/strategic-merge-patch+json" for r in sent)
    assert {key: json.dumps(obj, sort_keys=True) for key, obj in standin.objects.items()} == before
    assert not report.ok and report.undo_file is None


def test_an_admission_policy_speaks_in_the_dry_run(standin: KubeStandin, mirror: Mirror) -> None:
    standin.admission = lambda obj: "no DaemonSets today" if obj["kind"] == "DaemonSet" else None
    report = redeploy(gke(namespaces=("ops",)), prefix=mirror.prefix, check_images=mirror.check, dry_run=True)  # fmt: skip
    agent = by_title(report)["DaemonSet ops/agent"]
    assert agent.status == "rejected"
    assert "no DaemonSets today" in agent.reason and "denied the request" in agent.reason
    assert by_title(report)["CronJob ops/nightly"].status == "would-move"


def test_move_records_undo_and_store_then_a_second_run_changes_nothing(
    standin: KubeStandin, mirror: Mirror, tmp_path: Path
) -> None:
    store = DuckDBStore(":memory:")
    undo = UndoLog(tmp_path / "undo.json", "gke", {"server": standin.url})
    report = redeploy(
        gke(namespaces=("shop", "ops")),
        prefix=mirror.prefix,
        check_images=mirror.check,
        undo=undo,
        store=store,
        target=standin.url,
        wait=30,
        poll=0,
    )
    a, b, c = mirror.ready
    assert images_of(standin, "Deployment", "shop", "web") == [mirror.mirrored(b), mirror.mirrored(a), "us-docker.pkg.dev/acme/apps/proxy:2"]  # fmt: skip
    assert images_of(standin, "CronJob", "ops", "nightly") == [mirror.mirrored(c)]
    statuses = {t: w.status for t, w in by_title(report).items()}
    assert statuses["Deployment shop/web"] == "moved" and statuses["CronJob ops/nightly"] == "moved"
    assert by_title(report)["Deployment shop/web"].rollout == "ready"
    # The undo file names every change, with what was read before it.
    saved = read_undo_file(tmp_path / "undo.json")
    assert report.undo_file == str(tmp_path / "undo.json")
    entry = next(e for e in saved.entries if e.name == "web")
    assert entry.state == "applied" and entry.generation == 1 and entry.generation_after == 2
    assert [(c.name, c.before, c.after) for c in entry.containers] == [
        ("migrate", b, mirror.mirrored(b)),
        ("web", a, mirror.mirrored(a)),
    ]
    # Every patch carried the resourceVersion it was based on.
    assert all(r.body["metadata"]["resourceVersion"] for r in patches(standin))
    rows = store.redeploys()
    assert {(r.kind, r.name, r.container, r.action) for r in rows} >= {
        ("Deployment", "web", "web", "moved"),
        ("CronJob", "nightly", "report", "moved"),
    }

    standin.requests.clear()
    again = redeploy(
        gke(namespaces=("shop", "ops")),
        prefix=mirror.prefix,
        check_images=mirror.check,
        undo=UndoLog(tmp_path / "second.json", "gke", {"server": standin.url}),
    )
    owners = {t: w.status for t, w in by_title(again).items() if not t.startswith(("Pod", "Job"))}
    assert set(owners.values()) == {"already"}
    assert patches(standin) == [] and again.undo_file is None
    assert not (tmp_path / "second.json").exists()


def test_a_workload_changed_in_between_is_a_conflict(standin: KubeStandin, mirror: Mirror, tmp_path: Path) -> None:  # fmt: skip
    def someone_scales() -> None:
        standin.edit("StatefulSet", "shop", "db", lambda o: o["spec"].update(replicas=5))

    standin.before_patch = someone_scales
    undo = UndoLog(tmp_path / "undo.json", "gke", {"server": standin.url})
    report = redeploy(gke(namespaces=("shop",)), prefix=mirror.prefix, check_images=mirror.check, undo=undo)  # fmt: skip
    # The Deployment went first; the StatefulSet's patch met the other writer's change:
    # refused by the API server, nothing overwritten.
    assert by_title(report)["Deployment shop/web"].status == "moved"
    db = by_title(report)["StatefulSet shop/db"]
    assert db.status == "conflict" and "modified" in db.reason
    assert not report.ok
    assert standin.get("StatefulSet", "shop", "db")["spec"]["replicas"] == 5
    assert images_of(standin, "StatefulSet", "shop", "db") == [mirror.ready[1]]
    entry = next(e for e in read_undo_file(tmp_path / "undo.json").entries if e.name == "db")
    assert entry.state == "failed" and "modified" in entry.error
    assert report.undo_file == str(tmp_path / "undo.json")


def test_managed_workloads_are_refused_unless_included(standin: KubeStandin, mirror: Mirror, tmp_path: Path) -> None:  # fmt: skip
    a = mirror.ready[0]
    standin.add(workload("Deployment", "gitops", "argo", [("app", a)], annotations=ARGO_ANNOTATIONS))  # fmt: skip
    standin.add(workload("Deployment", "gitops", "flux", [("app", a)], labels=FLUX))
    standin.add(workload("Deployment", "gitops", "chart", [("app", a)], labels=HELM, annotations=HELM_ANNOTATIONS))  # fmt: skip
    platform = gke(namespaces=("gitops",))
    report = redeploy(platform, prefix=mirror.prefix, check_images=mirror.check, dry_run=True)
    managers = {t: (w.status, w.manager) for t, w in by_title(report).items()}
    assert managers == {
        "Deployment gitops/argo": ("refused", "Argo CD"),
        "Deployment gitops/flux": ("refused", "Flux (Kustomization)"),
        "Deployment gitops/chart": ("refused", "Helm (release shop)"),
    }
    assert all("armirror rewrite" in w.reason for w in report.workloads)
    assert patches(standin) == []
    undo = UndoLog(tmp_path / "undo.json", "gke", {"server": standin.url})
    forced = redeploy(platform, prefix=mirror.prefix, check_images=mirror.check, include_managed=True, undo=undo)  # fmt: skip
    assert {w.status for w in forced.workloads} == {"moved"}
    assert images_of(standin, "Deployment", "gitops", "flux") == [mirror.mirrored(a)]


def test_undo_restores_and_refuses_what_changed_since(standin: KubeStandin, mirror: Mirror, tmp_path: Path) -> None:  # fmt: skip
    path = tmp_path / "undo.json"
    platform = gke(namespaces=("shop", "ops"))
    redeploy(platform, prefix=mirror.prefix, check_images=mirror.check, undo=UndoLog(path, "gke", {"server": standin.url}))  # fmt: skip
    a, b, c = mirror.ready

    # Someone changes the DaemonSet's image after the redeploy.
    def retag(obj: dict[str, Any]) -> None:
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:9"

    standin.edit("DaemonSet", "ops", "agent", retag)
    store = DuckDBStore(":memory:")

    dry = restore(platform, read_undo_file(path), dry_run=True)
    assert by_title(dry)["Deployment shop/web"].status == "would-restore"
    assert images_of(standin, "Deployment", "shop", "web")[1] == mirror.mirrored(a)

    report = restore(platform, read_undo_file(path), store=store, target=standin.url)
    statuses = {t: w.status for t, w in by_title(report).items()}
    assert statuses["Deployment shop/web"] == "restored"
    assert statuses["CronJob ops/nightly"] == "restored"
    assert statuses["DaemonSet ops/agent"] == "refused"
    assert "busybox:9" in by_title(report)["DaemonSet ops/agent"].reason
    assert images_of(standin, "Deployment", "shop", "web") == [b, a, "us-docker.pkg.dev/acme/apps/proxy:2"]  # fmt: skip
    assert images_of(standin, "CronJob", "ops", "nightly") == [c]
    assert images_of(standin, "DaemonSet", "ops", "agent") == ["busybox:9"]
    assert {r.action for r in store.redeploys()} == {"restored"}
    # A second undo finds the old images in place and changes nothing.
    standin.requests.clear()
    again = restore(platform, read_undo_file(path))
    assert by_title(again)["Deployment shop/web"].status == "already"
    assert patches(standin) == []


def test_wait_reports_an_image_the_nodes_cannot_pull(standin: KubeStandin, mirror: Mirror, tmp_path: Path) -> None:  # fmt: skip
    a = mirror.ready[0]
    standin.unpullable.add(mirror.mirrored(a))
    undo = UndoLog(tmp_path / "undo.json", "gke", {"server": standin.url})
    report = redeploy(gke(namespaces=("shop",)), prefix=mirror.prefix, check_images=mirror.check, undo=undo, wait=30, poll=0)  # fmt: skip
    web = by_title(report)["Deployment shop/web"]
    assert web.status == "failed" and "ImagePullBackOff" in web.reason
    assert mirror.mirrored(a) in web.reason
    assert by_title(report)["StatefulSet shop/db"].rollout == "ready"


def test_wait_follows_a_slow_rollout_until_it_is_done(standin: KubeStandin, mirror: Mirror, tmp_path: Path) -> None:  # fmt: skip
    standin.rollout_reads = 4
    undo = UndoLog(tmp_path / "undo.json", "gke", {"server": standin.url})
    report = redeploy(gke(namespaces=("shop",)), prefix=mirror.prefix, check_images=mirror.check, undo=undo, wait=30, poll=0)  # fmt: skip
    assert by_title(report)["Deployment shop/web"].rollout == "ready"
    reads = [
        r for r in standin.requests if r.method == "GET" and r.path.endswith("/deployments/web")
    ]
    assert len(reads) >= 4


def test_the_node_service_account_must_be_able_to_read_the_mirror(standin: KubeStandin, mirror: Mirror) -> None:  # fmt: skip
    from armirror import iam
    from iam_standin import IamStandin, binding, policy

    reader = "serviceAccount:nodes@shop-prod.iam.gserviceaccount.com"
    outsider = "serviceAccount:other-nodes@shop-prod.iam.gserviceaccount.com"
    repository = "projects/mirror-proj/locations/europe/repositories/mirror"
    with IamStandin(
        repositories={repository: policy(binding("roles/artifactregistry.reader", reader))},
        projects={"projects/mirror-proj": policy()},
    ) as server:
        clients = {
            "ar_client": iam.artifact_registry_client(endpoint=server.endpoint),
            "projects_client": iam.projects_client(endpoint=server.endpoint),
        }

        def readers(consumers: list[str]) -> Any:
            return iam.check_readers(
                "europe-docker.pkg.dev/mirror-proj/mirror", consumers, **clients
            )

        allowed = redeploy(gke(namespaces=("shop",), node_service_accounts=("nodes@shop-prod.iam.gserviceaccount.com",)), prefix=mirror.prefix, check_images=mirror.check, check_readers=readers, dry_run=True)  # fmt: skip
        refused = redeploy(gke(namespaces=("shop",), node_service_accounts=(outsider,)), prefix=mirror.prefix, check_images=mirror.check, check_readers=readers, dry_run=True)  # fmt: skip
    assert by_title(allowed)["Deployment shop/web"].status == "would-move"
    web = by_title(refused)["Deployment shop/web"]
    assert web.status == "left-alone"
    assert all(outsider in c.reason for c in web.containers if c.status == "left")
    assert "add-iam-policy-binding" in web.containers[0].reason


def test_the_undo_file_is_named_even_when_every_change_is_refused(standin: KubeStandin, mirror: Mirror, tmp_path: Path) -> None:  # fmt: skip
    standin.admission = lambda obj: "images must be signed"
    path = tmp_path / "undo.json"
    report = redeploy(gke(namespaces=("shop",)), prefix=mirror.prefix, check_images=mirror.check, undo=UndoLog(path, "gke", {"server": standin.url}))  # fmt: skip
    assert {w.status for w in report.workloads} == {"rejected"}
    assert report.undo_file == str(path)
    assert {e.state for e in read_undo_file(path).entries} == {"failed"}
