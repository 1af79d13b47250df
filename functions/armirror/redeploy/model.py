"""What a redeploy plans, does and reports: workloads, their containers, their outcome.

A :class:`Workload` is one thing whose pod template armirror may change: a GKE owner
(Deployment, StatefulSet, DaemonSet, CronJob) or a Cloud Run service.  Pods and Jobs that
no such owner controls are workloads too, reported as ``not-changeable``.  Each carries
its :class:`ContainerChange` list, one per container, and ends with one status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

#: What happens to one container's image.
#: ``move``: verified in the mirror, changed (or, in a dry run, would be);
#: ``already``: it already names the mirror; ``not-third-party``: an image armirror
#: does not move (Artifact Registry, gcr.io); ``left``: not changed, see ``reason``.
ContainerStatus = Literal["move", "already", "not-third-party", "left"]

#: A workload's outcome.  ``moved``, ``would-move`` (dry run) and ``already`` are
#: success; every other status makes the run's exit status 1.
WorkloadStatus = Literal[
    "moved",
    "would-move",
    "already",
    "partly-moved",
    "left-alone",
    "refused",
    "conflict",
    "rejected",
    "failed",
    "not-changeable",
    "restored",
    "would-restore",
]
SUCCESS: frozenset[str] = frozenset({"moved", "would-move", "already", "restored", "would-restore"})


@dataclass
class ContainerChange:
    """One container of a pod template and what becomes of its image."""

    field: str  # "containers" or "initContainers"
    index: int
    name: str
    before: str
    after: str | None = None
    status: ContainerStatus = "left"
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "container": self.name,
            "before": self.before,
            "after": self.after if self.status == "move" else self.before,
            "status": self.status,
            "reason": self.reason,
        }


@dataclass
class Workload:
    """One workload, as read from its platform, and what the run did with it."""

    platform: str  # "gke" or "cloud-run"
    kind: str  # Deployment, StatefulSet, DaemonSet, CronJob, Service; Pod, Job, ReplicaSet
    namespace: str  # Kubernetes namespace, or PROJECT/REGION for Cloud Run
    name: str
    containers: list[ContainerChange] = field(default_factory=list)
    version: str = ""  # resourceVersion or etag, as read
    generation: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    manager: str | None = None
    status: WorkloadStatus = "left-alone"
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    rollout: str | None = None  # "ready", or why it is not
    changeable: bool = True
    raw: Any = None  # the object as the platform returned it (not printed)

    @property
    def title(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def moving(self) -> list[ContainerChange]:
        return [c for c in self.containers if c.status == "move"]

    def to_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "manager": self.manager,
            "containers": [c.to_json() for c in self.containers],
            "version": self.version,
            "generation": self.generation,
            "rollout": self.rollout,
            "notes": list(self.notes),
        }


@dataclass
class RedeployReport:
    """A whole run: every workload, the undo file, and whether everything moved."""

    platform: str
    dry_run: bool
    workloads: list[Workload] = field(default_factory=list)
    undo_file: str | None = None
    undo: bool = False  # a run of --undo

    @property
    def ok(self) -> bool:
        return all(
            w.status in SUCCESS and not any(c.status == "left" for c in w.containers)
            for w in self.workloads
        )

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for workload in self.workloads:
            out[workload.status] = out.get(workload.status, 0) + 1
        return dict(sorted(out.items()))

    def summary(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "dry_run": self.dry_run,
            "undo": self.undo,
            "workloads": len(self.workloads),
            "by_status": self.counts(),
            "images_changed": sum(
                len(w.moving) for w in self.workloads if w.status in ("moved", "partly-moved")
            ),
            "undo_file": self.undo_file,
            "ok": self.ok,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "workloads": [w.to_json() for w in self.workloads],
            "summary": self.summary(),
        }
