"""One redeploy run, the same on every platform: read, judge, record the way back, change,
follow; and ``--undo``.

A platform (:class:`~armirror.redeploy.gke.Gke`, :class:`~armirror.redeploy.cloudrun.
CloudRun`) knows how to list its workloads, send a change (or a dry run of one), read
one workload again and follow a rollout.  Everything else is decided here, once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from armirror.redeploy.errors import ChangeError
from armirror.redeploy.model import ContainerChange, RedeployReport, Workload
from armirror.redeploy.plan import (
    CheckImages,
    CheckReaders,
    apply_readers,
    apply_verdicts,
    judge_images,
    settle,
)
from armirror.redeploy.undo import UndoEntry, UndoFile, UndoLog

if TYPE_CHECKING:
    from armirror.store import PullStore, RedeployRecord


class Platform(Protocol):
    platform: str

    def discover(self) -> list[Workload]: ...

    def consumers(self, workload: Workload) -> list[str]: ...

    def read(self, kind: str, namespace: str, name: str) -> Workload: ...

    def send(
        self, workload: Workload, images: list[tuple[ContainerChange, str]], *, dry_run: bool
    ) -> Workload: ...

    def wait(
        self, workload: Workload, images: set[str], *, timeout: float, poll: float
    ) -> str | None: ...


type Progress = Callable[[Workload], None]


def redeploy(
    platform: Platform,
    *,
    prefix: str,
    check_images: CheckImages,
    check_readers: CheckReaders | None = None,
    dry_run: bool = False,
    include_managed: bool = False,
    undo: UndoLog | None = None,
    wait: float | None = None,
    poll: float = 2.0,
    store: PullStore | None = None,
    target: str = "",
) -> RedeployReport:
    """Move every workload of ``platform`` whose images are ready in the mirror.

    ``undo`` is required unless ``dry_run``; it is written before each change is sent.
    ``wait`` is how long to follow each rollout (None: do not follow).
    """
    if undo is None and not dry_run:
        raise ValueError("a redeploy that changes things needs an undo log")
    report = RedeployReport(platform.platform, dry_run)
    workloads = platform.discover()
    verdicts = judge_images(
        (c.before for w in workloads for c in w.containers), prefix, check_images
    )
    for workload in workloads:
        apply_verdicts(workload, verdicts)
    if check_readers is not None:
        _check_readers(platform, workloads, check_readers)
    for workload in workloads:
        settle(workload, include_managed=include_managed)
    report.workloads = [
        w
        for w in workloads
        if w.changeable or any(c.status in ("move", "left") for c in w.containers)
    ]
    run_id = uuid.uuid4().hex
    sent: list[Workload] = []
    for workload in report.workloads:
        if workload.status != "moved":
            continue
        images = [(c, str(c.after)) for c in workload.moving]
        entry = None
        if undo is not None:
            entry = undo.before(workload, images)
            report.undo_file = str(undo.path)  # named even when every change then fails
        try:
            after = platform.send(workload, images, dry_run=dry_run)
        except ChangeError as exc:
            workload.status, workload.reason = exc.status, str(exc)  # type: ignore[assignment]
            if undo is not None and entry is not None:
                undo.settled(entry, after=None, error=str(exc))
            continue
        if undo is not None and entry is not None:
            undo.settled(entry, after=after)
        left = any(c.status == "left" for c in workload.containers)
        if dry_run:
            workload.status = "would-move"
        else:
            workload.status = "partly-moved" if left else "moved"
            workload.version, workload.generation = after.version, after.generation
            sent.append(workload)
            _record(
                store,
                run_id,
                target,
                workload,
                "moved",
                [(c.name, c.before, str(c.after)) for c in workload.moving],
            )
    if wait is not None:
        for workload in sent:
            _follow(platform, workload, {str(c.after) for c in workload.moving}, wait, poll)
    return report


def _check_readers(platform: Platform, workloads: list[Workload], check: CheckReaders) -> None:
    wanted: dict[str, None] = {}
    for workload in workloads:
        if workload.moving:
            wanted.update(dict.fromkeys(platform.consumers(workload)))
    if not wanted:
        return
    findings = check(list(wanted))
    by_member = {finding.member: finding for finding in findings}
    from armirror.iam import InvalidPrincipal, normalise_principal

    for workload in workloads:
        if not workload.moving:
            continue
        mine = []
        for consumer in platform.consumers(workload):
            try:
                member = normalise_principal(consumer)
            except InvalidPrincipal:
                member = consumer
            if member in by_member:
                mine.append(by_member[member])
        apply_readers(workload, mine)


def _follow(
    platform: Platform, workload: Workload, images: set[str], wait: float, poll: float
) -> None:
    try:
        failure = platform.wait(workload, images, timeout=wait, poll=poll)
    except ChangeError as exc:
        failure = f"could not follow the rollout: {exc}"
    workload.rollout = failure or "ready"
    if failure:
        workload.status = "failed"
        workload.reason = f"rollout: {failure}"


def _record(
    store: PullStore | None,
    run_id: str,
    target: str,
    workload: Workload,
    action: str,
    images: list[tuple[str, str, str]],
) -> None:
    if store is None:
        return
    from armirror.store import RedeployRecord

    now = datetime.now(UTC)
    records: list[RedeployRecord] = [
        RedeployRecord(
            run_id=run_id,
            platform=workload.platform,
            target=target,
            namespace=workload.namespace,
            kind=workload.kind,
            name=workload.name,
            container=container,
            old_image=old,
            new_image=new,
            action=action,
            changed_at=now,
        )
        for container, old, new in images
    ]
    try:
        store.record_redeploys(records)
    except Exception as exc:  # the change is made; a lost record must not hide that
        workload.notes.append(f"not recorded in the store: {exc}")


# -- undo --------------------------------------------------------------------------------


def restore(
    platform: Platform,
    undo_file: UndoFile,
    *,
    dry_run: bool = False,
    wait: float | None = None,
    poll: float = 2.0,
    store: PullStore | None = None,
    target: str = "",
) -> RedeployReport:
    """Put back the old images of every change the undo file records, newest first,
    refusing any workload that changed since."""
    report = RedeployReport(platform.platform, dry_run, undo=True)
    run_id = uuid.uuid4().hex
    sent: list[tuple[Workload, set[str]]] = []
    for entry in reversed(undo_file.entries):
        workload, images = _restore_plan(platform, entry)
        report.workloads.append(workload)
        if not images:
            continue
        try:
            after = platform.send(workload, images, dry_run=dry_run)
        except ChangeError as exc:
            workload.status, workload.reason = exc.status, str(exc)  # type: ignore[assignment]
            continue
        if dry_run:
            workload.status = "would-restore"
            continue
        workload.status = "restored"
        workload.version, workload.generation = after.version, after.generation
        sent.append((workload, {image for _, image in images}))
        _record(
            store,
            run_id,
            target,
            workload,
            "restored",
            [(c.name, c.before, image) for c, image in images],
        )
    if wait is not None:
        for workload, restored in sent:
            _follow(platform, workload, restored, wait, poll)
    return report


def _restore_plan(
    platform: Platform, entry: UndoEntry
) -> tuple[Workload, list[tuple[ContainerChange, str]]]:
    """The workload as it is now, and the images to put back (none when it must be
    left alone; its status then says why)."""
    try:
        workload = platform.read(entry.kind, entry.namespace, entry.name)
    except ChangeError as exc:
        gone = Workload(platform.platform, entry.kind, entry.namespace, entry.name)
        gone.status, gone.reason = exc.status, str(exc)  # type: ignore[assignment]
        return gone, []
    now = {(c.field, c.index): c for c in workload.containers}
    current = [now.get((c.field, c.index)) for c in entry.containers]
    if all(
        c is not None and c.before == old.before
        for c, old in zip(current, entry.containers, strict=True)
    ):
        workload.status = "already"
        workload.reason = "already runs the old images"
        workload.containers = _shown(entry, current, "already")
        return workload, []
    expected = entry.generation_after or entry.generation + 1
    changed = [
        f"{old.name} runs {c.before if c else 'nothing'}, not {old.after}"
        for c, old in zip(current, entry.containers, strict=True)
        if c is None or c.name != old.name or c.before != old.after
    ]
    if workload.generation != expected or changed:
        workload.status = "refused"
        why = changed or [f"generation {workload.generation}, armirror left it at {expected}"]
        workload.reason = "changed since the redeploy: " + "; ".join(why)
        workload.containers = _shown(entry, current, "left")
        return workload, []
    workload.containers = _shown(entry, current, "move")
    return workload, [(c, str(c.after)) for c in workload.containers]


def _shown(
    entry: UndoEntry, current: list[ContainerChange | None], status: str
) -> list[ContainerChange]:
    """The containers of a restore: ``before`` is what runs now, ``after`` the old image."""
    return [
        ContainerChange(old.field, old.index, old.name, c.before if c else "", old.before, status)  # type: ignore[arg-type]
        for c, old in zip(current, entry.containers, strict=True)
    ]
