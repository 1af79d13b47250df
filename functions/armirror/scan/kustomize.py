"""Kustomize: ``images`` entries, and the patches that add containers.

An ``images`` entry is reported as written (``name``/``newName``/``newTag``/``digest``);
which images it really produces depends on the resources it applies to, which the
tree-wide pass (:mod:`armirror.scan.overlays`) resolves across bases and overlays.

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
from dataclasses import dataclass

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .finding import Finding, Link, Slot
from .walk import KUSTOMIZE_PATCH
from .workloads import CONTAINER_LISTS, containers, kubernetes
from .yamldoc import YamlDoc, documents, get, tagless_or_full, text_of, third_party_name


@dataclass(frozen=True, slots=True)
class ImageEntry:
    """One ``images`` entry as written, and the finding that reports it."""

    name: str | None
    new_name: str | None
    new_tag: str | None
    digest: str | None
    finding: Finding


@dataclass(frozen=True, slots=True)
class Kustomization:
    """What the tree-wide pass needs of one kustomization file."""

    resources: tuple[str, ...]  # resources and (legacy) bases: files, directories or URLs
    components: tuple[str, ...]
    entries: tuple[ImageEntry, ...]
    patch_files: tuple[str, ...]
    #: the images its inline patches add, as written
    patch_images: tuple[str, ...]


def kustomization(document: YamlDoc, root: Node) -> None:
    entries = _image_entries(document, root)
    before = len(document.findings)
    patch_files = _patches(document, root)
    patch_images = tuple(f.image for f in document.findings[before:] if f.reference is not None)
    document.facts.append(
        Kustomization(
            tuple(_strings(root, "resources") + _strings(root, "bases")),
            tuple(_strings(root, "components")),
            tuple(entries),
            tuple(patch_files),
            patch_images,
        )
    )


def _strings(root: Node, key: str) -> list[str]:
    node = get(root, key)
    if not isinstance(node, SequenceNode):
        return []
    return [text for item in node.value if (text := text_of(item))]


def _image_entries(document: YamlDoc, root: Node) -> list[ImageEntry]:
    """Report each ``images`` entry as written; return them for the tree-wide pass."""
    entries: list[ImageEntry] = []
    images = get(root, "images")
    if not isinstance(images, SequenceNode):
        return entries
    for index, entry in enumerate(images.value):
        if not isinstance(entry, MappingNode):
            continue
        keys = {str(k.value): (k, v) for k, v in entry.value if isinstance(k, ScalarNode)}
        name, new_name = text_of(keys.get("name", (None, None))[1]), None
        new_name_node = keys.get("newName", (None, None))[1]
        new_name = text_of(new_name_node)
        tag = text_of(keys.get("newTag", (None, None))[1])
        digest_node = keys.get("digest", (None, None))[1]
        digest = text_of(digest_node)
        effective = new_name or name
        if not effective:
            continue
        before = len(document.findings)
        line = document.line(entry)
        where = f"images[{name or index}]"
        image = effective + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
        if "{{" in image or "$" in image:
            document.unresolved(line, "kustomize", image, where, "a template value")
            continue
        reference = tagless_or_full(effective, tag, digest)
        if reference is None:
            document.resolved(line, "kustomize", image, where, ((), None))
            entries.append(ImageEntry(name, new_name, tag, digest, document.findings[before]))
            continue
        slots: list[Slot] = []
        problem = None
        anchor_key, anchor_value = keys.get("newName") or keys.get("name") or (None, None)
        if new_name_node is not None and (span := document.value_span(new_name_node)):
            slots.append(Slot(span[0], span[1], "name"))
        elif new_name_node is None and anchor_value is not None and anchor_key is not None:
            insert = document.insert_after(entry, anchor_value, anchor_key, "newName", "name")
            if insert is None:
                problem = "newName is not a plain value"
            else:
                slots.append(insert)
        else:
            problem = "newName is not a plain value"
        if digest_node is not None and (span := document.value_span(digest_node)):
            slots.append(Slot(span[0], span[1], "digest"))
        elif digest_node is None and anchor_value is not None and anchor_key is not None:
            insert = document.insert_after(entry, anchor_value, anchor_key, "digest", "digest")
            if insert is not None:
                slots.append(insert)
        if problem is None and name and third_party_name(name):
            slots.extend(_alias(document, entry, name, digest_node is None))
        finding = Finding(
            document.file,
            line,
            "kustomize",
            image,
            reference,
            where,
            None,
            problem,
            slots=tuple(slots),
        )
        document.findings.append(finding)
        entries.append(ImageEntry(name, new_name, tag, digest, finding))
    return entries


def _alias(document: YamlDoc, entry: MappingNode, name: str, add_digest: bool) -> list[Slot]:
    """A twin of a kustomize ``images`` entry, for the mirrored ``name``, after it.

    Kustomize matches ``name`` exactly.  Once this tree's own resources (a base)
    are rewritten too, they name the mirror, and ``name: nginx`` would no longer
    match them: the overlay's tag would be lost.  So the entry stays, for
    resources that still say ``nginx``, and gains a twin with ``name: <mirror>``
    and the same ``newName`` (rewritten), ``newTag`` and ``digest``.  Block style
    with one-line values only; otherwise no twin is added.
    """
    if entry.flow_style:
        return []
    start = document.offset(entry.start_mark.line, entry.start_mark.column)
    if start is None:
        return []
    dash = document.text.rfind("-", 0, start)
    line_start = document.text.rfind("\n", 0, start) + 1
    if dash < line_start or document.text[dash + 1 : start].strip():
        return []
    key_column, dash_column = start - line_start, dash - line_start
    lines = []
    end = 0
    for key, value in entry.value:
        if not isinstance(key, ScalarNode) or not isinstance(value, ScalarNode):
            return []
        key_span, value_span = document.raw_span(key), document.raw_span(value)
        if key_span is None or value_span is None:
            return []
        first, last = key_span[0], value_span[1]
        if "\n" in document.text[first:last]:
            return []
        end = max(end, last)
        if key.value == "newName":
            lines.append("newName: {new_name}")
        elif key.value != "name":
            lines.append(document.text[first:last].replace("{", "{{").replace("}", "}}"))
    end = document.line_end(end)
    indent = document.newline + " " * key_column
    head = f"{document.newline}{' ' * dash_column}-{' ' * (key_column - dash_column - 1)}"
    template = head + "name: {name}" + "".join(indent + line for line in lines)
    slots = [Slot(end, end, "alias", template, tail=name)]
    if add_digest:  # written only when pinning, as in the entry itself
        slots.append(Slot(end, end, "digest", indent + "digest: {}"))
    return slots


def _patches(document: YamlDoc, root: Node) -> list[str]:
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
