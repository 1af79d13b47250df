"""A scan of whole trees: each file once, then what only the tree as a whole tells.

Some files matter because another names them, whatever they are called: the
Dockerfile a build config builds, a kustomize patch file.  Those are read after the
walk, with the type the naming file gives them (if they are inside a scanned
directory and not symbolic links).  Then:

- findings that a compose file's ``.env`` holds are filed under that ``.env``;
- kustomize ``images`` entries are resolved against the resources they apply to,
  across bases and overlays (:mod:`armirror.scan.overlays`);
- images that a skaffold config builds are marked as built wherever its directory
  names them (:mod:`armirror.scan.skaffold`).

Both ``scan`` and ``rewrite`` see a tree this way.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .files import FileScan, scan_file
from .finding import FileError, Finding
from .kustomize import Kustomization
from .overlays import Resolver
from .skaffold import SkaffoldArtifacts
from .walk import DOTENV, KUSTOMIZE_PATCH, Candidate, candidates

#: how many named files one scan follows (a config naming thousands is not a build)
MAX_LINKED_FILES = 10_000


@dataclass
class TreeScan:
    files: list[FileScan] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)  # paths that do not exist

    @property
    def files_scanned(self) -> int:
        return sum(1 for f in self.files if f.candidate.type != DOTENV)


def scan_tree(paths: Iterable[str | Path]) -> TreeScan:
    """Scan every file under ``paths`` (and the files they name) as one tree."""
    tree = TreeScan()
    files: dict[str, FileScan] = {}
    bases: list[tuple[str, str]] = []  # (absolute directory, how its paths are reported)
    for given in paths:
        root = Path(given)
        if not root.exists():
            tree.errors.append(FileError(str(given), "no such file or directory"))
            continue
        directory = root if root.is_dir() else root.parent
        prefix = "" if root.is_dir() else _prefix(directory)
        base = os.path.abspath(directory)
        bases.append((base, prefix))
        for candidate in candidates(root):
            key = os.path.join(base, candidate.rel[len(prefix) :])
            if key not in files:
                files[key] = scan_file(candidate)
    _scan_linked(files, bases)
    _file_dotenv_findings(files)
    _resolve_kustomizations(files)
    _mark_skaffold_builds(files)
    order = sorted(files.items(), key=lambda item: _walk_order(item[0], item[1], bases))
    tree.files = [scan for _, scan in order]
    return tree


def _walk_order(
    key: str, scan: FileScan, bases: list[tuple[str, str]]
) -> tuple[int, list[tuple[int, str]]]:
    """Where the walk puts a file (the paths given in order; in each, files before
    subdirectories, by name), so that the files named by others and the ``.env`` s
    appear where a walk would have put them."""
    index = 0
    if len(bases) > 1:
        index = next((i for i, (base, _) in enumerate(bases) if key.startswith(base)), len(bases))
    *directories, name = scan.candidate.rel.split("/")
    return index, [(1, d) for d in directories] + [(0, name)]


def _prefix(directory: Path) -> str:
    text = directory.as_posix()
    return "" if text == "." else text + "/"


def _scan_linked(files: dict[str, FileScan], bases: list[tuple[str, str]]) -> None:
    """Read the files that scanned files name, with the type they are named as."""
    queue = list(files.values())
    followed = 0
    while queue and followed < MAX_LINKED_FILES:
        scan = queue.pop(0)
        for link in scan.links:
            target = os.path.normpath(
                os.path.join(os.path.dirname(os.path.abspath(scan.candidate.path)), link.path)
            )
            known = files.get(target)
            if known is not None and (
                known.candidate.type == link.type or link.type != KUSTOMIZE_PATCH
            ):
                continue
            rel = _reported(target, bases)
            if rel is None or os.path.islink(target) or not os.path.isfile(target):
                continue
            followed += 1
            candidate = Candidate(Path(target), rel, link.type)
            files[target] = scan_file(candidate)
            queue.append(files[target])


def _reported(target: str, bases: list[tuple[str, str]]) -> str | None:
    """How ``target`` is reported: relative to the scanned directory that holds it."""
    for base, prefix in bases:
        if target.startswith(base + os.sep):
            return prefix + Path(os.path.relpath(target, base)).as_posix()
    return None


def _file_dotenv_findings(files: dict[str, FileScan]) -> None:
    """Move the findings a compose file made in its ``.env`` to that file's scan."""
    for scan in list(files.values()):
        dotenv = scan.dotenv
        if dotenv is None:
            continue
        mine = [f for f in scan.findings if f.file != dotenv.rel]
        theirs = [f for f in scan.findings if f.file == dotenv.rel]
        if not theirs:
            continue
        scan.findings = mine
        key = os.path.join(os.path.dirname(os.path.abspath(scan.candidate.path)), ".env")
        target = files.setdefault(
            key, FileScan(Candidate(Path(key), dotenv.rel, DOTENV), dotenv.text)
        )
        seen = {(f.line, f.image) for f in target.findings}
        for finding in theirs:
            if (finding.line, finding.image) not in seen:
                seen.add((finding.line, finding.image))
                target.findings.append(finding)
        target.findings.sort(key=lambda f: f.line)


def _resolve_kustomizations(files: dict[str, FileScan]) -> None:
    kustomizations: dict[str, Kustomization] = {}
    owners: dict[str, FileScan] = {}
    for key, scan in files.items():
        for fact in scan.facts:
            if isinstance(fact, Kustomization):
                kustomizations[os.path.dirname(key)] = fact
                owners[os.path.dirname(key)] = scan
    if not kustomizations:
        return

    def images_of(path: str) -> list[str] | None:
        scan = files.get(path)
        if scan is None:
            return None
        kinds = ("kubernetes", "cloudrun", "kustomize")
        return [f.image for f in scan.findings if f.kind in kinds and f.reference is not None]

    resolver = Resolver(kustomizations, images_of)
    for directory in kustomizations:
        resolver.build(directory)
    for directory, k in kustomizations.items():
        scan = owners[directory]
        replaced: dict[int, list[Finding]] = {
            id(entry.finding): resolver.findings_for(entry) for entry in k.entries
        }
        findings: list[Finding] = []
        for finding in scan.findings:
            findings += replaced.get(id(finding), [finding])
        scan.findings = findings


def _mark_skaffold_builds(files: dict[str, FileScan]) -> None:
    """References to a skaffold artifact under its config's directory are builds."""
    scopes: dict[str, frozenset[str]] = {}
    for key, scan in files.items():
        for fact in scan.facts:
            if isinstance(fact, SkaffoldArtifacts) and fact.names:
                directory = os.path.dirname(key)
                scopes[directory] = scopes.get(directory, frozenset()) | fact.names
    if not scopes:
        return
    for key, scan in files.items():
        names: frozenset[str] = frozenset()
        directory, parent = os.path.dirname(key), ""
        while directory != parent:  # each ancestor directory, up to the root
            names |= scopes.get(directory, frozenset())
            directory, parent = os.path.dirname(directory), directory
        if names:
            scan.findings = [
                dataclasses.replace(f, built=True)
                if f.reference is not None and f.reference.name in names and not f.built
                else f
                for f in scan.findings
            ]
