"""The way back: an undo file written before each change, and ``--undo`` to restore.

The file is JSON, rewritten atomically (a temporary file, then a rename) before each
change is sent and again when its answer comes, so a run stopped at any point leaves a
file that names every change that may have been made.  Each entry names the workload,
its containers with the old and new image, and what was read before the change: the
``resourceVersion`` (GKE) or ``etag`` (Cloud Run) and the ``generation``.

Restoring refuses a workload that changed since: its generation must be the one the
change produced (one more than before it; a generation counts spec changes only, not
status updates) and every container must still run the image armirror set.  The
restore itself is sent with the version read just before, so a change made in between
is refused by the platform too.

An undo file is input like any other: its size is bounded and every field is checked
before anything is sent.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from armirror.redeploy.model import ContainerChange, Workload
from armirror.reference import InvalidReference, parse

FORMAT = "armirror-undo/1"
MAX_BYTES = 16 << 20
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_CLOUD_RUN_PLACE = re.compile(r"^[a-z0-9][-a-z0-9.:]{0,99}/[a-z0-9-]{1,63}$")
_KINDS = {"gke": {"Deployment", "StatefulSet", "DaemonSet", "CronJob"}, "cloud-run": {"Service"}}
_FIELDS = {"containers", "initContainers"}


class UndoFileError(ValueError):
    """An undo file that cannot be used; the message names the file and the problem."""


@dataclass
class UndoEntry:
    """One workload's change, as the undo file records it."""

    kind: str
    namespace: str
    name: str
    version: str
    generation: int
    containers: list[ContainerChange]  # before = old image, after = new image
    state: str = "pending"  # pending | applied | failed
    error: str = ""
    version_after: str = ""
    generation_after: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "generation": self.generation,
            "state": self.state,
            "error": self.error,
            "version_after": self.version_after,
            "generation_after": self.generation_after,
            "containers": [
                {
                    "field": c.field,
                    "index": c.index,
                    "name": c.name,
                    "old": c.before,
                    "new": c.after,
                }
                for c in self.containers
            ],
        }


@dataclass
class UndoFile:
    platform: str
    target: dict[str, str]
    entries: list[UndoEntry] = field(default_factory=list)
    created: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "platform": self.platform,
            "target": self.target,
            "created": self.created,
            "changes": [e.to_json() for e in self.entries],
        }


def default_path(directory: Path | None = None) -> Path:
    """``armirror-undo-YYYYMMDDTHHMMSSZ.json`` in the current directory, never an
    existing file."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = (directory or Path.cwd()) / f"armirror-undo-{stamp}"
    path, n = base.with_suffix(".json"), 1
    while path.exists():
        n += 1
        path = base.parent / f"{base.name}-{n}.json"
    return path


class UndoLog:
    """Writes the undo file of one run, entry by entry, before each change is sent."""

    def __init__(self, path: Path, platform: str, target: dict[str, str]) -> None:
        self.path = path
        self.file = UndoFile(platform, dict(target), created=datetime.now(UTC).isoformat())
        self._started = False

    def check_writable(self) -> None:
        """Fail early, before anything changes, when the file cannot be written."""
        if self.path.exists():
            raise UndoFileError(f"{self.path}: exists; name another file with --undo-file")
        if not self.path.parent.is_dir():
            raise UndoFileError(f"{self.path.parent}: no such directory for the undo file")
        if not os.access(self.path.parent, os.W_OK):
            raise UndoFileError(f"{self.path.parent}: cannot write the undo file here")

    def before(self, workload: Workload, images: list[tuple[ContainerChange, str]]) -> UndoEntry:
        """Record a change about to be sent (state ``pending``); written at once."""
        changes = [
            ContainerChange(c.field, c.index, c.name, c.before, image) for c, image in images
        ]
        entry = UndoEntry(
            workload.kind,
            workload.namespace,
            workload.name,
            workload.version,
            workload.generation,
            changes,
        )
        self.file.entries.append(entry)
        self._write()
        return entry

    def settled(self, entry: UndoEntry, *, after: Workload | None, error: str = "") -> None:
        entry.state = "applied" if after is not None else "failed"
        entry.error = error
        if after is not None:
            entry.version_after, entry.generation_after = after.version, after.generation
        self._write()

    def _write(self) -> None:
        if not self._started and self.path.exists():
            raise UndoFileError(f"{self.path}: exists; name another file with --undo-file")
        self._started = True
        data = json.dumps(self.file.to_json(), indent=2) + "\n"
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".armirror-undo-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise


# -- reading -----------------------------------------------------------------------------


def read_undo_file(path: Path) -> UndoFile:
    """Read and check an undo file; raises :class:`UndoFileError` naming the problem."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UndoFileError(f"{path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise UndoFileError(f"{path}: larger than {MAX_BYTES} bytes; not an armirror undo file")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise UndoFileError(f"{path}: not JSON: {exc}") from None
    problem = _Checker(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise problem("not an armirror undo file (no format: " + FORMAT + ")")
    platform = data.get("platform")
    if platform not in _KINDS:
        raise problem(f"unknown platform {platform!r}")
    target = data.get("target")
    if not isinstance(target, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) < 2048 for k, v in target.items()
    ):
        raise problem("target must map names to strings")
    changes = data.get("changes")
    if not isinstance(changes, list):
        raise problem("changes must be a list")
    entries = [_entry(problem, platform, n, item) for n, item in enumerate(changes)]
    return UndoFile(platform, target, entries, str(data.get("created", ""))[:64])


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, message: str) -> UndoFileError:
        return UndoFileError(f"{self.path}: {message}")


def _entry(problem: _Checker, platform: str, n: int, item: Any) -> UndoEntry:
    where = f"changes[{n}]"
    if not isinstance(item, dict):
        raise problem(f"{where}: not an object")
    kind, namespace, name = item.get("kind"), item.get("namespace"), item.get("name")
    if kind not in _KINDS[platform]:
        raise problem(f"{where}: kind {kind!r} is not one armirror changes on {platform}")
    place = _CLOUD_RUN_PLACE if platform == "cloud-run" else _NAME
    if not isinstance(namespace, str) or not place.match(namespace):
        raise problem(f"{where}: bad namespace {namespace!r}")
    if not isinstance(name, str) or not _NAME.match(name):
        raise problem(f"{where}: bad name {name!r}")
    version, generation = item.get("version"), item.get("generation")
    if not isinstance(version, str) or len(version) > 256:
        raise problem(f"{where}: bad version")
    if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
        raise problem(f"{where}: bad generation")
    state = item.get("state")
    if state not in ("pending", "applied", "failed"):
        raise problem(f"{where}: bad state {state!r}")
    generation_after = item.get("generation_after", 0)
    if not isinstance(generation_after, int) or isinstance(generation_after, bool):
        raise problem(f"{where}: bad generation_after")
    containers = item.get("containers")
    if not isinstance(containers, list) or not containers:
        raise problem(f"{where}: containers must be a non-empty list")
    changes = []
    for m, container in enumerate(containers):
        spot = f"{where}.containers[{m}]"
        if not isinstance(container, dict):
            raise problem(f"{spot}: not an object")
        fld, index, cname = container.get("field"), container.get("index"), container.get("name")
        if fld not in _FIELDS:
            raise problem(f"{spot}: bad field {fld!r}")
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 1000:
            raise problem(f"{spot}: bad index")
        if not isinstance(cname, str) or len(cname) > 253:
            raise problem(f"{spot}: bad container name")
        images: list[str] = []
        for key in ("old", "new"):
            value = container.get(key)
            if not isinstance(value, str):
                raise problem(f"{spot}.{key}: not a string")
            try:
                parse(value)
            except InvalidReference as exc:
                raise problem(f"{spot}.{key}: {exc}") from None
            images.append(value)
        changes.append(ContainerChange(fld, index, cname, images[0], images[1], "move"))
    return UndoEntry(
        kind,
        namespace,
        name,
        version,
        generation,
        changes,
        state,
        str(item.get("error", ""))[:400],
        str(item.get("version_after", ""))[:256],
        generation_after,
    )
