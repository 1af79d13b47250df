"""Image references in YAML and JSON: Kubernetes, Cloud Run, compose, Cloud Build,
kustomize and Helm.

Files are composed (not constructed) with libyaml through PyYAML, which keeps each
node's line and column.  ruamel.yaml's round-trip composer gives the same positions but
takes about 3.8 ms for a two-document manifest where libyaml takes 0.12 ms, and the scan
has to read thousands of files a second.  A node's position becomes a character span
of the text as read; a span is only offered for rewriting when the text there is exactly
the value the parser saw (a plain or quoted scalar without escapes), so a span can never
point at the wrong bytes.

Only documents of a known shape are read: an ``image:`` key in a ConfigMap, a CRD or
any other unrelated document is not an image.  A value that is a template (``{{ }}``, or
``${VAR}`` without a default) is reported as unresolved, never as an image.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from armirror.reference import Reference

from .expand import Span, Var, expand, literal_var, slots_for, try_reference
from .finding import Finding, Slot
from .limits import check_findings, check_time, count_alias_nodes

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_FREE_FORM_KEYS = ("annotations", "labels", "env", "nodeselector", "selector", "data")
_HOSTISH = re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]+)?$")

#: kinds whose pod spec is not at spec.template.spec
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Revision": ("spec",),
}
_DEFAULT_POD_SPEC_PATH = ("spec", "template", "spec")
_CLOUD_RUN_JOB_PATH = ("spec", "template", "spec", "template", "spec")
_CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")


def get(node: Node | None, key: str) -> Node | None:
    """``node[key]`` for a mapping node (following ``<<`` merge keys), else None."""
    if not isinstance(node, MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key and k.tag != _MERGE:
            return v
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.tag == _MERGE:
            targets = v.value if isinstance(v, SequenceNode) else [v]
            for target in targets:
                found = get(target, key)
                if found is not None:
                    return found
    return None


def text_of(node: Node | None) -> str | None:
    """A scalar's text as written (``1.20`` stays ``1.20``); None for null and non-scalars."""
    if isinstance(node, ScalarNode) and node.tag != _NULL:
        return str(node.value)
    return None


def literal_registry(template: str) -> str | None:
    """The registry a template names literally: ``gcr.io`` in ``gcr.io/$PROJECT_ID/app``."""
    first, sep, _ = template.partition("/")
    if sep and _HOSTISH.match(first) and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


class _Document:
    """Positions of nodes in one file's text."""

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.bom = 1 if text.startswith("\ufeff") else 0
        body = text[self.bom :]
        self.body = body
        self.line_starts = [0, *(m.end() for m in _LINE_BREAK.finditer(body))]
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.findings: list[Finding] = []

    def offset(self, line: int, column: int) -> int:
        return self.bom + self.line_starts[line] + column

    def raw_span(self, node: Node) -> Span:
        start, end = node.start_mark, node.end_mark
        return self.offset(start.line, start.column), self.offset(end.line, end.column)

    def value_span(self, node: Node) -> Span | None:
        """Span of a scalar's value (inside any quotes), if the text there is the value."""
        if not isinstance(node, ScalarNode):
            return None
        start, end = self.raw_span(node)
        if node.style in ("|", ">"):
            # a one-line block scalar (``image: >-`` then the value on the next line)
            value = str(node.value).rstrip("\n")
            body_start = self.text.find("\n", start, end)
            if not value or "\n" in value or body_start == -1:
                return None
            found = self.text.find(value, body_start, end)
            if found == -1 or self.text[body_start:found].strip():
                return None
            return found, found + len(value)
        if node.style in ("'", '"'):
            start, end = start + 1, end - 1
        if end < start or self.text[start:end] != node.value:
            return None
        return start, end

    def line_end(self, position: int) -> int:
        """The end of ``position``'s line (before ``\r\n``) when only blanks or a comment
        follow it there, else ``position``: where an inserted line goes after a value."""
        found = self.text.find("\n", position)
        end = len(self.text) if found == -1 else found
        if self.text[end - 1 : end] == "\r" and end > position:
            end -= 1
        rest = self.text[position:end].strip()
        return end if not rest or rest.startswith("#") else position

    def line(self, node: Node) -> int:
        return int(node.start_mark.line) + 1

    # -- findings --------------------------------------------------------------------

    def image_scalar(
        self,
        node: Node | None,
        kind: str,
        where: str,
        scope: Mapping[str, Var] | None = None,
        dollar_dollar: bool = False,
    ) -> None:
        value = text_of(node)
        if node is None or not value or not value.strip():
            return
        line = self.line(node)
        if "{{" in value:
            self.unresolved(line, kind, value, where, "a template value")
            return
        span = self.value_span(node)
        if "$" in value:
            base = span[0] if span else 0

            def locate(i: int, j: int) -> Span | None:
                return (base + i, base + j) if span else None

            result = expand(value, locate, scope or {}, dollar_dollar=dollar_dollar)
            if result.value is None:
                self.unresolved(line, kind, value, where, result.problem or "a template value")
                return
            self.resolved(
                line,
                kind,
                result.value,
                where,
                slots_for(result.pieces, result.value),
                expression=value,
            )
            return
        slots = (
            ((Slot(span[0], span[1], "ref"),), None)
            if span
            else ((), "written with escapes or over several lines; edit it by hand")
        )
        self.resolved(line, kind, value, where, slots)

    def resolved(
        self,
        line: int,
        kind: str,
        value: str,
        where: str,
        slots: tuple[tuple[Slot, ...], str | None],
        expression: str | None = None,
        reference: Reference | None = None,
    ) -> None:
        problem: str | None
        if reference is None:
            reference, bad = try_reference(value)
            if reference is None:
                self.findings.append(
                    Finding(
                        self.file,
                        line,
                        kind,
                        value,
                        None,
                        where,
                        expression,
                        f"not a valid reference: {bad}",
                    )
                )
                return
        found_slots, problem = slots
        self.findings.append(
            Finding(
                self.file,
                line,
                kind,
                value,
                reference,
                where,
                expression,
                problem,
                slots=found_slots,
            )
        )

    def unresolved(self, line: int, kind: str, value: str, where: str, problem: str) -> None:
        self.findings.append(
            Finding(
                self.file,
                line,
                kind,
                value,
                None,
                where,
                None,
                problem,
                literal_registry=literal_registry(value),
            )
        )

    # -- shapes ----------------------------------------------------------------------

    def kubernetes(self, doc: Node, api: str, kind: str) -> None:
        if kind.endswith("List"):
            items = get(doc, "items")
            if isinstance(items, SequenceNode):
                for item in items.value:
                    item_kind, item_api = (
                        text_of(get(item, "kind")),
                        text_of(get(item, "apiVersion")),
                    )
                    if item_kind and item_api:
                        self.kubernetes(item, item_api, item_kind)
            return
        cloudrun = api.startswith(("serving.knative.dev/", "run.googleapis.com/"))
        path = _POD_SPEC_PATHS.get(kind, _DEFAULT_POD_SPEC_PATH)
        if kind == "Job" and api.startswith("run.googleapis.com/"):
            path = _CLOUD_RUN_JOB_PATH
        spec: Node | None = doc
        for key in path:
            spec = get(spec, key)
        if not isinstance(spec, MappingNode):
            return
        name = text_of(get(get(doc, "metadata"), "name")) or "?"
        label = "cloudrun" if cloudrun else "kubernetes"
        for field in _CONTAINER_FIELDS:
            containers = get(spec, field)
            if not isinstance(containers, SequenceNode):
                continue
            for index, container in enumerate(containers.value):
                cname = text_of(get(container, "name")) or str(index)
                where = f"{kind}/{name} {'.'.join(path)}.{field}[{cname}].image"
                self.image_scalar(get(container, "image"), label, where)

    def compose(self, doc: Node) -> None:
        services = get(doc, "services")
        if not isinstance(services, MappingNode):
            return
        for key, service in services.value:
            where = f"services.{key.value}.image"
            self.image_scalar(get(service, "image"), "compose", where, dollar_dollar=True)

    def cloudbuild(self, doc: Node) -> None:
        scope: dict[str, Var] = {}
        substitutions = get(doc, "substitutions")
        if isinstance(substitutions, MappingNode):
            for key, value in substitutions.value:
                text = text_of(value)
                if isinstance(key, ScalarNode) and text is not None:
                    scope[str(key.value)] = literal_var(text, self.value_span(value))
        steps = get(doc, "steps")
        if isinstance(steps, SequenceNode):
            for index, step in enumerate(steps.value):
                label = text_of(get(step, "id")) or str(index)
                self.image_scalar(
                    get(step, "name"),
                    "cloudbuild",
                    f"steps[{label}].name",
                    scope,
                    dollar_dollar=True,
                )
        images = get(doc, "images")
        if isinstance(images, SequenceNode):
            for index, image in enumerate(images.value):
                self.image_scalar(
                    image, "cloudbuild", f"images[{index}]", scope, dollar_dollar=True
                )

    def _insert_after(
        self, entry: MappingNode, after: Node, key_node: Node, key: str, part: str
    ) -> Slot:
        """An insertion of ``key: value`` beside ``after`` in ``entry``, in its style."""
        end = self.raw_span(after)[1]
        if entry.flow_style:
            return Slot(end, end, part, f", {key}: {{}}")
        end = self.line_end(end)
        indent = " " * int(key_node.start_mark.column)
        return Slot(end, end, part, f"{self.newline}{indent}{key}: {{}}")

    def kustomize(self, doc: Node) -> None:
        images = get(doc, "images")
        if not isinstance(images, SequenceNode):
            return
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
            line = self.line(entry)
            where = f"images[{name or index}]"
            image = effective + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
            if "{{" in image or "$" in image:
                self.unresolved(line, "kustomize", image, where, "a template value")
                continue
            reference = _tagless_or_full(effective, tag, digest)
            if reference is None:
                self.resolved(line, "kustomize", image, where, ((), None))
                continue
            slots: list[Slot] = []
            problem = None
            anchor_key, anchor_value = keys.get("newName") or keys.get("name") or (None, None)
            if new_name_node is not None and (span := self.value_span(new_name_node)):
                slots.append(Slot(span[0], span[1], "name"))
            elif new_name_node is None and anchor_value is not None and anchor_key is not None:
                slots.append(self._insert_after(entry, anchor_value, anchor_key, "newName", "name"))
            else:
                problem = "newName is not a plain value"
            if digest_node is not None and (span := self.value_span(digest_node)):
                slots.append(Slot(span[0], span[1], "digest"))
            elif digest_node is None and anchor_value is not None and anchor_key is not None:
                slots.append(
                    self._insert_after(entry, anchor_value, anchor_key, "digest", "digest")
                )
            if problem is None and name and _third_party(name):
                slots.extend(self._kustomize_alias(entry, name, digest_node is None))
            self.findings.append(
                Finding(
                    self.file,
                    line,
                    "kustomize",
                    image,
                    reference,
                    where,
                    None,
                    problem,
                    slots=tuple(slots),
                )
            )

    def _kustomize_alias(self, entry: MappingNode, name: str, add_digest: bool) -> list[Slot]:
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
        start = self.offset(entry.start_mark.line, entry.start_mark.column)
        dash = self.text.rfind("-", 0, start)
        line_start = self.text.rfind("\n", 0, start) + 1
        if dash < line_start or self.text[dash + 1 : start].strip():
            return []
        key_column, dash_column = start - line_start, dash - line_start
        lines = []
        end = 0
        for key, value in entry.value:
            if not isinstance(key, ScalarNode) or not isinstance(value, ScalarNode):
                return []
            first, last = self.raw_span(key)[0], self.raw_span(value)[1]
            if "\n" in self.text[first:last]:
                return []
            end = max(end, last)
            if key.value == "newName":
                lines.append("newName: {new_name}")
            elif key.value != "name":
                lines.append(self.text[first:last].replace("{", "{{").replace("}", "}}"))
        end = self.line_end(end)
        indent = self.newline + " " * key_column
        head = f"{self.newline}{' ' * dash_column}-{' ' * (key_column - dash_column - 1)}"
        template = head + "name: {name}" + "".join(indent + line for line in lines)
        slots = [Slot(end, end, "alias", template, tail=name)]
        if add_digest:  # written only when pinning, as in the entry itself
            slots.append(Slot(end, end, "digest", indent + "digest: {}"))
        return slots

    def helm(self, node: Node, path: str, app_version: str | None) -> None:
        """``image:`` strings and registry/repository/tag/digest maps anywhere in values.

        Annotations, labels, environment and node selectors hold free-form strings, not
        images.  Only the top-level ``image`` map defaults its tag to the chart's
        appVersion, as chart templates conventionally do.
        """
        check_time()
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
                        self.image_scalar(value, "helm", child)
                        continue
                    if isinstance(value, MappingNode) and get(value, "repository") is not None:
                        version = app_version if child == "image" else None
                        self.helm_map(value, child, version, self.line(key))
                        continue
                self.helm(value, child, app_version)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                self.helm(item, f"{path}[{index}]", app_version)

    def helm_map(self, node: MappingNode, where: str, app_version: str | None, line: int) -> None:
        registry_node, repository_node = get(node, "registry"), get(node, "repository")
        tag_node, digest_node = get(node, "tag"), get(node, "digest")
        registry, repository = text_of(registry_node), text_of(repository_node)
        tag, digest = text_of(tag_node) or None, text_of(digest_node) or None
        if not repository:
            return
        name = f"{registry}/{repository}" if registry else repository
        shown = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
        if any("{{" in (t or "") or "$" in (t or "") for t in (registry, repository, tag, digest)):
            self.unresolved(line, "helm", shown, where, "a template value")
            return
        tag = tag or app_version
        image = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
        reference = _tagless_or_full(name, tag, digest)
        if reference is None:
            self.resolved(line, "helm", image, where, ((), None))
            return
        assert repository_node is not None
        slots: list[Slot] = []
        problem = None
        repository_span = self.value_span(repository_node)
        registry_span = (
            self.value_span(registry_node)
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
            if span := self.value_span(digest_node):
                slots.append(Slot(*span, "digest"))
        elif tag_node is not None and text_of(tag_node) and (span := self.value_span(tag_node)):
            slots.append(Slot(*span, "tag+digest"))
        self.findings.append(
            Finding(
                self.file, line, "helm", image, reference, where, None, problem, slots=tuple(slots)
            )
        )


def _third_party(name: str) -> bool:
    reference, _ = try_reference(name)
    return reference is not None and reference.third_party


def _tagless_or_full(name: str, tag: str | None, digest: str | None) -> Reference | None:
    """The reference name:tag@digest, or the bare name when neither is given."""
    text = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    reference, _ = try_reference(text)
    if reference is None or tag or digest:
        return reference
    return Reference(reference.registry, reference.repository)


def _documents(body: str) -> Iterator[Node | None]:
    yield from yaml.compose_all(body, Loader=_Loader)


def scan_yaml(
    text: str, file: str, hint: str | None = None, app_version: str | None = None
) -> tuple[list[Finding], str | None]:
    """Findings in a YAML or JSON file, and the parser's message if it is not valid.

    ``hint`` comes from the file name: ``compose``, ``cloudbuild``, ``kustomize`` or
    ``helm`` (a values file); without one, each document's own shape decides.  Findings
    of the documents before an invalid one are kept.
    """
    document = _Document(text, file)
    try:
        for doc in _documents(document.body):
            check_time()
            if not isinstance(doc, MappingNode):
                continue
            count_alias_nodes(doc)
            kind, api = text_of(get(doc, "kind")), text_of(get(doc, "apiVersion"))
            if kind == "Kustomization" or hint == "kustomize":
                document.kustomize(doc)
            elif kind and api:
                document.kubernetes(doc, api, kind)
            elif hint == "helm":
                document.helm(doc, "", app_version)
            elif hint == "compose" or (
                hint is None and isinstance(get(doc, "services"), MappingNode)
            ):
                document.compose(doc)
            elif hint == "cloudbuild" or (hint is None and _looks_like_cloudbuild(doc)):
                document.cloudbuild(doc)
            check_findings(len(document.findings))
    except yaml.YAMLError as exc:
        return document.findings, _yaml_message(exc)
    return document.findings, None


def _looks_like_cloudbuild(doc: MappingNode) -> bool:
    steps = get(doc, "steps")
    return (
        isinstance(steps, SequenceNode)
        and bool(steps.value)
        and all(isinstance(text_of(get(step, "name")), str) for step in steps.value)
    )


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"invalid YAML: {where}{problem}" + (f" ({context})" if context else "")


# ``(.*)`` and a strip, not ``(.*?)[ \t]*$``: the lazy form backtracks quadratically on
# a long line of blanks.
_TEMPLATE_IMAGE = re.compile(r"^([ \t]*(?:-[ \t]+)?image:[ \t]*)(.*)$")
_COMMENT = re.compile(r"[ \t]#")


def scan_chart_template(text: str, file: str) -> list[Finding]:
    """``image:`` lines of a Helm chart template (not YAML until rendered).

    A ``{{ }}`` value is unresolved (its image comes from values, which are scanned);
    a literal value is an image.
    """
    document = _Document(text, file)
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
        value_start = document.bom + start + match.start(2)
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            raw, value_start = raw[1:-1], value_start + 1
        if "{{" in raw or "$" in raw:
            document.unresolved(number, "helm", raw, "template image:", "a template value")
            continue
        span = (value_start, value_start + len(raw))
        document.resolved(number, "helm", raw, "template image:", ((Slot(*span, "ref"),), None))
        check_findings(len(document.findings))
    return document.findings
