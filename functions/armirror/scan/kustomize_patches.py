"""Kustomize patches: the containers they add, and the images those name.

Patches add containers whose images appear nowhere else:

- a JSON 6902 patch (``patchesJson6902``, or ``patches`` with a list of operations)
  with ``op: add`` or ``replace`` on a container list, a container or an ``image``;
- a strategic-merge patch (``patchesStrategicMerge``, or ``patches`` with an object)
  that lists containers.

Either may be written inline, as a block scalar holding YAML, or in a file the
kustomization names, which is then read as a patch whatever its name (a JSON 6902
patch file is a plain list, nothing a scan would otherwise read).  An inline patch's
images are found at their place in the kustomization's text, so a rewrite edits them
there.
"""

from __future__ import annotations

import dataclasses

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .finding import Link
from .walk import KUSTOMIZE_PATCH
from .workloads import CONTAINER_LISTS, containers, kubernetes
from .yamldoc import YamlDoc, documents, get, text_of


def patches(document: YamlDoc, root: Node) -> list[str]:
    """Report the images of inline patches; return the patch files named."""
    files: list[str] = []
    inline: list[tuple[ScalarNode, str]] = []
    for key in ("patchesStrategicMerge", "patchesJson6902", "patches"):
        items = get(root, key)
        if not isinstance(items, SequenceNode):
            continue
        for index, item in enumerate(items.value):
            where = f"{key}[{index}]"
            if isinstance(item, ScalarNode):  # patchesStrategicMerge: a path or a patch
                value = text_of(item) or ""
                if "\n" in value or ":" in value:
                    inline.append((item, where))
                elif value:
                    files.append(value)
                continue
            path, patch = text_of(get(item, "path")), get(item, "patch")
            if path:
                files.append(path)
            if isinstance(patch, ScalarNode):
                inline.append((patch, where))
    for node, where in inline:
        embedded = _embedded(document, node)
        for part in documents(embedded.body):
            patch_document(embedded, part, where)
        document.findings += embedded.findings
    for path in files:
        if "://" not in path and "$" not in path:
            document.links.append(Link(path, KUSTOMIZE_PATCH))
    return files


def patch_document(document: YamlDoc, root: Node | None, where: str = "patch") -> None:
    """Images a patch adds: a list of JSON 6902 operations, or a strategic-merge object."""
    before = len(document.findings)
    if isinstance(root, SequenceNode):
        for index, operation in enumerate(root.value):
            _operation(document, operation, f"{where}[{index}]")
    elif isinstance(root, MappingNode):
        kind, api = text_of(get(root, "kind")), text_of(get(root, "apiVersion"))
        if kind and api:
            kubernetes(document, root, api, kind)
    document.findings[before:] = [
        dataclasses.replace(f, kind="kustomize") for f in document.findings[before:]
    ]


def _operation(document: YamlDoc, operation: Node, where: str) -> None:
    if text_of(get(operation, "op")) not in ("add", "replace"):
        return
    path = text_of(get(operation, "path")) or ""
    value = get(operation, "value")
    segments = [s for s in path.split("/") if s]
    last = segments[-1] if segments else ""
    parent = segments[-2] if len(segments) > 1 else ""
    where = f"{where} {path}"
    in_container = any(s in CONTAINER_LISTS or s in _OTHER_CONTAINERS for s in segments)
    if last == "image" and isinstance(value, ScalarNode) and in_container:
        document.image_scalar(value, "kustomize", where)
    elif (last in CONTAINER_LISTS or parent in CONTAINER_LISTS) and isinstance(value, MappingNode):
        document.image_scalar(get(value, "image"), "kustomize", f"{where}.image")
    elif value is not None:
        wrapper = MappingNode("tag:yaml.org,2002:map", [(_key(last), value)])
        for container, inner, _ in containers(wrapper, CONTAINER_LISTS, frozenset({"container"})):
            document.image_scalar(get(container, "image"), "kustomize", f"{where} {inner}.image")


#: container holders other than the pod spec's lists (Tekton steps, Argo templates)
_OTHER_CONTAINERS = frozenset({"steps", "sidecars", "stepTemplate", "container"})


def _key(name: str) -> ScalarNode:
    return ScalarNode("tag:yaml.org,2002:str", name)


def _embedded(document: YamlDoc, node: ScalarNode) -> YamlDoc:
    """The YAML inside a scalar, with its lines mapped into ``document``'s text when the
    text there is exactly the scalar's lines (a ``|`` block, or a one-line value)."""
    body = str(node.value)
    lines = body.split("\n")
    offsets: list[int | None] = [None] * len(lines)
    span = document.value_span(node) if "\n" not in body else None
    first_line = document.line(node) - 1
    if span is not None:
        offsets = [span[0]]
    elif node.style in ("|", ">"):
        first_line += 1  # a block's content starts on the line after its indicator
    if span is None and node.style == "|":
        first = node.start_mark.line + 1
        starts = [document.offset(first + i, 0) for i in range(len(lines))]
        indent = _indent(document.text, starts, lines)
        mapped = [
            None if start is None or not line else start + indent
            for start, line in zip(starts, lines, strict=True)
        ]
        if indent >= 0 and all(
            m is None or document.text[m : m + len(line)] == line
            for m, line in zip(mapped, lines, strict=True)
        ):
            offsets = mapped
    return YamlDoc(document.text, document.file, body, offsets, first_line)


def _indent(text: str, starts: list[int | None], lines: list[str]) -> int:
    """The block's indentation: where its first non-empty line's text begins."""
    for start, line in zip(starts, lines, strict=True):
        if line and start is not None:
            found = text.find(line, start)
            end_of_line = text.find("\n", start)
            if found == -1 or (end_of_line != -1 and found > end_of_line):
                return -1
            return found - start
    return -1
