"""Images in Helm charts: values files, and the templates Helm renders.

In values, ``image:`` strings and ``image:`` maps (``registry``/``repository``/``tag``/
``digest``) are images wherever they are.  A template is not YAML until it is rendered,
so its ``image:`` lines are read as lines: a literal value is an image, a ``{{ }}`` one
is unresolved (its image comes from values, which are scanned).  A YAML file that does
not parse because it holds ``{{ }}`` is read the same way (a Go template outside a chart).
"""

from __future__ import annotations

import re

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .finding import Finding, Slot
from .limits import check_findings, check_time
from .yamldoc import YamlDoc, get, tagless_or_full, text_of

_FREE_FORM_KEYS = ("annotations", "labels", "env", "nodeselector", "selector", "data")


def values(document: YamlDoc, root: Node, app_version: str | None) -> None:
    """``image:`` strings and registry/repository/tag/digest maps anywhere in values.

    Annotations, labels, environment and node selectors hold free-form strings, not
    images.  Only the top-level ``image`` map defaults its tag to the chart's
    appVersion, as chart templates conventionally do.  Iterative: values may nest a
    thousand deep.
    """
    before = len(document.findings)
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack:
        check_time()
        node, path = stack.pop()
        children: list[tuple[Node, str]] = []
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if not isinstance(key, ScalarNode):
                    continue
                name = str(key.value)
                if name.lower().endswith(_FREE_FORM_KEYS):
                    continue
                child = f"{path}.{name}" if path else name
                if name == "image" or name.endswith("Image"):
                    if isinstance(value, ScalarNode):
                        document.image_scalar(value, "helm", child)
                        continue
                    if isinstance(value, MappingNode) and get(value, "repository") is not None:
                        version = app_version if child == "image" else None
                        _helm_map(document, value, child, version, document.line(key))
                        continue
                children.append((value, child))
        elif isinstance(node, SequenceNode):
            children = [(item, f"{path}[{index}]") for index, item in enumerate(node.value)]
        stack.extend(reversed(children))
    document.findings[before:] = sorted(document.findings[before:], key=lambda f: f.line)


def _helm_map(
    document: YamlDoc, node: MappingNode, where: str, app_version: str | None, line: int
) -> None:
    registry_node, repository_node = get(node, "registry"), get(node, "repository")
    tag_node, digest_node = get(node, "tag"), get(node, "digest")
    registry, repository = text_of(registry_node), text_of(repository_node)
    tag, digest = text_of(tag_node) or None, text_of(digest_node) or None
    if not repository:
        return
    name = f"{registry}/{repository}" if registry else repository
    shown = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    if any("{{" in (t or "") or "$" in (t or "") for t in (registry, repository, tag, digest)):
        document.unresolved(line, "helm", shown, where, "a template value")
        return
    tag = tag or app_version
    image = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    reference = tagless_or_full(name, tag, digest)
    if reference is None:
        document.resolved(line, "helm", image, where, ((), None))
        return
    assert repository_node is not None
    slots: list[Slot] = []
    problem = None
    repository_span = document.value_span(repository_node)
    registry_span = (
        document.value_span(registry_node)
        if registry_node is not None and text_of(registry_node) is not None
        else None
    )
    if registry_span and repository_span:
        slots += [Slot(*registry_span, "registry"), Slot(*repository_span, "repository")]
    elif text_of(registry_node) is None and repository_span:
        slots.append(Slot(*repository_span, "name"))
    else:
        problem = "registry or repository is not a plain value"
    if digest_node is not None and text_of(digest_node) is not None:
        if span := document.value_span(digest_node):
            slots.append(Slot(*span, "digest"))
    elif tag_node is not None and text_of(tag_node) and (span := document.value_span(tag_node)):
        slots.append(Slot(*span, "tag+digest"))
    document.findings.append(
        Finding(
            document.file, line, "helm", image, reference, where, None, problem, slots=tuple(slots)
        )
    )


# ``(.*)`` and a strip, not ``(.*?)[ \t]*$``: the lazy form backtracks quadratically on
# a long line of blanks.
_TEMPLATE_IMAGE = re.compile(r"^([ \t]*(?:-[ \t]+)?image:[ \t]*)(.*)$")
_COMMENT = re.compile(r"[ \t]#")


def scan_chart_template(text: str, file: str, kind: str = "helm") -> list[Finding]:
    """``image:`` lines of a Helm chart template (not YAML until rendered).

    A ``{{ }}`` value is unresolved (its image comes from values, which are scanned);
    a literal value is an image.
    """
    document = YamlDoc(text, file)
    for number, start in enumerate(document.line_starts, 1):
        end = document.line_starts[number] if number < len(document.line_starts) else len(text)
        line = document.body[start:end].rstrip("\r\n")
        check_time()
        match = _TEMPLATE_IMAGE.match(line)
        raw = match.group(2).rstrip(" \t") if match else ""
        if match is None or not raw or raw.startswith("#"):
            continue
        comment = _COMMENT.search(raw) if "{{" not in raw else None
        if comment is not None:
            raw = raw[: comment.start()].rstrip(" \t")
        value_start = (document.line_offsets[number - 1] or 0) + match.start(2)
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            raw, value_start = raw[1:-1], value_start + 1
        if "{{" in raw or "$" in raw:
            document.unresolved(number, kind, raw, "template image:", "a template value")
            continue
        span = (value_start, value_start + len(raw))
        document.resolved(number, kind, raw, "template image:", ((Slot(*span, "ref"),), None))
        check_findings(len(document.findings))
    return document.findings
