"""A small read-only model of the Terraform in terraform/, parsed with python-hcl2.

python-hcl2 keeps HCL's quoting: labels and string literals come back as ``'"name"'`` and
expressions as ``'${...}'``.  :func:`unquote` turns literals into plain strings; everything
else is compared as the expression text Terraform would evaluate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
MODULE = TERRAFORM / "modules" / "armirror"
EXAMPLE = TERRAFORM / "examples" / "org"

FUNCTIONS = ("on_pull_event", "copy_image", "request_copy", "refresh")


def unquote(value: Any) -> Any:
    """A literal string without its quotes; anything else as it is."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def expr(value: Any) -> str:
    """The expression inside ``${...}``, or the literal text."""
    text = unquote(value)
    if isinstance(text, str) and text.startswith("${") and text.endswith("}"):
        return text[2:-1]
    return str(text)


def block(value: Any) -> dict[str, Any]:
    """A nested block: python-hcl2 gives a list of one dict."""
    if isinstance(value, list):
        assert len(value) == 1, value
        value = value[0]
    assert isinstance(value, dict), value
    return value


@dataclass(frozen=True)
class Resource:
    kind: str
    name: str
    body: dict[str, Any]
    path: Path

    @property
    def address(self) -> str:
        return f"{self.kind}.{self.name}"

    def get(self, key: str, default: Any = None) -> Any:
        return unquote(self.body.get(key, default))


@cache
def parse(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        parsed: dict[str, Any] = hcl2.load(handle)
    return parsed


def tf_files(directory: Path = TERRAFORM) -> list[Path]:
    return sorted(p for p in directory.rglob("*.tf") if ".terraform" not in p.parts)


def blocks(kind: str, directory: Path = MODULE) -> Iterator[tuple[dict[str, Any], Path]]:
    for path in tf_files(directory):
        for entry in parse(path).get(kind, []):
            yield entry, path


def resources(directory: Path = MODULE) -> list[Resource]:
    found = []
    for entry, path in blocks("resource", directory):
        for kind, named in entry.items():
            for name, body in named.items():
                found.append(Resource(unquote(kind), unquote(name), body, path))
    return found


def resource(kind: str, name: str, directory: Path = MODULE) -> Resource:
    matches = [r for r in resources(directory) if r.kind == kind and r.name == name]
    assert len(matches) == 1, f"{kind}.{name}: {len(matches)} definitions"
    return matches[0]


def of_kind(kind: str, directory: Path = MODULE) -> list[Resource]:
    return [r for r in resources(directory) if r.kind == kind]


def locals_(directory: Path = MODULE) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for entry, _ in blocks("locals", directory):
        for key, value in entry.items():
            if key.startswith("__"):
                continue
            assert key not in merged, f"local.{key} defined twice"
            merged[key] = value
    return merged


def variables(directory: Path = MODULE) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for entry, _ in blocks("variable", directory):
        for name, body in entry.items():
            found[unquote(name)] = body
    return found


def outputs(directory: Path = MODULE) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for entry, _ in blocks("output", directory):
        for name, body in entry.items():
            found[unquote(name)] = body
    return found


def resolve_local(value: Any) -> Any:
    """Follow ``${local.NAME}`` references (only whole-value ones) to their definition."""
    table = locals_()
    seen = set()
    while isinstance(value, str):
        match = re.fullmatch(r"\$\{local\.(\w+)\}", value)
        if not match or match.group(1) in seen:
            break
        seen.add(match.group(1))
        value = table[match.group(1)]
    return value


_MERGE = re.compile(r"\$\{merge\(local\.(\w+), \{(.*)\}\)\}", re.S)


def resolve_env(value: Any) -> dict[str, Any]:
    """A function's ``environment_variables`` as a map: ``${local.NAME}`` followed, and
    ``${merge(local.NAME, {KEY = EXPR, ...})}`` applied (values stay expressions)."""
    value = resolve_local(value)
    if isinstance(value, dict):
        return dict(value)
    match = _MERGE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise AssertionError(f"not an environment map: {value!r}")
    merged = resolve_env(f"${{local.{match.group(1)}}}")
    for pair in match.group(2).split(","):
        key, _, expression = pair.partition("=")
        merged[key.strip()] = "${" + expression.strip() + "}"
    return merged
