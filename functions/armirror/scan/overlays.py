"""The images kustomize really deploys, resolved across the bases and overlays in a tree.

An ``images`` entry changes the images of the resources it applies to: it matches a
container image by name (exactly as written, tag and digest aside), then ``newName``
replaces the name, and ``newTag`` and ``digest`` replace both tag and digest (one
alone clears the other).  So ``{name: nginx, newName: quay.io/x/nginx}`` over a base
that runs ``nginx:1.25`` deploys ``quay.io/x/nginx:1.25``: the tag comes from the base.
Each entry is applied in order to the images of the kustomization's resources (files,
and bases built first), its patches and its components, as kustomize builds them.  An
entry that matches images in the tree is reported once per image it produces; one that
matches nothing here (a remote base) stays as written.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from armirror.reference import try_parse

from .finding import Finding
from .kustomize import ImageEntry, Kustomization

#: the images a file's resources run, as written (by absolute path)
ImagesOf = Callable[[str], list[str] | None]

#: how deep overlays may stack on bases; kustomize trees are a few levels deep, and a
#: hostile one must not exhaust Python's stack
MAX_DEPTH = 64


def split(image: str) -> tuple[str, str, str]:
    """``(name, tag, digest)`` of an image as written, as kustomize splits it."""
    name, _, digest = image.partition("@")
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        return name[:colon], name[colon + 1 :], digest
    return name, "", digest


def apply(entry: ImageEntry, image: str) -> str | None:
    """What ``entry`` turns ``image`` into, or None when it does not match."""
    name, tag, digest = split(image)
    if entry.name is None or name != entry.name:
        return None
    if entry.new_tag and entry.digest:
        tag, digest = entry.new_tag, entry.digest
    elif entry.new_tag:
        tag, digest = entry.new_tag, ""
    elif entry.digest:
        tag, digest = "", entry.digest
    return (entry.new_name or name) + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


class Resolver:
    """Builds each kustomization's images once, bases first, refusing cycles."""

    def __init__(self, kustomizations: dict[str, Kustomization], images_of: ImagesOf) -> None:
        self.kustomizations = kustomizations  # by absolute directory
        self.images_of = images_of
        self.built: dict[str, list[str]] = {}
        self.produced: dict[int, list[str]] = {}  # id(entry) -> images it produced
        self.visiting: set[str] = set()

    def build(self, directory: str) -> list[str]:
        """The distinct images the kustomization in ``directory`` deploys, in order.

        Distinct, so that a base listed twice (which kustomize refuses) or a diamond of
        overlays cannot multiply the list.
        """
        if directory in self.built:
            return self.built[directory]
        if directory in self.visiting or len(self.visiting) >= MAX_DEPTH:
            return []  # a cycle (kustomize refuses it too), or a stack too deep to be real
        self.visiting.add(directory)
        k = self.kustomizations[directory]
        images = self._own(directory, k)
        for component in k.components:
            path = os.path.normpath(os.path.join(directory, component))
            if path in self.kustomizations:
                c = self.kustomizations[path]
                images += self._own(path, c)
                images = self._transform(c.entries, images)
        images = list(dict.fromkeys(self._transform(k.entries, images)))
        self.visiting.discard(directory)
        self.built[directory] = images
        return images

    def _own(self, directory: str, k: Kustomization) -> list[str]:
        images: list[str] = []
        for resource in k.resources:
            if "://" in resource or resource.startswith(("github.com/", "git@")):
                continue
            path = os.path.normpath(os.path.join(directory, resource))
            if path in self.kustomizations:
                images += self.build(path)
            else:
                images += self.images_of(path) or []
        for patch in k.patch_files:
            images += self.images_of(os.path.normpath(os.path.join(directory, patch))) or []
        return images + list(k.patch_images)

    def _transform(self, entries: tuple[ImageEntry, ...], images: list[str]) -> list[str]:
        for entry in entries:
            result = []
            for image in images:
                new = apply(entry, image)
                if new is not None:
                    self.produced.setdefault(id(entry), []).append(new)
                result.append(image if new is None else new)
            images = result
        return images

    def findings_for(self, entry: ImageEntry) -> list[Finding]:
        """The entry's finding, once per distinct image it produced (itself if none)."""
        produced = list(dict.fromkeys(self.produced.get(id(entry), [])))
        if not produced:
            return [entry.finding]
        return [_with_image(entry.finding, image) for image in produced]


def _with_image(finding: Finding, image: str) -> Finding:
    reference = try_parse(image)
    if reference is None:
        return dataclasses.replace(
            finding, image=image, reference=None, problem="not a valid reference", slots=()
        )
    return dataclasses.replace(finding, image=image, reference=reference)
