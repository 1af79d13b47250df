"""Find image references in files and running clusters.

``scan_paths`` walks directories (honouring .gitignore), reads Dockerfiles, Kubernetes
and Cloud Run manifests, compose, Cloud Build, kustomize and Helm files, and returns
:class:`Finding` s with the text spans a rewrite edits.  Files that cannot be read or
parsed, and files over one of the caps in :mod:`armirror.scan.limits` (refused), are
reported as :class:`FileError` s; the scan goes on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml

from .dockerfile import scan_dockerfile
from .finding import KINDS, FileError, Finding, ScanResult, Slot
from .limits import MAX_SECONDS_PER_FILE, Refused, budget
from .manifests import scan_chart_template, scan_yaml
from .walk import CHART_TEMPLATE, DOCKERFILE, JSON, Candidate, candidates, classify

__all__ = [
    "KINDS",
    "Candidate",
    "FileError",
    "Finding",
    "ScanResult",
    "Slot",
    "candidates",
    "classify",
    "is_reported",
    "read_text",
    "scan_candidate",
    "scan_paths",
    "scan_text",
]

MAX_FILE_BYTES = 10 * 1024 * 1024
_app_versions: dict[Path, str | None] = {}


def read_text(path: Path) -> str:
    """A file's text exactly as stored (line endings and BOM kept); OSError/ValueError."""
    data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; not scanned")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _app_version(chart: Path | None) -> str | None:
    """A chart's appVersion: the tag its templates default to."""
    if chart is None:
        return None
    if chart not in _app_versions:
        version = None
        try:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            data = yaml.load(read_text(chart / "Chart.yaml"), Loader=loader)
            value = data.get("appVersion") if isinstance(data, dict) else None
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                version = str(value)  # a scalar only: str() of an alias bomb never ends
        except (OSError, ValueError, yaml.YAMLError):
            version = None
        _app_versions[chart] = version
    return _app_versions[chart]


def scan_text(
    text: str, file: str, type_: str, hint: str | None = None, app_version: str | None = None
) -> tuple[list[Finding], str | None]:
    """Findings in one file's text, and a parse error message if it is not valid."""
    if type_ == DOCKERFILE:
        return scan_dockerfile(text, file), None
    if type_ == CHART_TEMPLATE:
        return scan_chart_template(text, file), None
    if type_ == JSON and hint is None and '"apiVersion"' not in text:
        return [], None
    if hint is None and "image" not in text and "steps" not in text:
        return [], None  # cannot hold a reference: skip the parse
    if hint in ("compose", "kustomize", "helm") and "image" not in text:
        return [], None
    return scan_yaml(text, file, hint, app_version)


def scan_candidate(
    candidate: Candidate, seconds: float = MAX_SECONDS_PER_FILE
) -> tuple[str | None, list[Finding], FileError | None]:
    """Read and scan one file: ``(text, findings, error)``.

    A file over a cap is refused whole (no findings), so a rewrite never edits part of it.
    """
    try:
        text = read_text(candidate.path)
    except (OSError, ValueError) as exc:
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return None, [], FileError(candidate.rel, message)
    try:
        with budget(seconds):
            findings, error = scan_text(
                text, candidate.rel, candidate.type, candidate.hint, _app_version(candidate.chart)
            )
    except Refused as exc:
        return text, [], FileError(candidate.rel, f"refused: {exc}")
    return text, findings, FileError(candidate.rel, error) if error else None


def is_reported(finding: Finding, include_first_party: bool) -> bool:
    """Third-party and unresolved references; every reference with ``include_first_party``."""
    return include_first_party or finding.third_party is not False


def iter_candidates(paths: Iterable[str | Path]) -> Iterator[tuple[Path, Candidate]]:
    for given in paths:
        root = Path(given)
        for candidate in candidates(root):
            yield root, candidate


def scan_paths(paths: Iterable[str | Path], *, include_first_party: bool = False) -> ScanResult:
    """Scan files and directories; findings are in walk order, then line order."""
    result = ScanResult()
    for root, candidate in iter_candidates(paths):
        if not root.exists():
            result.errors.append(FileError(str(root), "no such file or directory"))
            continue
        result.files_scanned += 1
        _, findings, error = scan_candidate(candidate)
        result.findings.extend(f for f in findings if is_reported(f, include_first_party))
        if error is not None:
            result.errors.append(error)
    for given in paths:
        if not Path(given).exists():
            result.errors.append(FileError(str(given), "no such file or directory"))
    return result
