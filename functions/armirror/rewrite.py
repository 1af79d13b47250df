"""Point files at the mirror: replace each third-party reference a scan finds with its
destination, editing only the characters of the reference.

Every edit is a span of the text as read (see :class:`armirror.scan.Slot`); nothing is
re-serialised, so comments, quoting, key order, indentation, line endings and a missing
final newline all stay.  The destination is :func:`armirror.reference.destination_for`,
the mapping ``armirror copy`` uses.  Before a file is written its new text is scanned
again: it must still parse and the rewritten references must now be first-party, or the
file is left alone and the problem reported.  Writes go to a temporary file in the same
directory that then replaces the original (same mode), so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from armirror.reference import (
    InvalidReference,
    Reference,
    RegistryClass,
    destination_for,
    parse,
    parse_prefix,
)
from armirror.scan import Candidate, FileError, Finding, Slot, is_reported, scan_text, scan_tree
from armirror.scan.dotenv import parse_dotenv
from armirror.scan.expand import written_name_length
from armirror.scan.limits import Refused, budget
from armirror.scan.walk import DOTENV

#: Given destination references (with tags), their digests (None when missing there).
DigestResolver = Callable[[list[Reference]], Mapping[Reference, str | None]]
#: Given destination references, why each one that cannot be used is unusable (absent
#: from the mirror, or the mirror could not be asked); the usable ones are left out.
MirrorCheck = Callable[[list[Reference]], Mapping[Reference, str]]


@dataclass(frozen=True, slots=True)
class Change:
    """One reference rewritten."""

    file: str
    line: int
    kind: str
    source: str
    destination: str

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "kind": self.kind,
            "from": self.source,
            "to": self.destination,
        }


@dataclass(frozen=True, slots=True)
class Skipped:
    """A reference that was found but not rewritten, and why."""

    finding: Finding
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {**self.finding.to_json(), "reason": self.reason}


@dataclass
class RewriteResult:
    changes: list[Change] = field(default_factory=list)
    files_changed: list[str] = field(default_factory=list)
    unresolved: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    diff: str = ""
    files_scanned: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "files_changed": self.files_changed,
            "references_rewritten": len(self.changes),
            "changes": [c.to_json() for c in self.changes],
            "unresolved": [f.to_json() for f in self.unresolved],
            "skipped": [s.to_json() for s in self.skipped],
            "errors": [e.to_json() for e in self.errors],
        }


@dataclass(frozen=True, slots=True)
class _Edit:
    start: int
    end: int
    text: str


def wants_rewrite(finding: Finding, prefix: Reference, include_first_party: bool) -> bool:
    """Third-party references (and Container Registry ones with ``include_first_party``).

    Images built here (skaffold artifacts, compose services with ``build:``) are left
    alone: their names are what the build tags and what skaffold substitutes.
    """
    ref = finding.reference
    if ref is None or finding.kind == "cluster" or finding.built:
        return False
    if ref.registry == prefix.registry and ref.repository.startswith(prefix.repository + "/"):
        return False
    if ref.third_party:
        return True
    return include_first_party and ref.registry_class is RegistryClass.CONTAINER_REGISTRY


def _needs_digest(finding: Finding) -> bool:
    return finding.reference is not None and finding.reference.digest is None


def _slot_text(slot: Slot, finding: Finding, text: str, dest: Reference, pin: str | None) -> str:
    """What a slot holds after the rewrite (ValueError when it cannot express ``dest``)."""
    part = slot.part
    if part == "ref":
        written = finding.image
        if pin is None and written_name_length(written) == len(written) and dest.tag == "latest":
            return dest.name  # nginx stays implicitly :latest
        return str(dest.with_digest(pin) if pin else dest)
    if part == "name":
        return dest.name
    if part == "name-head":
        if not dest.name.endswith(slot.tail):
            raise ValueError(f"the rest of the name ({slot.tail!r}) does not fit the destination")
        return dest.name[: len(dest.name) - len(slot.tail)]
    if part == "registry":
        return dest.registry
    if part == "repository":
        return dest.repository
    if part == "digest":
        return pin or text[slot.start : slot.end]
    if part == "tag+digest":
        current = text[slot.start : slot.end]
        return f"{current}@{pin}" if pin else current
    raise ValueError(f"unknown slot part {part!r}")


def _edits_for(
    finding: Finding, text: str, dest: Reference, pin: str | None, prefix: str
) -> tuple[list[_Edit], str | None]:
    """The edits that point ``finding`` at ``dest``; a note when a digest could not be pinned."""
    edits: list[_Edit] = []
    pinned = False
    for slot in finding.slots:
        if slot.part in ("digest", "tag+digest") and not pin:
            continue
        if slot.part in ("ref", "digest", "tag+digest"):
            pinned = pinned or bool(pin)
        if slot.part == "alias":
            alias = destination_for(parse(slot.tail), prefix).name
            new = slot.template.format(name=alias, new_name=dest.name)
        else:
            new = slot.template.format(_slot_text(slot, finding, text, dest, pin))
        if slot.start == slot.end or text[slot.start : slot.end] != new:
            edits.append(_Edit(slot.start, slot.end, new))
    note = None
    if pin and not pinned:
        note = "rewritten without a digest: this shape has no place for one"
    return edits, note


def _overlaps(a: _Edit, b: _Edit) -> bool:
    if a == b:
        return False
    if a.start == a.end and b.start == b.end:
        return False  # two insertions at one place keep their order
    return (a.start < b.end and b.start < a.end) or (a.start == b.start and a.end == b.end)


def apply_edits(text: str, edits: Iterable[_Edit]) -> str:
    """``text`` with non-overlapping edits applied (insertions at one place in order)."""
    out, cursor = [], 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        out.append(text[cursor : edit.start])
        out.append(edit.text)
        cursor = edit.end
    out.append(text[cursor:])
    return "".join(out)


def rewrite_text(
    text: str,
    findings: list[Finding],
    prefix: str,
    *,
    include_first_party: bool = False,
    digests: Mapping[Reference, str | None] | None = None,
    unusable: Mapping[Reference, str] | None = None,
) -> tuple[str, list[Change], list[Skipped], list[Finding]]:
    """Rewrite one file's text: ``(new text, changes, skipped, unresolved)``.

    With ``digests`` (destination reference -> digest), references are pinned; one whose
    destination digest is unknown (None or absent) is skipped, not rewritten unpinned.
    A reference whose destination is in ``unusable`` is skipped with that reason.
    """
    base = parse_prefix(prefix)
    accepted: list[_Edit] = []
    changes: list[Change] = []
    skipped: list[Skipped] = []
    unresolved: list[Finding] = []
    for finding in findings:
        if finding.reference is None:
            if is_reported(finding, include_first_party):
                unresolved.append(finding)
            continue
        if not wants_rewrite(finding, base, include_first_party):
            continue
        if finding.problem or not finding.slots:
            # A problem means the name cannot be edited, though a tag or digest might be.
            skipped.append(Skipped(finding, finding.problem or "no editable value"))
            continue
        try:
            dest = destination_for(finding.reference, prefix)
        except InvalidReference as exc:
            skipped.append(Skipped(finding, str(exc)))
            continue
        if unusable and dest in unusable:
            skipped.append(Skipped(finding, unusable[dest]))
            continue
        pin = None
        if digests is not None and _needs_digest(finding):
            pin = digests.get(dest)
            if pin is None:
                skipped.append(Skipped(finding, f"{dest} not found at the destination; copy it"))
                continue
        try:
            edits, note = _edits_for(finding, text, dest, pin, prefix)
        except (ValueError, InvalidReference) as exc:
            skipped.append(Skipped(finding, str(exc)))
            continue
        if any(_overlaps(e, a) for e in edits for a in accepted):
            skipped.append(
                Skipped(finding, "shares its value with another reference that maps elsewhere")
            )
            continue
        # An edit another finding already made is made once; this finding's own edits
        # all stay (a kustomize entry and its twin each gain a digest at one place).
        accepted.extend([e for e in edits if e not in accepted])
        shown = dest.with_digest(pin) if pin and not note else dest  # as written
        changes.append(
            Change(finding.file, finding.line, finding.kind, str(finding.reference), str(shown))
        )
        if note:
            skipped.append(Skipped(finding, note))
    return apply_edits(text, accepted), changes, skipped, unresolved


def unified_diff(old: str, new: str, name: str) -> str:
    """A unified diff of two texts, marking a missing final newline as diff(1) does."""

    def lines(text: str) -> list[str]:
        parts = text.split("\n")
        out = [p + "\n" for p in parts[:-1]]
        if parts[-1]:
            out.append(parts[-1] + "\n\\ No newline at end of file\n")
        return out

    return "".join(difflib.unified_diff(lines(old), lines(new), f"a/{name}", f"b/{name}"))


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path``'s content with ``data`` through a temporary file and a rename.

    The file keeps its mode; a symbolic link keeps pointing at the rewritten target.
    """
    real = Path(os.path.realpath(path))
    mode = stat.S_IMODE(real.stat().st_mode)
    fd, tmp = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".armirror")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass
class _Planned:
    candidate: Candidate
    text: str
    findings: list[Finding]


def rewrite_paths(
    paths: Iterable[str | Path],
    prefix: str,
    *,
    dry_run: bool = False,
    include_first_party: bool = False,
    resolve_digests: DigestResolver | None = None,
    check_mirror: MirrorCheck | None = None,
) -> RewriteResult:
    """Rewrite every file under ``paths``; ``resolve_digests`` turns on pinning.

    With ``check_mirror``, a reference is pointed at the mirror only when the mirror has
    its destination (a typo such as ``ngnix`` is left alone, with the reason).  A file
    that does not parse is reported and left alone.  ``dry_run`` fills
    :attr:`RewriteResult.diff` and writes nothing.
    """
    base = parse_prefix(prefix)
    result = RewriteResult()
    planned: list[_Planned] = []
    tree = scan_tree(paths)
    result.errors.extend(tree.errors)
    result.files_scanned = tree.files_scanned
    for scanned in tree.files:
        if scanned.error is not None:
            result.errors.append(scanned.error)
        elif scanned.text is not None and scanned.findings:
            planned.append(_Planned(scanned.candidate, scanned.text, scanned.findings))

    unusable: Mapping[Reference, str] | None = None
    if check_mirror is not None:
        every: dict[Reference, None] = {}
        for plan in planned:
            for finding in plan.findings:
                if finding.reference is not None and wants_rewrite(
                    finding, base, include_first_party
                ):
                    with contextlib.suppress(InvalidReference):
                        every[destination_for(finding.reference, prefix)] = None
        unusable = check_mirror(list(every)) if every else {}

    digests: Mapping[Reference, str | None] | None = None
    if resolve_digests is not None:
        wanted: dict[Reference, None] = {}
        for plan in planned:
            for finding in plan.findings:
                if wants_rewrite(finding, base, include_first_party) and _needs_digest(finding):
                    assert finding.reference is not None
                    with contextlib.suppress(InvalidReference):
                        wanted[destination_for(finding.reference, prefix)] = None
        digests = resolve_digests(list(wanted)) if wanted else {}

    diffs: list[str] = []
    for plan in planned:
        new_text, changes, skipped, unresolved = rewrite_text(
            plan.text,
            plan.findings,
            prefix,
            include_first_party=include_first_party,
            digests=digests,
            unusable=unusable,
        )
        result.skipped.extend(skipped)
        result.unresolved.extend(unresolved)
        if new_text == plan.text:
            continue
        problem = _check(plan, new_text, _aliases_added(plan.findings, changes))
        if problem:
            result.errors.append(FileError(plan.candidate.rel, f"not rewritten: {problem}"))
            continue
        if dry_run:
            diffs.append(unified_diff(plan.text, new_text, plan.candidate.rel))
        else:
            try:
                if plan.candidate.path.read_bytes() != plan.text.encode("utf-8"):
                    raise OSError("the file changed while it was being rewritten")
                atomic_write(plan.candidate.path, new_text.encode("utf-8"))
            except OSError as exc:
                result.errors.append(FileError(plan.candidate.rel, f"not rewritten: {exc}"))
                continue
        result.changes.extend(changes)
        result.files_changed.append(plan.candidate.rel)
    result.diff = "".join(diffs)
    return result


def _aliases_added(findings: list[Finding], changes: list[Change]) -> int:
    """Kustomize entries the rewrite added (a twin for each rewritten entry that has one;
    an entry resolved to several images still gains one)."""
    rewritten = {c.line for c in changes if c.kind == "kustomize"}
    return len(
        {
            f.line
            for f in findings
            if f.line in rewritten and any(s.part == "alias" for s in f.slots)
        }
    )


def _check(plan: _Planned, new_text: str, added: int) -> str | None:
    """Why the new text must not be written, if it fails a second scan: read on its own,
    it must parse and hold the references the old text held, plus the ``added``
    kustomize twins (a ``.env`` must keep its variables, in order)."""
    c = plan.candidate
    if c.type == DOTENV:
        if list(parse_dotenv(new_text)) != list(parse_dotenv(plan.text)):
            return "the rewritten .env would not define the same variables"
        return None
    try:
        with budget():
            old, _ = scan_text(plan.text, c.rel, c.type, c.hint)
            new, error = scan_text(new_text, c.rel, c.type, c.hint)
    except Refused as exc:
        return f"the rewritten text would be refused ({exc})"
    if error:
        return f"the rewritten text would not parse ({error})"
    before = sum(1 for f in old if f.reference is not None) + added
    after = sum(1 for f in new if f.reference is not None)
    if before != after:
        return f"the rewritten text holds {after} references where there were {before}"
    return None
