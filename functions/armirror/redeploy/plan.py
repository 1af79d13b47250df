"""Decide, per container, whether its image moves: the mapping, verify, readers, managers.

The mapping is the one ``copy`` and ``rewrite`` use (:func:`~armirror.reference.
destination_for`).  An image moves only when :func:`armirror.verify.check_images` finds
its mirror ``ok`` (present, current and complete) and no consumer that pulls for the
workload is known to lack read access; anything else stays with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from armirror.redeploy.model import Workload
from armirror.reference import InvalidReference, Reference, destination_for, parse, parse_prefix

if TYPE_CHECKING:
    from armirror.iam import PermissionFinding
    from armirror.verify import ImageCheck

#: (source, destination) pairs -> one verify result each, in order.
type CheckImages = Callable[[list[tuple[Reference, Reference]]], list[ImageCheck]]
#: consumers -> one permission finding each (see armirror.iam.check_readers).
type CheckReaders = Callable[[list[str]], list[PermissionFinding]]


@dataclass(frozen=True)
class Verdict:
    """What becomes of one image string: its status, its mirror, and why."""

    status: str  # ContainerStatus
    after: str | None
    reason: str = ""


def under_prefix(reference: Reference, prefix: str) -> bool:
    """Whether a reference already names an image below the mirror prefix."""
    base = parse_prefix(prefix)
    return reference.registry == base.registry and reference.repository.startswith(
        base.repository + "/"
    )


def judge_images(images: Iterable[str], prefix: str, check: CheckImages) -> dict[str, Verdict]:
    """One verdict per distinct image string; the candidates are verified in one batch."""
    verdicts: dict[str, Verdict] = {}
    pending: dict[str, tuple[Reference, Reference]] = {}
    for image in dict.fromkeys(images):
        try:
            source = parse(image)
        except InvalidReference as exc:
            verdicts[image] = Verdict("left", None, f"not a valid image reference: {exc.problem}")
            continue
        if under_prefix(source, prefix):
            verdicts[image] = Verdict("already", None, "already on the mirror")
        elif not source.third_party:
            verdicts[image] = Verdict("not-third-party", None, f"{source.registry} is not moved")
        else:
            try:
                pending[image] = (source, destination_for(source, prefix))
            except InvalidReference as exc:
                verdicts[image] = Verdict("left", None, exc.problem)
    results = check(list(pending.values())) if pending else []
    for (image, (source, destination)), result in zip(pending.items(), results, strict=True):
        if result.status == "ok":
            verdicts[image] = Verdict("move", str(destination))
        else:
            hint = ""
            if result.status in ("missing", "incomplete"):
                hint = f"; copy it first: armirror copy {source}"
            elif result.status == "stale":
                hint = f"; copy it again: armirror copy {source}"
            detail = f": {result.detail}" if result.detail else ""
            verdicts[image] = Verdict(
                "left", str(destination), f"{result.status} in the mirror{detail}{hint}"
            )
    return verdicts


def apply_verdicts(workload: Workload, verdicts: Mapping[str, Verdict]) -> None:
    for container in workload.containers:
        verdict = verdicts[container.before]
        container.status = verdict.status  # type: ignore[assignment]
        container.after = verdict.after
        container.reason = verdict.reason


def apply_readers(workload: Workload, findings: Iterable[PermissionFinding]) -> None:
    """Keep the images of a workload whose puller cannot read the mirror."""
    for finding in findings:
        if finding.status == "missing":
            for container in workload.moving:
                container.status = "left"
                container.reason = f"{finding.member} cannot pull from the mirror" + (
                    f" (fix: {finding.gcloud})" if finding.gcloud else ""
                )
        elif finding.status != "ok":
            workload.notes.append(
                f"reader check for {finding.member}: {finding.status}"
                + (f" ({finding.detail})" if finding.detail else "")
            )


# -- managers ---------------------------------------------------------------------------

#: (label or annotation key, required value or None for any) -> manager name
_MARKS: tuple[tuple[str, str | None, str], ...] = (
    ("kustomize.toolkit.fluxcd.io/name", None, "Flux (Kustomization)"),
    ("helm.toolkit.fluxcd.io/name", None, "Flux (HelmRelease)"),
    ("argocd.argoproj.io/tracking-id", None, "Argo CD"),
    ("argocd.argoproj.io/instance", None, "Argo CD"),
    ("configsync.gke.io/resource-id", None, "Config Sync"),
    ("app.kubernetes.io/managed-by", "configmanagement.gke.io", "Config Sync"),
    ("meta.helm.sh/release-name", None, "Helm"),
    ("app.kubernetes.io/managed-by", "Helm", "Helm"),
    ("addonmanager.kubernetes.io/mode", "Reconcile", "the GKE addon manager"),
    ("managed-by", "google-cloud-deploy", "Cloud Deploy"),
    ("goog-terraform-provisioned", "true", "Terraform"),
)


def manager_of(labels: Mapping[str, str], annotations: Mapping[str, str]) -> str | None:
    """The tool that would put this workload back after a change, from the marks it
    leaves: Flux and Argo CD first (they also deploy Helm charts), then Helm itself.

    Argo CD's older label tracking uses ``app.kubernetes.io/instance``, which many Helm
    charts set too; alone it is not taken as a sign of Argo CD.
    """
    for key, value, manager in _MARKS:
        for marks in (labels, annotations):
            found = marks.get(key)
            if found is not None and (value is None or found == value):
                release = annotations.get("meta.helm.sh/release-name")
                if manager == "Helm" and release:
                    return f"Helm (release {release})"
                return manager
    return None


def settle(workload: Workload, *, include_managed: bool) -> None:
    """The status a workload has before anything is sent: already, left-alone, refused,
    or still ``moved`` pending (the platform then changes it)."""
    workload.manager = manager_of(workload.labels, workload.annotations)
    if not workload.changeable:
        workload.status = "not-changeable"
        return
    if workload.moving and workload.manager and not include_managed:
        workload.status = "refused"
        workload.reason = (
            f"managed by {workload.manager}, which would put the old images back: run "
            "`armirror rewrite` on its source of truth (or pass --include-managed)"
        )
        return
    if workload.moving:
        workload.status = "moved"  # provisional: the platform decides
    elif any(c.status == "left" for c in workload.containers):
        workload.status = "left-alone"
        workload.reason = "no image of it is ready in the mirror"
    else:
        workload.status = "already"
