"""Images in compose files: ``services.*.image``, the legacy (v1) top-level services,
the ``.env`` that fills their variables, and the Dockerfiles their ``build:`` names.

A service with a ``build:`` section builds its image; its ``image:`` is the name the
build is tagged with, not a pull, so it is reported as built and never rewritten.
"""

from __future__ import annotations

import posixpath
import re

from yaml.nodes import MappingNode, Node, ScalarNode

from .dotenv import DotEnv
from .expand import Piece, Var
from .finding import Link, Slot
from .walk import DOCKERFILE
from .yamldoc import YamlDoc, get, text_of

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
#: a value that is one variable and nothing else: ``${X}``, ``$X``, ``${X:-default}``
_ONE_VARIABLE = re.compile(rf"^\$(?:\{{({_NAME})(?::?[-?][^}}]*)?\}}|({_NAME}))$")


def services(root: MappingNode, legacy: bool) -> list[tuple[str, Node]]:
    """``(name, service)`` pairs: under ``services:``, or (``legacy``, compose v1) the
    top-level keys whose values look like services (they name an image or a build)."""
    found = get(root, "services")
    if isinstance(found, MappingNode):
        pairs = found.value
    elif legacy and found is None:
        pairs = [
            (key, value)
            for key, value in root.value
            if get(value, "image") is not None or get(value, "build") is not None
        ]
    else:
        return []
    return [(str(key.value), value) for key, value in pairs if isinstance(key, ScalarNode)]


def compose(document: YamlDoc, root: MappingNode, legacy: bool, dotenv: DotEnv | None) -> None:
    """Report each service's image; link the Dockerfiles that ``build:`` sections name."""
    scope = _scope(dotenv)
    prefix = "" if get(root, "services") is None else "services."
    for name, service in services(root, legacy):
        where = f"{prefix}{name}.image"
        build = get(service, "build")
        built = build is not None and (text_of(build) is not None or isinstance(build, MappingNode))
        if built and build is not None:
            _link_dockerfile(document, build)
        image = get(service, "image")
        value = text_of(image)
        match = _ONE_VARIABLE.match(value or "")
        variable = (match.group(1) or match.group(2)) if match else None
        if dotenv is not None and variable in dotenv.values and image is not None:
            env = dotenv.values[variable]
            if env.value and "$" not in env.value:
                slots = (
                    ((Slot(*env.span, "ref"),), None)
                    if env.span
                    else ((), "written with escapes in .env; edit it by hand")
                )
                document.resolved(
                    env.line,
                    "compose",
                    env.value,
                    f"{where} (${{{variable}}} in .env)",
                    slots,
                    built=built,
                    file=dotenv.rel,
                )
                continue
        document.image_scalar(image, "compose", where, scope, dollar_dollar=True, built=built)


def _scope(dotenv: DotEnv | None) -> dict[str, Var]:
    """Variables from .env; their text lives in another file, so it is never edited here."""
    if dotenv is None:
        return {}
    return {name: Var(v.value, (Piece(v.value, None),)) for name, v in dotenv.values.items()}


def _link_dockerfile(document: YamlDoc, build: Node) -> None:
    context, dockerfile = text_of(build), None
    if isinstance(build, MappingNode):
        context, dockerfile = text_of(get(build, "context")), text_of(get(build, "dockerfile"))
    context = context or "."
    if "://" in context or context.startswith("git@"):
        return  # a remote context: its Dockerfile is not in this tree
    path = posixpath.join(context, dockerfile or "Dockerfile")
    if "$" not in path:
        document.links.append(Link(posixpath.normpath(path), DOCKERFILE))
