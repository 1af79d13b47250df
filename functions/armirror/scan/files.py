"""Reading and scanning one file: its text, its type's scanner, and the caps around it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .dockerfile import scan_dockerfile
from .dotenv import DotEnv, load_dotenv
from .finding import FileError, Finding, Link, Scanned
from .limits import MAX_SECONDS_PER_FILE, Refused, budget
from .manifests import scan_chart_template, scan_yaml_file
from .walk import CHART_TEMPLATE, DOCKERFILE, DOTENV, JSON, KUSTOMIZE_PATCH, Candidate

MAX_FILE_BYTES = 10 * 1024 * 1024
_app_versions: dict[tuple[Path, int], str | None] = {}


@dataclass
class FileScan:
    """One file's text as read, what it holds, and why it could not be scanned (if so)."""

    candidate: Candidate
    text: str | None
    findings: list[Finding] = field(default_factory=list)
    error: FileError | None = None
    links: list[Link] = field(default_factory=list)
    facts: list[object] = field(default_factory=list)
    dotenv: DotEnv | None = None


def read_text(path: Path) -> str:
    """A file's text exactly as stored (line endings and BOM kept); OSError/ValueError."""
    data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; not scanned")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def app_version(chart: Path | None) -> str | None:
    """A chart's appVersion: the tag its templates default to."""
    if chart is None:
        return None
    try:
        key = (chart, (chart / "Chart.yaml").stat().st_mtime_ns)
    except OSError:
        return None
    if key not in _app_versions:
        version = None
        try:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            data = yaml.load(read_text(chart / "Chart.yaml"), Loader=loader)
            value = data.get("appVersion") if isinstance(data, dict) else None
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                version = str(value)  # a scalar only: str() of an alias bomb never ends
        except (OSError, ValueError, yaml.YAMLError):
            version = None
        _app_versions[key] = version
    return _app_versions[key]


def scan_text(
    text: str, file: str, type_: str, hint: str | None = None, app_version: str | None = None
) -> tuple[list[Finding], str | None]:
    """Findings in one file's text read on its own, and a parse error message if it is
    not valid."""
    scanned = scan_source(text, file, type_, hint, app_version)
    return scanned.findings, scanned.error


def scan_source(
    text: str,
    file: str,
    type_: str,
    hint: str | None = None,
    app_version: str | None = None,
    dotenv: DotEnv | None = None,
) -> Scanned:
    """What one file's text holds (findings, the files it names, facts for the tree),
    and a parse error message if it is not valid."""
    if type_ == DOCKERFILE:
        return Scanned(scan_dockerfile(text, file))
    if type_ == CHART_TEMPLATE:
        return Scanned(scan_chart_template(text, file))
    if type_ == DOTENV:
        return Scanned()  # its images are found through the compose files that use it
    if type_ == JSON and hint is None and '"apiVersion"' not in text:
        return Scanned()
    if hint is None and not any(word in text for word in ("image", "steps", "services")):
        return Scanned()  # cannot hold a reference: skip the parse
    if hint == "helm" and "image" not in text and "Image" not in text:
        return Scanned()
    return scan_yaml_file(
        text, file, type_ if type_ == KUSTOMIZE_PATCH else hint, app_version, dotenv
    )


def scan_file(candidate: Candidate, seconds: float = MAX_SECONDS_PER_FILE) -> FileScan:
    """Read and scan one file.  A file over a cap is refused whole (no findings), so a
    rewrite never edits part of it."""
    try:
        text = read_text(candidate.path)
    except (OSError, ValueError) as exc:
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return FileScan(candidate, None, error=FileError(candidate.rel, message))
    dotenv = _dotenv_for(candidate, text)
    try:
        with budget(seconds):
            scanned = scan_source(
                text,
                candidate.rel,
                candidate.type,
                candidate.hint,
                app_version(candidate.chart),
                dotenv,
            )
    except Refused as exc:
        return FileScan(candidate, text, error=FileError(candidate.rel, f"refused: {exc}"))
    error = FileError(candidate.rel, scanned.error) if scanned.error else None
    scanned.findings.sort(key=lambda f: f.line)  # patches are read after images entries
    return FileScan(candidate, text, scanned.findings, error, scanned.links, scanned.facts, dotenv)


def _dotenv_for(candidate: Candidate, text: str) -> DotEnv | None:
    """The .env beside a file that may be a compose file (its variables fill ``${}``)."""
    if candidate.type != "yaml" or ("services" not in text and candidate.hint != "compose"):
        return None
    rel_dir = candidate.rel.rsplit("/", 1)[0] + "/" if "/" in candidate.rel else ""
    return load_dotenv(candidate.path.parent, rel_dir)
