"""Which files a scan reads: a walk that honours .gitignore and names each file's type."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

#: File types the scanners read.  A KUSTOMIZE_PATCH is only ever a file a kustomization
#: names; a DOCKERFILE may also be one a build config names, whatever its name.
DOCKERFILE, YAML, JSON, CHART_TEMPLATE = "dockerfile", "yaml", "json", "chart-template"
KUSTOMIZE_PATCH = "kustomize-patch"
#: a compose ``.env``: never walked into, only read for the compose files beside it
DOTENV = "dotenv"

# Dockerfile-base, Dockerfile_dev, Dockerfile.prod, api.Dockerfile, Containerfile.arm64
_DOCKERFILE_PATTERNS = (
    "dockerfile",
    "containerfile",
    "dockerfile[._-]*",
    "containerfile[._-]*",
    "*.dockerfile",
    "*.containerfile",
)
#: Suffixes of files named like a Dockerfile that are not one: documentation, scripts,
#: data and BuildKit's per-Dockerfile ignore file (``Dockerfile.dockerignore``).
#: Templates of Dockerfiles (``.j2``, ``.tmpl``, ``.in``) are read: their literal
#: ``FROM`` lines are what the rendered file pulls.
# fmt: off
_NOT_DOCKERFILE_SUFFIXES = frozenset({
    "dockerignore", "md", "markdown", "rst", "adoc", "txt", "html", "sh", "bash", "zsh", "ps1",
    "bat", "cmd", "py", "go", "js", "ts", "rb", "java", "json", "yaml", "yml", "toml", "ini",
    "cfg", "conf", "env", "lock", "sum", "mod", "orig", "rej", "bak", "swp", "patch", "diff",
    "png", "svg",
})
# fmt: on
_HINTS = (
    ("kustomize", ("kustomization.yaml", "kustomization.yml", "kustomization")),
    ("compose", ("docker-compose*.y*ml", "compose.y*ml", "compose.*.y*ml", "*.compose.y*ml")),
    ("cloudbuild", ("cloudbuild*.y*ml", "cloudbuild*.json")),
    ("skaffold", ("skaffold*.y*ml",)),
    ("helm", ("values.y*ml", "values[-_.]*.y*ml", "*[-_.]values.y*ml")),
)


@dataclass(frozen=True, slots=True)
class Candidate:
    path: Path  # on disk
    rel: str  # as reported: relative to the PATH given
    type: str  # DOCKERFILE, YAML, JSON or CHART_TEMPLATE
    hint: str | None = None  # compose, cloudbuild, kustomize, skaffold, helm
    chart: Path | None = None  # the chart directory of a values file or template


def classify(path: Path) -> tuple[str, str | None] | None:
    """``(type, hint)`` for a file name the scanners read, else None."""
    name = path.name.lower()
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in _DOCKERFILE_PATTERNS):
        suffix = name.rsplit(".", 1)[1] if "." in name else ""
        if suffix not in _NOT_DOCKERFILE_SUFFIXES:
            return DOCKERFILE, None
    suffix = path.suffix.lower()
    hint = next(
        (h for h, patterns in _HINTS if any(fnmatch.fnmatchcase(name, p) for p in patterns)),
        None,
    )
    if suffix in (".yaml", ".yml") or hint == "kustomize":
        return YAML, hint
    if suffix == ".json":
        return JSON, hint
    if suffix == ".tpl":
        return CHART_TEMPLATE, None
    return None


def _chart_dir(directory: Path) -> Path | None:
    return directory if (directory / "Chart.yaml").is_file() else None


def template_chart(directory: Path) -> Path | None:
    """The chart whose ``templates/`` holds ``directory``, at any depth, if any.

    Helm renders every file under ``templates/`` (``templates/primary/statefulset.yaml``
    too), so all of them are templates, not YAML.
    """
    for ancestor in (directory, *directory.parents):
        if ancestor.name == "templates" and _chart_dir(ancestor.parent) is not None:
            return ancestor.parent
    return None


def _ignore_spec(directory: Path) -> pathspec.PathSpec | None:
    gitignore = directory / ".gitignore"
    try:
        lines = gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _ignored(specs: list[tuple[Path, pathspec.PathSpec]], path: Path, is_dir: bool) -> bool:
    """Whether the innermost .gitignore that decides about ``path`` excludes it."""
    for base, spec in reversed(specs):
        rel = path.relative_to(base).as_posix() + ("/" if is_dir else "")
        result = spec.check_file(rel)
        if result.include is not None:
            return bool(result.include)
    return False


def candidates(root: Path) -> Iterator[Candidate]:
    """Files under ``root`` the scanners read, in a stable order.

    ``.git`` is skipped, and so is whatever a ``.gitignore`` on the way excludes.
    Symbolic links are not followed: a link inside the tree points at a file the walk
    reaches anyway, and a rewrite must not edit files outside the tree.
    """
    if root.is_file():
        kind = classify(root)
        if kind is not None:
            chart = _chart_dir(root.parent)
            if kind[0] in (YAML, CHART_TEMPLATE):
                chart_of_template = template_chart(root.resolve().parent)
                if chart_of_template is not None:
                    yield Candidate(root, root.as_posix(), CHART_TEMPLATE, None, chart_of_template)
                    return
            yield Candidate(root, root.as_posix(), kind[0], kind[1], chart)
        return
    top = root.resolve()
    specs: list[tuple[Path, pathspec.PathSpec]] = []
    for ancestor in _repository_ancestors(top):
        spec = _ignore_spec(ancestor)
        if spec is not None:
            specs.append((ancestor, spec))
    if specs and _ignored(specs, top, True):
        specs = []  # a directory named explicitly is scanned even if git ignores it
    yield from _walk(top, top, specs, "", template_chart(top))


def _repository_ancestors(directory: Path) -> list[Path]:
    """Parents of ``directory`` up to its git work tree's root, outermost first.

    Their .gitignore files apply to a scan of a subdirectory, as they do for git.
    """
    chain: list[Path] = []
    for parent in directory.parents:
        chain.append(parent)
        if (parent / ".git").exists():
            return chain[::-1]
    return []


def _walk(
    root: Path,
    directory: Path,
    specs: list[tuple[Path, pathspec.PathSpec]],
    rel_dir: str,
    in_templates: Path | None,
) -> Iterator[Candidate]:
    """``in_templates`` is the chart when ``directory`` is (inside) its ``templates/``."""
    spec = _ignore_spec(directory)
    if spec is not None:
        specs = [*specs, (directory, spec)]
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return
    chart = _chart_dir(directory)
    if in_templates is None and directory.name == "templates":
        in_templates = _chart_dir(directory.parent)
    subdirs: list[Path] = []
    for entry in entries:
        if entry.is_symlink():
            continue
        path = Path(entry.path)
        if entry.is_dir():
            if entry.name != ".git" and not (specs and _ignored(specs, path, True)):
                subdirs.append(path)
            continue
        kind = classify(path)
        if kind is None or (specs and _ignored(specs, path, False)):
            continue
        rel = rel_dir + entry.name
        file_type, hint = kind
        if in_templates is not None and file_type in (YAML, CHART_TEMPLATE):
            yield Candidate(path, rel, CHART_TEMPLATE, None, in_templates)
        elif file_type == CHART_TEMPLATE:
            continue
        else:
            yield Candidate(path, rel, file_type, hint, chart)
    for subdir in subdirs:
        yield from _walk(root, subdir, specs, f"{rel_dir}{subdir.name}/", in_templates)
