"""Real-shaped Kubernetes objects for :mod:`standins.kube`: owners, their pods, managers.

``containers`` is a list of ``(name, image)`` pairs or of container dicts.  Owners get a
``matchLabels`` selector and template labels ``app: NAME``; pods traced to an owner get
``ownerReferences`` the way the controllers set them (a Deployment's pods belong to a
ReplicaSet, a CronJob's to a Job).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

type Containers = Iterable[tuple[str, str] | dict[str, Any]]


def containers_of(containers: Containers) -> list[dict[str, Any]]:
    out = []
    for item in containers:
        if isinstance(item, dict):
            out.append(dict(item))
        else:
            name, image = item
            out.append({"name": name, "image": image, "imagePullPolicy": "IfNotPresent"})
    return out


def _meta(
    namespace: str,
    name: str,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _template(name: str, containers: Containers, init: Containers = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers_of(containers)}
    if init:
        spec["initContainers"] = containers_of(init)
    return {"metadata": {"labels": {"app": name}}, "spec": spec}


def owner_reference(kind: str, name: str, api_version: str = "apps/v1") -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": f"uid-{kind.lower()}-{name}",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def workload(
    kind: str,
    namespace: str,
    name: str,
    containers: Containers,
    *,
    init: Containers = (),
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    replicas: int = 2,
) -> dict[str, Any]:
    """A Deployment, StatefulSet or DaemonSet."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": name}},
        "template": _template(name, containers, init),
    }
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": _meta(namespace, name, labels, annotations),
        "spec": spec,
    }


def cronjob(
    namespace: str,
    name: str,
    containers: Containers,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    template = _template(name, containers)
    template["spec"]["restartPolicy"] = "OnFailure"
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _meta(namespace, name, labels, annotations),
        "spec": {"schedule": "*/30 * * * *", "jobTemplate": {"spec": {"template": template}}},
    }


def replicaset(
    namespace: str, name: str, deployment: str | None, containers: Containers
) -> dict[str, Any]:
    """A ReplicaSet, owned by ``deployment`` (or by nothing)."""
    meta = _meta(namespace, name)
    if deployment:
        meta["ownerReferences"] = [owner_reference("Deployment", deployment)]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": deployment or name}},
            "template": _template(deployment or name, containers),
        },
    }


def job(namespace: str, name: str, cron: str | None, containers: Containers) -> dict[str, Any]:
    """A Job, created by CronJob ``cron`` (or by hand)."""
    meta = _meta(namespace, name)
    if cron:
        meta["ownerReferences"] = [owner_reference("CronJob", cron, "batch/v1")]
    template = _template(name, containers)
    template["spec"]["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {"template": template},
    }


def pod(
    namespace: str,
    name: str,
    spec: dict[str, Any] | Containers,
    *,
    owner: tuple[str, str] | None = None,
    labels: dict[str, str] | None = None,
    phase: str = "Running",
) -> dict[str, Any]:
    """A pod; ``owner`` is ``(kind, name)`` of its controller (ReplicaSet, Job, …)."""
    if not isinstance(spec, dict):
        spec = {"containers": containers_of(spec)}
    meta = _meta(namespace, name, labels)
    if owner:
        kind, owner_name = owner
        api_version = "batch/v1" if kind == "Job" else "apps/v1"
        meta["ownerReferences"] = [owner_reference(kind, owner_name, api_version)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": dict(spec),
        "status": {"phase": phase},
    }


#: Labels and annotations the usual managers put on what they apply.
HELM = {"app.kubernetes.io/managed-by": "Helm"}
HELM_ANNOTATIONS = {"meta.helm.sh/release-name": "shop", "meta.helm.sh/release-namespace": "shop"}
ARGO_ANNOTATIONS = {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/web"}
FLUX = {
    "kustomize.toolkit.fluxcd.io/name": "apps",
    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
}
