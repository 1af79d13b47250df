"""Which owner controls a pod, and a Workload from any Kubernetes object.

A pod of a ReplicaSet belongs to the ReplicaSet's Deployment, a pod of a Job to the
Job's CronJob; the controller is the ``ownerReferences`` entry with ``controller: true``.
What no Deployment, StatefulSet, DaemonSet or CronJob controls comes back as a
``not-changeable`` workload with the reason, so that it is reported, not missed.
"""

from __future__ import annotations

from typing import Any

from armirror.redeploy.model import ContainerChange, Workload

_FIELDS = ("initContainers", "containers")


def key_of(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace", "default"), meta.get("name", ""))


def _controller(obj: dict[str, Any]) -> dict[str, Any] | None:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), refs[0] if refs else None)


def trace(
    pod: dict[str, Any],
    owners: set[tuple[str, str, str]],
    replicasets: dict[tuple[str, str], dict[str, Any]],
    jobs: dict[tuple[str, str], dict[str, Any]],
) -> Workload | None:
    """None when an owner armirror changes controls the pod; else what to report."""
    namespace, _name = key_of(pod)
    ref = _controller(pod)
    if ref is None:
        return _stray(pod, "a bare pod: no controller recreates it, so delete and recreate it")
    kind, owner = ref.get("kind", ""), ref.get("name", "")
    if kind in ("StatefulSet", "DaemonSet") and (kind, namespace, owner) in owners:
        return None
    parent_map = {"ReplicaSet": replicasets, "Job": jobs}.get(kind)
    if parent_map is None:
        return _stray(pod, f"controlled by {kind} {owner}, which armirror does not change")
    parent = parent_map.get((namespace, owner))
    if parent is None:
        return _stray(pod, f"controlled by {kind} {owner}, which could not be found")
    top = _controller(parent)
    want = "Deployment" if kind == "ReplicaSet" else "CronJob"
    if top is not None and top.get("kind") == want and (want, namespace, top.get("name")) in owners:
        return None
    parent.setdefault("kind", kind)
    if kind == "Job":
        why = "a Job without a CronJob: its pod template cannot be changed"
    else:
        why = "a ReplicaSet without a Deployment: its pods keep their images until replaced"
    return _stray(parent, why)


def _stray(obj: dict[str, Any], why: str) -> Workload:
    workload = workload_of(obj)
    workload.changeable = False
    workload.reason = why
    return workload


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        return spec
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def workload_of(obj: dict[str, Any]) -> Workload:
    """A Workload from an API object: its containers, versions and marks."""
    meta = obj.get("metadata") or {}
    containers = []
    spec = _pod_spec(obj)
    for field in _FIELDS:
        for index, container in enumerate(spec.get(field) or []):
            image = container.get("image") if isinstance(container, dict) else None
            if isinstance(image, str) and image:
                containers.append(ContainerChange(field, index, str(container.get("name")), image))
    return Workload(
        platform="gke",
        kind=str(obj.get("kind")),
        namespace=str(meta.get("namespace", "default")),
        name=str(meta.get("name", "")),
        containers=containers,
        version=str(meta.get("resourceVersion", "")),
        generation=int(meta.get("generation") or 0),
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
        annotations={str(k): str(v) for k, v in (meta.get("annotations") or {}).items()},
        raw=obj,
    )
