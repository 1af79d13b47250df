"""The google and archive providers' schemas, offline, and a check of terraform/ against them.

``terraform validate`` needs the providers, which cannot be downloaded here.  Their schemas
travel in the prebuilt CDKTF bindings on the npm registry (``@cdktf/provider-google``,
``@cdktf/provider-archive``, pinned in ``tests/infra/provider-bindings/``): each binding
package has a ``.jsii`` manifest (every struct, its properties, which are optional, their
descriptions with a link naming the Terraform argument) and one ``lib/*/index.js`` per
resource whose ``synthesizeHclAttributes`` says, per argument, ``isBlock: true|false``.

:func:`ensure_bindings` installs the pinned packages with ``npm ci`` into
``.tools/provider-bindings`` on first use (like the emulators' virtualenvs);
:func:`load_schema` turns them into one compact JSON schema, cached beside them;
:func:`check` walks every resource, data source and provider block of a directory and
reports:

- ``unknown-type``: a resource or data source the provider does not have;
- ``unknown-argument``: an argument or block the schema does not have (or one that is
  read-only: computed by the provider);
- ``missing-required``: a required argument or block that is not set;
- ``block-as-attribute`` / ``attribute-as-block``: ``x = {...}`` where the schema has a
  block ``x {...}``, or the reverse;
- ``deprecated``: an argument whose description in the schema says it is deprecated.  The
  CDKTF generator drops the schema's own ``deprecated`` flag, so only what the description
  says is seen.

Run as a script it prints the findings for the directories given (exit status 1 if any).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]
PINS = Path(__file__).resolve().parent / "provider-bindings"
TOOLS = ROOT / ".tools" / "provider-bindings"
PACKAGES = {"google": "@cdktf/provider-google", "archive": "@cdktf/provider-archive"}

#: Arguments Terraform itself handles in resource, data and provider blocks.
META = {
    "count",
    "for_each",
    "depends_on",
    "provider",
    "lifecycle",
    "provisioner",
    "connection",
    "alias",
}

_DEPRECATED = re.compile(
    r"^\s*\(?deprecated\b|\bthis (?:field|argument|attribute) (?:is|has been) deprecated\b"
    r"|\bis deprecated and will be removed\b",
    re.IGNORECASE,
)


# -- installing the bindings ----------------------------------------------------------------


def _digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _pins_digest() -> str:
    return _digest(PINS / "package.json", PINS / "package-lock.json")


def ensure_bindings(tools: Path = TOOLS) -> Path:
    """Install the pinned binding packages into ``tools`` unless already there."""
    want = _pins_digest()
    stamp = tools / ".installed"
    if stamp.is_file() and stamp.read_text() == want:
        return tools
    tools.mkdir(parents=True, exist_ok=True)
    with (tools.parent / ".provider-bindings.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time (parallel test workers)
        if stamp.is_file() and stamp.read_text() == want:
            return tools
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "npm is needed to install the provider bindings (apt-get install npm)"
            )
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(PINS / name, tools / name)
        print(
            f"provider schema: installing {', '.join(PACKAGES.values())} into {tools}",
            file=sys.stderr,
        )
        # The bindings' peer dependencies (cdktf, constructs) are code we never run.
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--legacy-peer-deps", "--no-audit", "--no-fund"],
            cwd=tools,
            check=True,
            stdout=sys.stderr,
            timeout=900,
        )
        for old in tools.glob("schema-*.json"):
            old.unlink()
        stamp.write_text(want)
    return tools


# -- reading the bindings -------------------------------------------------------------------

_HCL_FUNCTION = re.compile(r"^function (\w+)ToHclTerraform\(struct\) \{$", re.MULTILINE)
_HCL_METHOD = re.compile(r"^    synthesizeHclAttributes\(\) \{$", re.MULTILINE)
_HCL_ENTRY = re.compile(
    r"^\s+(\w+): \{\n\s+value: (.*?),\n\s+isBlock: (true|false),", re.MULTILINE | re.DOTALL
)
_CAMEL_REF = re.compile(r"(?:struct\??\.|this\._)(\w+)")
_TYPE_NAME = re.compile(r"^(\w+)\.tfResourceType = \"(\w+)\";$", re.MULTILINE)
_READ_ONLY = re.compile(r"// (\w+) - computed: true, optional: false, required: false")


def _hcl_tables(js: str) -> dict[str, dict[str, tuple[str, bool]]]:
    """Struct (or ``class:``) name -> camelCase property -> (Terraform name, is a block)."""
    marks = [
        (m.start(), m.group(1)[0].upper() + m.group(1)[1:]) for m in _HCL_FUNCTION.finditer(js)
    ]
    marks += [(m.start(), "class:") for m in _HCL_METHOD.finditer(js)]
    marks.sort()
    tables: dict[str, dict[str, tuple[str, bool]]] = {}
    for index, (start, struct) in enumerate(marks):
        end = marks[index + 1][0] if index + 1 < len(marks) else len(js)
        body = js[start:end]
        stop = body.find("\n    return ") if struct != "class:" else body.find("\n        return ")
        body = body[: stop if stop > 0 else len(body)]
        table: dict[str, tuple[str, bool]] = {}
        for entry in _HCL_ENTRY.finditer(body):
            refs = _CAMEL_REF.findall(entry.group(2))
            if refs:
                table[refs[-1]] = (entry.group(1), entry.group(3) == "true")
        tables[struct] = table
    return tables


def _struct_fqn(type_ref: dict[str, Any], types: dict[str, Any]) -> str | None:
    """The struct a property's type names, through collections and unions."""
    if "fqn" in type_ref:
        target = types.get(type_ref["fqn"])
        if target and target.get("kind") == "interface" and target.get("datatype"):
            return str(type_ref["fqn"])
        return None
    if "collection" in type_ref:
        return _struct_fqn(type_ref["collection"]["elementtype"], types)
    if "union" in type_ref:
        for member in type_ref["union"]["types"]:
            found = _struct_fqn(member, types)
            if found:
                return found
    return None


def _description(docs: dict[str, Any]) -> str:
    text = " ".join(filter(None, [docs.get("summary", ""), docs.get("remarks", "")]))
    return text.split("Docs at Terraform Registry", 1)[0].strip()


def _block_schema(
    fqn: str, tables: dict[str, dict[str, tuple[str, bool]]], types: dict[str, Any], depth: int = 0
) -> dict[str, Any]:
    struct = types[fqn]
    name = fqn.rsplit(".", 1)[1]
    table = tables.get(name, {})
    attributes: dict[str, Any] = {}
    blocks: dict[str, Any] = {}
    for prop in struct.get("properties", []):
        camel = prop["name"]
        if camel not in table:
            continue  # e.g. meta-arguments inherited from cdktf
        tf_name, is_block = table[camel]
        entry: dict[str, Any] = {"required": not prop.get("optional", False)}
        description = _description(prop.get("docs", {}))
        if _DEPRECATED.search(description):
            entry["deprecated"] = description[:200]
        nested = _struct_fqn(prop["type"], types)
        if is_block:
            entry["block"] = (
                _block_schema(nested, tables, types, depth + 1)
                if nested and depth < 12
                else {"attributes": {}, "blocks": {}}
            )
            blocks[tf_name] = entry
        else:
            attributes[tf_name] = entry
    return {"attributes": attributes, "blocks": blocks}


def _extract_package(package: Path) -> dict[str, dict[str, Any]]:
    """Kind (``resource``, ``data``, ``provider``) -> Terraform type -> its schema."""
    manifest = json.loads((package / ".jsii").read_text())
    types: dict[str, Any] = manifest["types"]
    prefix = manifest["name"]
    out: dict[str, dict[str, Any]] = {"resource": {}, "data": {}, "provider": {}}
    for js_path in sorted((package / "lib").glob("*/index.js")):
        js = js_path.read_text()
        named = _TYPE_NAME.search(js)
        if not named:
            continue
        class_name, tf_type = named.groups()
        klass = next(
            (
                fqn
                for fqn in types
                if fqn.startswith(prefix + ".") and fqn.endswith("." + class_name)
            ),
            None,
        )
        if klass is None:
            continue
        base = types[klass].get("base", "")
        kind = {
            "cdktf.TerraformResource": "resource",
            "cdktf.TerraformDataSource": "data",
            "cdktf.TerraformProvider": "provider",
        }.get(base)
        if kind is None:
            continue
        tables = _hcl_tables(js)
        config = klass + "Config"
        if config not in types:
            continue
        tables[config.rsplit(".", 1)[1]] = tables.get("class:", {})
        schema = _block_schema(config, tables, types)
        schema["read_only"] = sorted(set(_READ_ONLY.findall(js)))
        out[kind][tf_type] = schema
    return out


def load_schema(tools: Path | None = None) -> dict[str, dict[str, Any]]:
    """The merged schema of every pinned provider (built once, then read from a cache)."""
    tools = ensure_bindings() if tools is None else tools
    # Named for the pins and this extractor, so a change to either rebuilds it.
    cache = tools / f"schema-{_digest(PINS / 'package-lock.json', Path(__file__))}.json"
    if cache.is_file():
        cached: dict[str, dict[str, Any]] = json.loads(cache.read_text())
        return cached
    merged: dict[str, dict[str, Any]] = {"resource": {}, "data": {}, "provider": {}, "versions": {}}
    for provider, package_name in PACKAGES.items():
        package = tools / "node_modules" / package_name
        extracted = _extract_package(package)
        for kind in ("resource", "data", "provider"):
            merged[kind].update(extracted[kind])
        meta = json.loads((package / "package.json").read_text())
        merged["versions"][provider] = meta.get("cdktf", {}).get("provider", {}).get("version", "?")
    cache.write_text(json.dumps(merged, sort_keys=True))
    return merged


# -- checking Terraform against it ----------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One disagreement between a .tf file and the provider schema."""

    path: Path
    address: str  # resource.TYPE.NAME, data.TYPE.NAME or provider.NAME
    where: str  # dotted path of the argument inside the block
    kind: str
    message: str

    def __str__(self) -> str:
        location = f"{self.address}.{self.where}" if self.where else self.address
        return f"{self.path.name}: {location}: {self.kind}: {self.message}"


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def _is_block(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and item.get("__is_block__") for item in value)
    )


def _check_body(
    body: dict[str, Any],
    schema: dict[str, Any],
    report: Any,
    where: str,
    *,
    meta: set[str],
    read_only: set[str],
) -> None:
    attributes: dict[str, Any] = schema["attributes"]
    blocks: dict[str, Any] = schema["blocks"]
    present: set[str] = set()
    for key, value in body.items():
        if key.startswith("__") or key in meta:
            continue
        path = f"{where}.{key}" if where else key
        if key == "dynamic" and isinstance(value, list):
            for item in value:
                for label, dynamic in item.items():  # {"\"name\"": {for_each, content}}
                    if label.startswith("__"):
                        continue
                    name = _unquote(label)
                    present.add(name)
                    spot = f"{where}.dynamic.{name}" if where else f"dynamic.{name}"
                    if name in attributes:
                        report(spot, "attribute-as-block", f"{name} is an argument, not a block")
                    elif name not in blocks:
                        report(spot, "unknown-argument", f"no block {name} here")
                    else:
                        for content in dynamic.get("content", []):
                            _check_body(
                                content,
                                blocks[name]["block"],
                                report,
                                spot,
                                meta=set(),
                                read_only=set(),
                            )
            continue
        present.add(key)
        if key in blocks:
            if not _is_block(value):
                report(
                    path,
                    "block-as-attribute",
                    f"{key} is a block: write {key} {{ ... }}, not {key} = ...",
                )
                continue
            if "deprecated" in blocks[key]:
                report(path, "deprecated", blocks[key]["deprecated"])
            for item in value:
                _check_body(item, blocks[key]["block"], report, path, meta=set(), read_only=set())
        elif key in attributes:
            if _is_block(value):
                report(
                    path,
                    "attribute-as-block",
                    f"{key} is an argument: write {key} = ..., not a block",
                )
            if "deprecated" in attributes[key]:
                report(path, "deprecated", attributes[key]["deprecated"])
        elif key in read_only:
            report(path, "unknown-argument", f"{key} is read-only: the provider computes it")
        else:
            report(path, "unknown-argument", f"no argument or block {key} here")
    for name, spec in {**attributes, **blocks}.items():
        if spec["required"] and name not in present:
            report(
                where,
                "missing-required",
                f"required {'block' if name in blocks else 'argument'} {name} is not set",
            )


def tf_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.tf") if ".terraform" not in p.parts)


def _blocks_of(parsed: dict[str, Any], kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for entry in parsed.get(kind, []):
        for type_label, named in entry.items():
            if type_label.startswith("__"):
                continue
            if kind == "provider":
                yield _unquote(type_label), "", named
                continue
            for name, body in named.items():
                if not name.startswith("__"):
                    yield _unquote(type_label), _unquote(name), body


def check(
    directory: Path, schema: dict[str, dict[str, Any]] | None = None
) -> tuple[list[Finding], int]:
    """Findings for every .tf file under ``directory``, and how many blocks were checked."""
    schema = load_schema() if schema is None else schema
    findings: list[Finding] = []
    checked = 0
    for path in tf_files(directory):
        with path.open(encoding="utf-8") as handle:
            parsed = hcl2.load(handle)
        for kind in ("resource", "data", "provider"):
            for tf_type, name, body in _blocks_of(parsed, kind):
                address = (
                    f"provider.{tf_type}"
                    if kind == "provider"
                    else (f"{'data.' if kind == 'data' else ''}{tf_type}.{name}")
                )

                def report(
                    where: str, what: str, message: str, address: str = address, path: Path = path
                ) -> None:
                    findings.append(Finding(path, address, where, what, message))

                known = schema[kind].get(tf_type)
                if known is None:
                    owner = tf_type.split("_", 1)[0]
                    report("", "unknown-type", f"the {owner} provider has no {kind} {tf_type}")
                    continue
                checked += 1
                _check_body(
                    body, known, report, "", meta=META, read_only=set(known.get("read_only", []))
                )
    return findings, checked


def main(argv: list[str]) -> int:
    schema = load_schema()
    total = 0
    for directory in argv or [str(ROOT / "terraform")]:
        findings, checked = check(Path(directory), schema)
        for finding in findings:
            print(finding)
        total += len(findings)
        print(f"{directory}: {checked} blocks checked, {len(findings)} findings", file=sys.stderr)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
