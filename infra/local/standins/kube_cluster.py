"""The Kubernetes stand-in's objects and its controller, behind the API server in
:mod:`standins.kube`.

Objects are kept as the API server keeps them: a uid, a ``resourceVersion`` that rises
on every write, a ``metadata.generation`` that rises when the spec changes.  A changed
pod template starts a "rollout" that the stand-in controller finishes after
``rollout_reads`` reads of the object, or that never finishes when an image is in
``unpullable`` (a pod waiting in ImagePullBackOff appears, as on a real node).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .kube_objects import pod
from .kube_state import settle, template_of

#: URL resource name -> (group/version path, kind)
RESOURCES: dict[str, tuple[str, str]] = {
    "pods": ("/api/v1", "Pod"),
    "deployments": ("/apis/apps/v1", "Deployment"),
    "statefulsets": ("/apis/apps/v1", "StatefulSet"),
    "daemonsets": ("/apis/apps/v1", "DaemonSet"),
    "replicasets": ("/apis/apps/v1", "ReplicaSet"),
    "jobs": ("/apis/batch/v1", "Job"),
    "cronjobs": ("/apis/batch/v1", "CronJob"),
}
KIND_RESOURCE = {kind: resource for resource, (_, kind) in RESOURCES.items()}
_ROLLED_OUT = ("Deployment", "StatefulSet", "DaemonSet")

type Key = tuple[str, str, str]  # (resource, namespace, name)


class Cluster:
    """``objects`` by key, and the controller that rolls changed templates out."""

    def __init__(self, objects: Iterable[dict[str, Any]] = (), *, rollout_reads: int = 1) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.rollout_reads = rollout_reads
        self.unpullable: set[str] = set()
        self._version = 100
        self._pending: dict[Key, int] = {}  # rollouts in progress: reads left
        self._lock = threading.RLock()
        for obj in objects:
            self.add(obj)

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    @staticmethod
    def key(obj: dict[str, Any]) -> Key:
        meta = obj["metadata"]
        return (KIND_RESOURCE[obj["kind"]], meta.get("namespace", "default"), meta["name"])

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object as the API server would: uid, resourceVersion, generation."""
        with self._lock:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            meta.setdefault("namespace", "default")
            meta.setdefault("uid", f"uid-{obj['kind'].lower()}-{meta['name']}")
            meta.setdefault("creationTimestamp", "2026-01-05T10:00:00Z")
            meta["resourceVersion"] = self._next_version()
            if obj["kind"] != "Pod":
                meta.setdefault("generation", 1)
                settle(obj)
            self.objects[self.key(obj)] = obj
            return copy.deepcopy(obj)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.objects[(KIND_RESOURCE[kind], namespace, name)])

    def edit(
        self, kind: str, namespace: str, name: str, change: Callable[[dict[str, Any]], None]
    ) -> None:
        """Someone else changes an object: ``change`` mutates it in place."""
        with self._lock:
            key = (KIND_RESOURCE[kind], namespace, name)
            self._store(key, self.objects[key], _mutated(self.objects[key], change))

    def _store(self, key: Key, before: dict[str, Any], after: dict[str, Any]) -> None:
        meta = after["metadata"]
        if after.get("spec") != before.get("spec"):
            meta["generation"] = int(before["metadata"].get("generation", 1)) + 1
            if after["kind"] in _ROLLED_OUT and template_of(after) != template_of(before):
                self._pending[key] = self.rollout_reads
            else:
                settle(after)
        meta["resourceVersion"] = self._next_version()
        self.objects[key] = after

    def _observe(self, key: Key) -> None:
        """The stand-in controller: a read brings a rollout one step nearer its end."""
        if key not in self._pending:
            return
        obj = self.objects[key]
        template = template_of(obj) or {}
        images = [c.get("image") for c in (template.get("spec") or {}).get("containers", [])]
        stuck = next((i for i in images if i in self.unpullable), None)
        if stuck is not None:
            del self._pending[key]
            self._stuck_pod(obj, stuck)
            return
        self._pending[key] -= 1
        if self._pending[key] <= 0:
            del self._pending[key]
            settle(obj)
            obj["metadata"]["resourceVersion"] = self._next_version()

    def _stuck_pod(self, owner: dict[str, Any], image: str) -> None:
        template = template_of(owner) or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        meta = owner["metadata"]
        name = f"{meta['name']}-{meta['generation']}-x"
        stuck = pod(meta["namespace"], name, template.get("spec") or {}, labels=labels)
        stuck["status"] = {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c["image"],
                    "ready": False,
                    "restartCount": 0,
                    "state": {
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": f'Back-off pulling image "{c["image"]}"',
                        }
                    }
                    if c["image"] == image
                    else {"running": {}},
                }
                for c in (template.get("spec") or {}).get("containers", [])
            ],
        }
        self.add(stuck)
        status = owner.setdefault("status", {})
        status["observedGeneration"] = meta["generation"]
        status["conditions"] = [
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": f'ReplicaSet "{name}" has timed out progressing.',
            }
        ]
        meta["resourceVersion"] = self._next_version()


def _mutated(obj: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    change(out)
    return out
