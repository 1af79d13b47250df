"""Images in skaffold configs: artifacts are built, builders and base images are pulled.

``build.artifacts[].image`` (also under ``profiles[].build``) names an image skaffold
builds and substitutes into the manifests it deploys: it is reported as built, and so
is every reference to it elsewhere in the tree (see :mod:`armirror.scan.tree`).  A
rewrite leaves them alone: a rewritten name no longer matches the artifact, and
skaffold would deploy the mirror's stale copy instead of the fresh build.
Buildpacks' ``builder`` and ``runImage`` and Jib's ``fromImage`` are pulled, unless
they name another artifact.  ``docker.dockerfile`` and ``kaniko.dockerfile`` are read
as Dockerfiles, whatever their names.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from yaml.nodes import MappingNode, Node, SequenceNode

from armirror.reference import try_parse

from .finding import Link
from .walk import DOCKERFILE
from .yamldoc import YamlDoc, get, text_of

_PULLED = (("buildpacks", "builder"), ("buildpacks", "runImage"), ("jib", "fromImage"))


@dataclass(frozen=True, slots=True)
class SkaffoldArtifacts:
    """The names of the images a skaffold config builds (normalised: registry/repository)."""

    names: frozenset[str]


def is_skaffold(root: MappingNode) -> bool:
    return (text_of(get(root, "apiVersion")) or "").startswith("skaffold/")


def skaffold(document: YamlDoc, root: Node) -> None:
    artifacts: list[tuple[Node, str]] = []
    for build, where in _builds(root):
        items = get(build, "artifacts")
        if isinstance(items, SequenceNode):
            artifacts += [(a, f"{where}.artifacts[{i}]") for i, a in enumerate(items.value)]
    names = {text_of(get(a, "image")) or "" for a, _ in artifacts} - {""}
    aliases = {
        text_of(get(r, "image")) or "" for a, _ in artifacts for r in _items(get(a, "requires"))
    }
    for artifact, where in artifacts:
        document.image_scalar(get(artifact, "image"), "skaffold", f"{where}.image", built=True)
        for section, key in _PULLED:
            node = get(get(artifact, section), key)
            value = text_of(node) or ""
            built = value in names or value in aliases
            document.image_scalar(node, "skaffold", f"{where}.{section}.{key}", built=built)
        context = text_of(get(artifact, "context")) or "."
        for section in ("docker", "kaniko"):
            settings = get(artifact, section)
            if isinstance(settings, MappingNode) or (section == "docker" and settings is None):
                dockerfile = text_of(get(settings, "dockerfile")) or "Dockerfile"
                path = posixpath.normpath(posixpath.join(context, dockerfile))
                if "$" not in path and (settings is not None or _is_docker_default(artifact)):
                    document.links.append(Link(path, DOCKERFILE))
    parsed = {ref.name for ref in map(try_parse, names) if ref is not None}
    document.facts.append(SkaffoldArtifacts(frozenset(parsed)))


def _builds(root: Node) -> list[tuple[Node, str]]:
    builds = [(get(root, "build"), "build")]
    for index, profile in enumerate(_items(get(root, "profiles"))):
        builds.append((get(profile, "build"), f"profiles[{index}].build"))
    return [(b, where) for b, where in builds if isinstance(b, MappingNode)]


def _items(node: Node | None) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else []


def _is_docker_default(artifact: Node) -> bool:
    """An artifact without a builder section is built with docker from ``Dockerfile``."""
    builders = ("docker", "kaniko", "buildpacks", "jib", "bazel", "ko", "custom", "cluster")
    return all(get(artifact, b) is None for b in builders)
