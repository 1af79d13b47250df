"""A YAML file's nodes and where they are in its text: what every YAML scanner shares.

Files are composed (not constructed) with libyaml through PyYAML, which keeps each
node's line and column.  ruamel.yaml's round-trip composer gives the same positions but
takes about 3.8 ms for a two-document manifest where libyaml takes 0.12 ms, and the scan
has to read thousands of files a second.  A node's position becomes a character span
of the text as read; a span is only offered for rewriting when the text there is exactly
the value the parser saw (a plain or quoted scalar without escapes), so a span can never
point at the wrong bytes.  A value that is a template (``{{ }}``, or ``${VAR}`` without
a default) is reported as unresolved, never as an image.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import ClassVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from armirror.reference import Reference

from .expand import Span, Var, expand, slots_for, try_reference
from .finding import Finding, Link, Slot

_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LOADER(_BASE_LOADER):  # type: ignore[misc,valid-type]
    """libyaml's composer with only the tags the scanners look at: null (a missing
    value) and ``<<`` (a merge key).  PyYAML resolves every scalar's implicit tag in
    Python; with the YAML 1.1 set (ints, floats, booleans, timestamps…) that was a
    quarter of a scan's time on large CRD bundles, for tags nobody reads."""

    yaml_implicit_resolvers: ClassVar[dict[str | None, list[tuple[str, object]]]] = {}


LOADER.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
LOADER.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"])
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_HOSTISH = re.compile(r"^[A-Za-z0-9.-]+(?::[0-9]+)?$")


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


class YamlDoc:
    """Positions of nodes in one file's text, and the findings made in it.

    ``body`` is what the parser reads: the text after a BOM, or the content of a block
    scalar that holds YAML of its own (a kustomize inline patch).  ``line_offsets`` maps
    each body line to the offset of its first character in ``text``, and ``first_line``
    is the line of ``text`` the body starts on; a body line that cannot be mapped
    (None) gives nodes on it no span, so they are never rewritten.
    """

    def __init__(
        self,
        text: str,
        file: str,
        body: str | None = None,
        line_offsets: list[int | None] | None = None,
        first_line: int = 0,
    ) -> None:
        self.text = text
        self.file = file
        self.bom = 1 if text.startswith("\ufeff") else 0
        self.body = text[self.bom :] if body is None else body
        self._line_starts: list[int] | None = None
        self._line_offsets = line_offsets  # None: the body is the text (after a BOM)
        self.first_line = first_line  # the line of ``text`` the body's first line is on
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.findings: list[Finding] = []
        self.links: list[Link] = []
        self.facts: list[object] = []

    @property
    def line_starts(self) -> list[int]:
        """Where each body line starts (computed on first use: most files hold nothing)."""
        if self._line_starts is None:
            self._line_starts = [0, *(m.end() for m in _LINE_BREAK.finditer(self.body))]
        return self._line_starts

    @property
    def line_offsets(self) -> list[int | None]:
        if self._line_offsets is None:
            self._line_offsets = [self.bom + start for start in self.line_starts]
        return self._line_offsets

    def offset(self, line: int, column: int) -> int | None:
        offsets = self.line_offsets
        start = offsets[line] if line < len(offsets) else None
        return None if start is None else start + column

    def raw_span(self, node: Node) -> Span | None:
        start = self.offset(node.start_mark.line, node.start_mark.column)
        end = self.offset(node.end_mark.line, node.end_mark.column)
        if start is None or end is None or end < start:
            return None
        return start, end

    def value_span(self, node: Node) -> Span | None:
        """Span of a scalar's value (inside any quotes), if the text there is the value."""
        if not isinstance(node, ScalarNode):
            return None
        span = self.raw_span(node)
        if span is None:
            return None
        start, end = span
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
        """The 1-based line of ``text`` that ``node`` starts on."""
        return self.first_line + int(node.start_mark.line) + 1

    # -- findings --------------------------------------------------------------------

    def image_scalar(
        self,
        node: Node | None,
        kind: str,
        where: str,
        scope: Mapping[str, Var] | None = None,
        dollar_dollar: bool = False,
        built: bool = False,
    ) -> None:
        """Report the image a scalar names (``built``: the name of an image built here)."""
        value = text_of(node)
        if node is None or not value or not value.strip():
            return
        line = self.line(node)
        if "{{" in value:
            self.unresolved(line, kind, value, where, "a template value", built)
            return
        span = self.value_span(node)
        if "$" in value:
            base = span[0] if span else 0

            def locate(i: int, j: int) -> Span | None:
                return (base + i, base + j) if span else None

            result = expand(value, locate, scope or {}, dollar_dollar=dollar_dollar)
            if result.value is None:
                problem = result.problem or "a template value"
                self.unresolved(line, kind, value, where, problem, built)
                return
            self.resolved(
                line,
                kind,
                result.value,
                where,
                slots_for(result.pieces, result.value),
                expression=value,
                built=built,
            )
            return
        slots = (
            ((Slot(span[0], span[1], "ref"),), None)
            if span
            else ((), "written with escapes or over several lines; edit it by hand")
        )
        self.resolved(line, kind, value, where, slots, built=built)

    def resolved(
        self,
        line: int,
        kind: str,
        value: str,
        where: str,
        slots: tuple[tuple[Slot, ...], str | None],
        expression: str | None = None,
        reference: Reference | None = None,
        built: bool = False,
        file: str | None = None,
    ) -> None:
        """Report ``value`` as an image (as a problem when it is not a valid reference);
        ``file`` when it is written in another file than this one (a compose ``.env``)."""
        if reference is None:
            reference, bad = try_reference(value)
            if reference is None:
                slots = ((), f"not a valid reference: {bad}")
        found_slots, problem = slots
        self.findings.append(
            Finding(
                file or self.file,
                line,
                kind,
                value,
                reference,
                where,
                expression,
                problem,
                slots=found_slots,
                built=built,
            )
        )

    def unresolved(
        self, line: int, kind: str, value: str, where: str, problem: str, built: bool = False
    ) -> None:
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
                built=built,
            )
        )

    # -- shapes ----------------------------------------------------------------------

    def insert_after(
        self, entry: MappingNode, after: Node, key_node: Node, key: str, part: str
    ) -> Slot | None:
        """An insertion of ``key: value`` beside ``after`` in ``entry``, in its style."""
        span = self.raw_span(after)
        if span is None:
            return None
        end = span[1]
        if entry.flow_style:
            return Slot(end, end, part, f", {key}: {{}}")
        end = self.line_end(end)
        indent = " " * int(key_node.start_mark.column)
        return Slot(end, end, part, f"{self.newline}{indent}{key}: {{}}")


def third_party_name(name: str) -> bool:
    reference, _ = try_reference(name)
    return reference is not None and reference.third_party


def tagless_or_full(name: str, tag: str | None, digest: str | None) -> Reference | None:
    """The reference name:tag@digest, or the bare name when neither is given."""
    text = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    reference, _ = try_reference(text)
    if reference is None or tag or digest:
        return reference
    return Reference(reference.registry, reference.repository)


def documents(body: str) -> Iterator[Node | None]:
    yield from yaml.compose_all(body, Loader=LOADER)


def yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"invalid YAML: {where}{problem}" + (f" ({context})" if context else "")
