"""Move running workloads onto the mirror: GKE owners and Cloud Run services.

The last step of a migration: ``scan --cluster`` found what runs, ``copy`` mirrored it,
``verify`` proved the mirror; ``redeploy`` changes what runs, safely:

- owners, not pods (:mod:`.gke`): Deployments, StatefulSets, DaemonSets and CronJobs;
  what no such owner controls is reported and left alone;
- Cloud Run services (:mod:`.cloudrun`): each template, which makes a new revision;
- an image changes only when verify finds its mirror ``ok`` and the puller can read it
  (:mod:`.plan`), with the same mapping as ``copy`` and ``rewrite``;
- workloads that Argo CD, Flux, Helm (and a few others) manage are refused unless asked;
- every change is written to an undo file before it is sent, and ``--undo`` restores
  (:mod:`.undo`); a dry run sends server-side dry runs only (:mod:`.run`).
"""

from armirror.redeploy.errors import ChangeError, Conflict, Rejected
from armirror.redeploy.model import ContainerChange, RedeployReport, Workload
from armirror.redeploy.plan import manager_of
from armirror.redeploy.run import Platform, redeploy, restore
from armirror.redeploy.undo import UndoFileError, UndoLog, default_path, read_undo_file

__all__ = [
    "ChangeError",
    "Conflict",
    "ContainerChange",
    "Platform",
    "RedeployReport",
    "Rejected",
    "UndoFileError",
    "UndoLog",
    "Workload",
    "default_path",
    "manager_of",
    "read_undo_file",
    "redeploy",
    "restore",
]
