"""Kustomize: a kustomization's ``images`` entries, and what it names (resources, patches).

An ``images`` entry is reported as written (``name``/``newName``/``newTag``/``digest``);
which images it really produces depends on the resources it applies to, which the
tree-wide pass (:mod:`armirror.scan.overlays`) resolves across bases and overlays.

Patches add containers whose images appear nowhere else: :mod:`.kustomize_patches`.
"""

from __future__ import annotations

from dataclasses import dataclass

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .finding import Finding, Slot
from .kustomize_patches import patches
from .yamldoc import YamlDoc, get, tagless_or_full, text_of, third_party_name


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
    patch_files = patches(document, root)
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
