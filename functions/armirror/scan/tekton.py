"""Tekton parameters: ``image: $(params.BUILDER_IMAGE)`` pulls the parameter's default.

CI task catalogs give images as parameters with defaults, so a task can be run with
another image; unless a run overrides it, the default is what is pulled, and it is
written once, in ``params``, where a rewrite edits it.  A parameter is looked up in the
``params`` of the enclosing Task spec or ``taskSpec``; ``$(params.x)``,
``$(params["x"])``, ``$(params['x'])`` and the v1alpha1 ``$(inputs.params.x)`` are
read.  A parameter without a default, or any other substitution (``$(context.…)``),
leaves the image unresolved.
"""

from __future__ import annotations

import re

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .expand import Piece, slots_for
from .yamldoc import YamlDoc, get, text_of

_PARAM = re.compile(
    r"\$\((?:inputs\.)?params(?:\.([A-Za-z0-9_.-]+)|\[(['\"])([A-Za-z0-9_.-]+)\2\])\)"
)


def param_defaults(node: Node, inherited: dict[str, Node]) -> dict[str, Node]:
    """``inherited`` plus the defaults of mapping ``node``'s ``params`` (or, in the
    v1alpha1 API, ``inputs.params``)."""
    if not isinstance(node, MappingNode):
        return inherited
    defaults = inherited
    for params in (get(node, "params"), get(get(node, "inputs"), "params")):
        if not isinstance(params, SequenceNode):
            continue
        defaults = dict(defaults)
        for param in params.value:
            name, default = text_of(get(param, "name")), get(param, "default")
            if name and isinstance(default, ScalarNode):
                defaults[name] = default
    return defaults


def image(
    document: YamlDoc, node: Node | None, kind: str, where: str, defaults: dict[str, Node]
) -> None:
    """Report a step's image, its ``$(params.…)`` replaced by their defaults."""
    value = text_of(node)
    if node is None or value is None or "$(" not in value:
        document.image_scalar(node, kind, where)
        return
    line = document.line(node)
    span = document.value_span(node)
    pieces: list[Piece] = []
    position = 0
    for match in _PARAM.finditer(value):
        if match.start() > position:
            literal = (span[0] + position, span[0] + match.start()) if span else None
            pieces.append(Piece(value[position : match.start()], literal))
        name = match.group(1) or match.group(3)
        default = defaults.get(name)
        text = text_of(default)
        if default is None or text is None:
            document.unresolved(line, kind, value, where, f"$(params.{name}) has no default")
            return
        pieces.append(Piece(text, document.value_span(default)))
        position = match.end()
    if position < len(value):
        pieces.append(Piece(value[position:], (span[0] + position, span[1]) if span else None))
    result = "".join(piece.text for piece in pieces)
    if "$(" in result or not result:
        document.unresolved(line, kind, value, where, "a Tekton substitution")
        return
    nonempty = tuple(piece for piece in pieces if piece.text)
    document.resolved(line, kind, result, where, slots_for(nonempty, result), expression=value)
