"""When is a rollout done?  The same judgement as ``kubectl rollout status``."""

from __future__ import annotations

from typing import Any

from armirror.redeploy.errors import bounded


def rollout_state(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    """``("ready" | "progressing" | "failed", what is going on)``, as ``kubectl rollout
    status`` judges it."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if kind == "CronJob":
        return "ready", "the next Job runs the new images"
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return "progressing", "waiting for the controller to see the change"
    if kind == "Deployment":
        for condition in status.get("conditions") or []:
            if (
                condition.get("type") == "Progressing"
                and condition.get("reason") == "ProgressDeadlineExceeded"
            ):
                return "failed", bounded(condition.get("message") or "progress deadline exceeded")
        want = int(spec.get("replicas", 1))
        updated = int(status.get("updatedReplicas") or 0)
        if updated < want:
            return "progressing", f"{updated} of {want} replicas updated"
        if int(status.get("replicas") or 0) > updated:
            return "progressing", "old replicas are terminating"
        if int(status.get("availableReplicas") or 0) < updated:
            return "progressing", f"{status.get('availableReplicas') or 0} of {updated} available"
        return "ready", "rolled out"
    if kind == "StatefulSet":
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete":
            return "ready", "OnDelete: pods take the new images when they are deleted"
        want = int(spec.get("replicas", 1))
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        if int(status.get("updatedReplicas") or 0) < want - partition:
            return "progressing", f"{status.get('updatedReplicas') or 0} of {want} updated"
        if partition == 0 and status.get("updateRevision") != status.get("currentRevision"):
            return "progressing", "waiting for the update revision to become current"
        if int(status.get("readyReplicas") or 0) < want:
            return "progressing", f"{status.get('readyReplicas') or 0} of {want} ready"
        return "ready", "rolled out"
    if kind == "DaemonSet":
        if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
            return "ready", "OnDelete: pods take the new images when they are deleted"
        want = int(status.get("desiredNumberScheduled") or 0)
        if int(status.get("updatedNumberScheduled") or 0) < want:
            return "progressing", f"{status.get('updatedNumberScheduled') or 0} of {want} updated"
        if int(status.get("numberAvailable") or 0) < want:
            return "progressing", f"{status.get('numberAvailable') or 0} of {want} available"
        return "ready", "rolled out"
    return "ready", ""
