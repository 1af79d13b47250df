"""Find image references in files and running clusters.

``scan_paths`` walks directories (honouring .gitignore), reads Dockerfiles, Kubernetes
and Cloud Run manifests (custom resources' pod templates too), compose files and their
``.env``, Cloud Build, skaffold, kustomize (with patches, and ``images`` resolved across
bases and overlays) and Helm files, plus the files build configs name, and returns
:class:`Finding` s with the text spans a rewrite edits.  Files that cannot be read or
parsed, and files over one of the caps in :mod:`armirror.scan.limits` (refused), are
reported as :class:`FileError` s; the scan goes on.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .files import FileScan, read_text, scan_file, scan_text
from .finding import KINDS, FileError, Finding, ScanResult, Slot
from .limits import MAX_SECONDS_PER_FILE
from .tree import TreeScan, scan_tree
from .walk import Candidate, candidates, classify

__all__ = [
    "KINDS",
    "Candidate",
    "FileError",
    "FileScan",
    "Finding",
    "ScanResult",
    "Slot",
    "TreeScan",
    "candidates",
    "classify",
    "is_reported",
    "read_text",
    "scan_candidate",
    "scan_file",
    "scan_paths",
    "scan_text",
    "scan_tree",
]


def scan_candidate(
    candidate: Candidate, seconds: float = MAX_SECONDS_PER_FILE
) -> tuple[str | None, list[Finding], FileError | None]:
    """Read and scan one file on its own: ``(text, findings, error)``."""
    scanned = scan_file(candidate, seconds)
    return scanned.text, scanned.findings, scanned.error


def is_reported(finding: Finding, include_first_party: bool) -> bool:
    """Third-party, unresolved and built references; every one with ``include_first_party``."""
    return include_first_party or finding.built or finding.third_party is not False


def scan_paths(paths: Iterable[str | Path], *, include_first_party: bool = False) -> ScanResult:
    """Scan files and directories; findings are in walk order, then line order."""
    tree = scan_tree(paths)
    result = ScanResult(files_scanned=tree.files_scanned)
    for scanned in tree.files:
        result.findings.extend(f for f in scanned.findings if is_reported(f, include_first_party))
        if scanned.error is not None:
            result.errors.append(scanned.error)
    result.errors.extend(tree.errors)
    return result
