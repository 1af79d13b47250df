"""Images in Cloud Build configs: each step's builder (``steps[].name``), the ``images``
it pushes, and the Dockerfiles its ``docker build -f`` (or kaniko ``--dockerfile``)
names, whatever they are called.  ``substitutions`` fill ``$_VAR`` s.
"""

from __future__ import annotations

import posixpath
import re
import shlex

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .expand import Var, literal_var
from .finding import Link
from .walk import DOCKERFILE
from .yamldoc import YamlDoc, get, text_of

#: ``docker build ... -f PATH`` inside a shell script given to ``bash -c``
_SCRIPTED_BUILD = re.compile(
    r"docker\s+(?:buildx\s+)?build\b[^\n;&|]*?\s(?:-f|--file)(?:=|\s+)(\S+)"
)


def cloudbuild(document: YamlDoc, root: Node) -> None:
    scope: dict[str, Var] = {}
    substitutions = get(root, "substitutions")
    if isinstance(substitutions, MappingNode):
        for key, value in substitutions.value:
            text = text_of(value)
            if isinstance(key, ScalarNode) and text is not None:
                scope[str(key.value)] = literal_var(text, document.value_span(value))
    steps = get(root, "steps")
    if isinstance(steps, SequenceNode):
        for index, step in enumerate(steps.value):
            label = text_of(get(step, "id")) or str(index)
            document.image_scalar(
                get(step, "name"), "cloudbuild", f"steps[{label}].name", scope, dollar_dollar=True
            )
            for path in build_files(step):
                document.links.append(Link(path, DOCKERFILE))
    images = get(root, "images")
    if isinstance(images, SequenceNode):
        for index, image in enumerate(images.value):
            document.image_scalar(
                image, "cloudbuild", f"images[{index}]", scope, dollar_dollar=True
            )


def looks_like_cloudbuild(root: MappingNode) -> bool:
    steps = get(root, "steps")
    return (
        isinstance(steps, SequenceNode)
        and bool(steps.value)
        and all(isinstance(text_of(get(step, "name")), str) for step in steps.value)
    )


def build_files(step: Node) -> list[str]:
    """Dockerfiles one step builds, relative to the config's directory (``dir`` joined)."""
    name = text_of(get(step, "name")) or ""
    args_node = get(step, "args")
    args = (
        [text_of(a) or "" for a in args_node.value] if isinstance(args_node, SequenceNode) else []
    )
    found: list[str] = []
    if "kaniko" in name:
        found += _option(args, ("--dockerfile", "-f"))
    elif "docker" in name and "build" in args:
        found += _option(args[args.index("build") + 1 :], ("-f", "--file"))
    script = text_of(get(step, "script")) or " ".join(args)
    for match in _SCRIPTED_BUILD.finditer(script):
        try:
            found += shlex.split(match.group(1))[:1]
        except ValueError:
            continue
    directory = text_of(get(step, "dir")) or ""
    return [
        posixpath.normpath(posixpath.join(directory, path))
        for path in found
        if path and "$" not in path and "://" not in path
    ]


def _option(args: list[str], names: tuple[str, ...]) -> list[str]:
    """Values of ``-f X``, ``-f=X``, ``--file X`` and ``--file=X`` style options."""
    values = []
    for index, arg in enumerate(args):
        for option in names:
            if arg == option and index + 1 < len(args):
                values.append(args[index + 1])
            elif arg.startswith(option + "="):
                values.append(arg[len(option) + 1 :])
    return values
