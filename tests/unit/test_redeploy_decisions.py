"""redeploy's decisions, one table each: managers, rollout states, undo files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from armirror.redeploy import UndoFileError, UndoLog, manager_of, read_undo_file
from armirror.redeploy.gke import rollout_state
from armirror.redeploy.model import ContainerChange, Workload


@pytest.mark.parametrize(
    ("labels", "annotations", "manager"),
    [
        ({}, {}, None),
        ({"app.kubernetes.io/managed-by": "Helm"}, {}, "Helm"),
        ({"app.kubernetes.io/managed-by": "Helm"}, {"meta.helm.sh/release-name": "web"}, "Helm (release web)"),
        ({"app.kubernetes.io/managed-by": "kubectl"}, {}, None),
        # Flux's helm-controller installs with Helm: Flux is what puts things back.
        ({"app.kubernetes.io/managed-by": "Helm", "helm.toolkit.fluxcd.io/name": "web"}, {}, "Flux (HelmRelease)"),
        ({"kustomize.toolkit.fluxcd.io/name": "apps"}, {}, "Flux (Kustomization)"),
        ({}, {"argocd.argoproj.io/tracking-id": "web:apps/Deployment:shop/web"}, "Argo CD"),
        ({"argocd.argoproj.io/instance": "web"}, {}, "Argo CD"),
        # Argo CD's old default label is also set by many charts: not taken alone.
        ({"app.kubernetes.io/instance": "web"}, {}, None),
        ({}, {"configsync.gke.io/resource-id": "apps_deployment_shop_web"}, "Config Sync"),
        ({"addonmanager.kubernetes.io/mode": "Reconcile"}, {}, "the GKE addon manager"),
        ({"addonmanager.kubernetes.io/mode": "EnsureExists"}, {}, None),
        ({"managed-by": "google-cloud-deploy"}, {}, "Cloud Deploy"),
        ({"goog-terraform-provisioned": "true"}, {}, "Terraform"),
    ],
)  # fmt: skip
def test_managers_from_their_marks(
    labels: dict[str, str], annotations: dict[str, str], manager: str | None
) -> None:
    assert manager_of(labels, annotations) == manager


def deployment(generation: int, spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "spec": spec, "status": status}


@pytest.mark.parametrize(
    ("kind", "obj", "state"),
    [
        ("Deployment", deployment(2, {"replicas": 3}, {"observedGeneration": 1}), "progressing"),
        ("Deployment", deployment(2, {"replicas": 3}, {"observedGeneration": 2, "updatedReplicas": 1}), "progressing"),
        ("Deployment", deployment(2, {"replicas": 3}, {"observedGeneration": 2, "updatedReplicas": 3, "replicas": 4, "availableReplicas": 3}), "progressing"),
        ("Deployment", deployment(2, {"replicas": 3}, {"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 2}), "progressing"),
        ("Deployment", deployment(2, {"replicas": 3}, {"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 3}), "ready"),
        ("Deployment", deployment(2, {"replicas": 3}, {"observedGeneration": 2, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out"}]}), "failed"),
        ("StatefulSet", deployment(3, {"replicas": 2}, {"observedGeneration": 3, "updatedReplicas": 2, "readyReplicas": 2, "currentRevision": "a", "updateRevision": "b"}), "progressing"),
        ("StatefulSet", deployment(3, {"replicas": 2}, {"observedGeneration": 3, "updatedReplicas": 2, "readyReplicas": 2, "currentRevision": "b", "updateRevision": "b"}), "ready"),
        ("StatefulSet", deployment(3, {"replicas": 4, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}, {"observedGeneration": 3, "updatedReplicas": 2, "readyReplicas": 4, "currentRevision": "a", "updateRevision": "b"}), "ready"),
        ("StatefulSet", deployment(3, {"updateStrategy": {"type": "OnDelete"}}, {"observedGeneration": 3}), "ready"),
        ("DaemonSet", deployment(2, {}, {"observedGeneration": 2, "desiredNumberScheduled": 3, "updatedNumberScheduled": 2, "numberAvailable": 3}), "progressing"),
        ("DaemonSet", deployment(2, {}, {"observedGeneration": 2, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3}), "ready"),
        ("CronJob", deployment(2, {}, {}), "ready"),
    ],
)  # fmt: skip
def test_rollout_states_as_kubectl_judges_them(kind: str, obj: dict[str, Any], state: str) -> None:
    assert rollout_state(kind, obj)[0] == state


def test_the_undo_file_is_on_disk_before_the_change_and_says_how_it_ended(tmp_path: Path) -> None:
    path = tmp_path / "undo.json"
    log = UndoLog(path, "gke", {"server": "https://k8s.example", "context": "prod"})
    log.check_writable()
    workload = Workload("gke", "Deployment", "shop", "web", version="41", generation=3)
    container = ContainerChange("containers", 0, "web", "nginx:1.27")
    entry = log.before(workload, [(container, "us-docker.pkg.dev/p/m/docker.io/library/nginx:1.27")])  # fmt: skip
    pending = read_undo_file(path)
    assert [(e.name, e.state, e.version, e.generation) for e in pending.entries] == [("web", "pending", "41", 3)]  # fmt: skip
    after = Workload("gke", "Deployment", "shop", "web", version="57", generation=4)
    log.settled(entry, after=after)
    (done,) = read_undo_file(path).entries
    assert (done.state, done.version_after, done.generation_after) == ("applied", "57", 4)
    assert (done.containers[0].before, done.containers[0].after) == ("nginx:1.27", "us-docker.pkg.dev/p/m/docker.io/library/nginx:1.27")  # fmt: skip
    assert read_undo_file(path).target == {"server": "https://k8s.example", "context": "prod"}
    assert not list(tmp_path.glob(".armirror-undo-*"))  # no temporary file left behind


def good_entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": "Deployment", "namespace": "shop", "name": "web", "version": "1",
        "generation": 1, "state": "applied",
        "containers": [{"field": "containers", "index": 0, "name": "web", "old": "nginx:1", "new": "r.example/m/nginx:1"}],
    }  # fmt: skip
    entry.update(changes)
    return entry


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"namespace": "../etc"}, "bad namespace"),
        ({"name": "Web"}, "bad name"),
        ({"generation": True}, "bad generation"),
        ({"generation": -1}, "bad generation"),
        ({"state": "done"}, "bad state"),
        ({"containers": []}, "non-empty list"),
        ({"containers": [{"field": "volumes", "index": 0, "name": "x", "old": "a", "new": "b"}]}, "bad field"),
        ({"containers": [{"field": "containers", "index": 10**9, "name": "x", "old": "a", "new": "b"}]}, "bad index"),
        ({"containers": [{"field": "containers", "index": 0, "name": "x", "old": "a", "new": 7}]}, "not a string"),
        ({"kind": "Service"}, "is not one armirror changes"),
    ],
)  # fmt: skip
def test_a_bad_undo_entry_is_named(tmp_path: Path, changes: dict[str, Any], problem: str) -> None:
    path = tmp_path / "undo.json"
    document = {"format": "armirror-undo/1", "platform": "gke", "target": {}, "changes": [good_entry(**changes)]}  # fmt: skip
    path.write_text(json.dumps(document))
    with pytest.raises(UndoFileError, match=problem) as caught:
        read_undo_file(path)
    assert str(path) in str(caught.value) and "changes[0]" in str(caught.value)


def test_an_oversized_undo_file_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from armirror.redeploy import undo

    monkeypatch.setattr(undo, "MAX_BYTES", 64)
    path = tmp_path / "undo.json"
    path.write_text(json.dumps({"format": "armirror-undo/1", "pad": "x" * 100}))
    with pytest.raises(UndoFileError, match="larger than 64 bytes"):
        read_undo_file(path)
