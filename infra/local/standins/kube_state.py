"""What the Kubernetes stand-in does to objects: patches as the API server applies them,
and the status a controller reports once a rollout is done."""

from __future__ import annotations

import copy
from typing import Any

#: List fields a strategic merge patch merges by key instead of replacing.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name"}


def template_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template of an owner (a CronJob's is inside its jobTemplate)."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template")
    return template if isinstance(template, dict) else None


def strategic_merge(target: Any, patch: Any) -> Any:
    """A strategic merge patch as Kubernetes applies it to pod specs: maps merge, ``null``
    deletes, container lists merge by ``name``, other lists are replaced."""
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif key in MERGE_KEYS and isinstance(value, list) and isinstance(out.get(key), list):
            merge_key = MERGE_KEYS[key]
            items = out[key]
            for change in value:
                match = next(
                    (i for i, c in enumerate(items) if c.get(merge_key) == change.get(merge_key)),
                    None,
                )
                if match is None:
                    items.append(copy.deepcopy(change))
                else:
                    items[match] = strategic_merge(items[match], change)
        else:
            out[key] = strategic_merge(out.get(key), value)
    return out


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: lists are replaced whole."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def settle(obj: dict[str, Any]) -> None:
    """The status a controller reports once every replica runs the current template."""
    meta, spec = obj["metadata"], obj.get("spec") or {}
    generation = meta.get("generation", 1)
    replicas = int(spec.get("replicas", 1))
    kind = obj["kind"]
    if kind in ("Deployment", "ReplicaSet"):
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        }
    elif kind == "StatefulSet":
        revision = f"{meta['name']}-rev{generation}"
        status = {
            "observedGeneration": generation,
            "replicas": replicas,
            "readyReplicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
            "currentRevision": revision,
            "updateRevision": revision,
        }
    elif kind == "DaemonSet":
        nodes = 3
        status = {
            "observedGeneration": generation,
            "desiredNumberScheduled": nodes,
            "currentNumberScheduled": nodes,
            "updatedNumberScheduled": nodes,
            "numberAvailable": nodes,
            "numberReady": nodes,
        }
    else:
        status = obj.get("status") or {}
    obj["status"] = status
