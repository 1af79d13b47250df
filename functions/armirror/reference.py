"""Container image references: parse, normalise, classify and map to a mirror.

The grammar is the one the distribution project documents (and Docker enforces):

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ registry "/" ] path
    registry   := host [ ":" port ]          (a first component with "." or ":", or "localhost")
    path       := component ( "/" component )*
    component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := algorithm ":" hex          (sha256 needs 64 lowercase hex digits)

A name is at most 255 characters.  Uppercase letters are allowed in the registry host
only, and parsing lowercases the host: DNS names are case-insensitive, so
``DOCKER.IO/team/app`` and ``docker.io/team/app`` are one image, with one destination
and one copy job (issue 12 §3).  A first component in uppercase without ``.`` or ``:``
(``FOO/bar``) is a host to Docker, but lowercased it would read as a Docker Hub
namespace, so it is refused (``LOCALHOST/x`` is ``localhost/x``).  A bare 64-digit hex
string is an image ID, not a name, and is refused as Docker refuses it.  Every malformed
input raises :class:`InvalidReference` (a ``ValueError``) whose message names what is
wrong; nothing else escapes.

Normalisation follows Docker: no registry means ``docker.io``, a one-component path on
Docker Hub gains ``library/``, ``index.docker.io`` is ``docker.io``, and a reference
with neither tag nor digest means ``:latest``.  ``str(ref)`` is the fully qualified form,
and ``parse(str(ref)) == ref``.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from dataclasses import dataclass

__all__ = [
    "DOCKER_HUB",
    "InvalidReference",
    "Reference",
    "RegistryClass",
    "classify_registry",
    "destination_for",
    "upstream_for",
    "host_path_component",
    "matches",
    "parse",
    "parse_prefix",
    "try_parse",
]

DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

NAME_MAX_LENGTH = 255
TAG_MAX_LENGTH = 128

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_COMPONENT_RE = re.compile(rf"^{_COMPONENT}$")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_RE = re.compile(rf"^{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_DIGEST_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
_SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_SHA512_RE = re.compile(r"^sha512:[0-9a-f]{128}$")
_IMAGE_ID_RE = re.compile(r"^[0-9a-f]{64}$")


def digest_problem(digest: str) -> str | None:
    """Why ``digest`` is not a content digest (``algorithm:hex``, sha256 and sha512 at
    their exact lengths), or None.  Digests name URL paths, so one from a manifest is
    checked as one in a reference is."""
    if not _DIGEST_RE.match(digest):
        return f"malformed digest {digest!r}"
    algorithm = digest.split(":", 1)[0]
    if algorithm == "sha256" and not _SHA256_RE.match(digest):
        return "a sha256 digest needs exactly 64 lowercase hex digits"
    if algorithm == "sha512" and not _SHA512_RE.match(digest):
        return "a sha512 digest needs exactly 128 lowercase hex digits"
    return None


class InvalidReference(ValueError):
    """An image reference that does not follow the reference grammar.

    The message names the offending reference and what is wrong with it.
    """

    def __init__(self, reference: object, problem: str) -> None:
        self.reference = reference
        self.problem = problem
        super().__init__(f"invalid image reference {reference!r}: {problem}")


class RegistryClass(enum.StrEnum):
    """Where an image lives, as far as a migration off third-party registries cares."""

    ARTIFACT_REGISTRY = "artifact_registry"
    CONTAINER_REGISTRY = "container_registry"
    THIRD_PARTY = "third_party"


def classify_registry(registry: str) -> RegistryClass:
    """Artifact Registry is ``*-docker.pkg.dev``; Container Registry is ``gcr.io``/``*.gcr.io``."""
    host = registry.lower().split(":", 1)[0]
    if host.endswith("-docker.pkg.dev") or host == "docker.pkg.dev":
        return RegistryClass.ARTIFACT_REGISTRY
    if host == "gcr.io" or host.endswith(".gcr.io"):
        return RegistryClass.CONTAINER_REGISTRY
    return RegistryClass.THIRD_PARTY


@dataclass(frozen=True, slots=True)
class Reference:
    """A fully qualified image reference: registry, repository and a tag and/or digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def identifier(self) -> str:
        """What a manifest request names: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def registry_class(self) -> RegistryClass:
        return classify_registry(self.registry)

    @property
    def third_party(self) -> bool:
        return self.registry_class is RegistryClass.THIRD_PARTY

    def with_digest(self, digest: str | None) -> Reference:
        return Reference(self.registry, self.repository, self.tag, digest)

    def with_tag(self, tag: str | None) -> Reference:
        return Reference(self.registry, self.repository, tag, self.digest)

    def familiar(self) -> str:
        """The short form Docker prints: ``nginx:1.25``, not ``docker.io/library/nginx:1.25``.

        ``library/`` goes only from a one-component name: ``docker.io/library/foo/bar``
        is ``library/foo/bar``, since ``foo/bar`` would be another repository.
        """
        name = self.name
        if self.registry == DOCKER_HUB:
            name = self.repository
            short = name.removeprefix("library/")
            if "/" not in short:
                name = short
        return name + self._suffix()

    def _suffix(self) -> str:
        suffix = f":{self.tag}" if self.tag else ""
        if self.digest:
            suffix += f"@{self.digest}"
        return suffix

    def __str__(self) -> str:
        return self.name + self._suffix()


def _split_registry(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first.lower() == "localhost"):
        return first, rest
    return DOCKER_HUB, name


def parse(text: str) -> Reference:
    """Parse and normalise one image reference, or raise :class:`InvalidReference`."""
    if not isinstance(text, str):
        raise InvalidReference(text, "a reference must be a string")
    if not text:
        raise InvalidReference(text, "empty reference")
    if _IMAGE_ID_RE.match(text):
        raise InvalidReference(text, "a 64-digit hex string is an image ID, not an image name")
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReference(text, "contains whitespace")

    remainder, at, digest = text.partition("@")
    digest_value: str | None = None
    if at:
        problem = digest_problem(digest)
        if problem:
            raise InvalidReference(text, problem)
        digest_value = digest

    # A tag follows the last ':' unless that ':' belongs to a registry port (it is
    # then followed by a '/').
    name, tag_value = remainder, None
    colon = remainder.rfind(":")
    if colon != -1 and "/" not in remainder[colon + 1 :]:
        name, tag_value = remainder[:colon], remainder[colon + 1 :]
        if not _TAG_RE.match(tag_value):
            problem = (
                f"tag longer than {TAG_MAX_LENGTH} characters"
                if len(tag_value) > TAG_MAX_LENGTH
                else f"malformed tag {tag_value!r}"
            )
            raise InvalidReference(text, problem)

    if not name:
        raise InvalidReference(text, "missing repository name")
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidReference(text, f"name longer than {NAME_MAX_LENGTH} characters")

    registry, path = _split_registry(name)
    if registry.startswith("["):
        raise InvalidReference(text, "IPv6 registry addresses are not supported")
    if not _HOST_RE.match(registry):
        raise InvalidReference(text, f"malformed registry host {registry!r}")
    if not path:
        raise InvalidReference(text, "missing repository path after the registry")
    for component in path.split("/"):
        if _COMPONENT_RE.match(component):
            continue
        if _COMPONENT_RE.match(component.lower()):
            raise InvalidReference(text, "repository name must be lowercase")
        raise InvalidReference(text, f"malformed path component {component!r}")

    registry = registry.lower()
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if len(f"{registry}/{path}") > NAME_MAX_LENGTH:
        raise InvalidReference(text, f"name longer than {NAME_MAX_LENGTH} characters")

    if tag_value is None and digest_value is None:
        tag_value = "latest"
    return Reference(registry=registry, repository=path, tag=tag_value, digest=digest_value)


def try_parse(text: str) -> Reference | None:
    """``parse`` for callers that treat an invalid reference as "not an image"."""
    try:
        return parse(text)
    except InvalidReference:
        return None


def host_path_component(registry: str) -> str:
    """Map a registry host to one valid path component.

    The host is lowercased and a port separator ``:`` becomes ``_``.  Host names cannot
    contain ``_``, so two different registries never map to the same component:
    ``localhost:5000`` -> ``localhost_5000``, ``Quay.IO`` -> ``quay.io``.
    """
    return registry.lower().replace(":", "_")


def destination_for(source: Reference, prefix: str) -> Reference:
    """Where ``source`` is mirrored under ``prefix``: ``PREFIX/<host>/<repository>``.

    ``nginx:1.14.2`` with prefix ``us-docker.pkg.dev/p/mirror`` becomes
    ``us-docker.pkg.dev/p/mirror/docker.io/library/nginx:1.14.2``.  Tag and digest are
    kept.  This is the one mapping that ``copy``, ``rewrite`` and the pipeline share.
    """
    base = parse_prefix(prefix)
    repository = f"{base.repository}/{host_path_component(source.registry)}/{source.repository}"
    text = f"{base.registry}/{repository}"
    if len(text) > NAME_MAX_LENGTH:
        raise InvalidReference(text, f"destination name longer than {NAME_MAX_LENGTH} characters")
    return Reference(base.registry, repository, source.tag, source.digest)


def upstream_for(mirrored: Reference, prefix: str) -> Reference | None:
    """The upstream a mirror reference was copied from: the inverse of destination_for.

    ``PREFIX/<host>/<repository>`` maps back to ``<host>/<repository>`` with the same
    tag and digest, where ``<host>`` turns ``_`` back into ``:`` (host names cannot hold
    ``_``, so ``localhost_5000`` can only be ``localhost:5000``).  None when the
    reference is not under ``prefix``, or what follows the prefix is not
    ``<host>/<repository>`` (a host needs a ``.``, a port or to be ``localhost``), so
    ``destination_for(upstream_for(r, p), p) == r`` whenever the result is not None.
    ``verify`` uses it to check files that ``rewrite`` already pointed at the mirror.
    """
    base = parse_prefix(prefix)
    head = f"{base.repository}/"
    if mirrored.registry != base.registry or not mirrored.repository.startswith(head):
        return None
    host, _, path = mirrored.repository[len(head) :].partition("/")
    source = try_parse(f"{host.replace('_', ':', 1)}/{path}")
    if source is None:
        return None
    source = Reference(source.registry, source.repository, mirrored.tag, mirrored.digest)
    try:
        if destination_for(source, prefix) != mirrored:
            # e.g. docker.io/nginx (mirrored at docker.io/library/nginx), or no host at
            # all: PREFIX/nginx/x parses as docker.io/nginx/x, which mirrors elsewhere.
            return None
    except InvalidReference:
        return None
    return source


def parse_prefix(prefix: str) -> Reference:
    """Validate a destination prefix such as ``us-docker.pkg.dev/project/repository``."""
    cleaned = prefix.rstrip("/")
    registry, _, path = cleaned.partition("/")
    if not path or not ("." in registry or ":" in registry or registry == "localhost"):
        raise InvalidReference(prefix, "a destination prefix needs a registry host and a path")
    if "@" in cleaned or ":" in path:
        raise InvalidReference(prefix, "a destination prefix takes no tag or digest")
    ref = parse(cleaned)
    return Reference(ref.registry, ref.repository)


def matches(reference: Reference, patterns: list[str] | tuple[str, ...]) -> bool:
    """Whether any glob pattern matches the reference, however it is written.

    A pattern is tried against the name (``registry/repository``) and each written form
    with a tag and digest: ``name:tag``, ``name@digest`` and ``name:tag@digest``, so
    ``docker.io/library/*:latest`` also matches ``nginx:latest@sha256:…``.  The
    pattern's host compares case-insensitively (``Docker.IO/team/*``), and a Docker Hub
    alias in it means ``docker.io``.  A pattern without ``/`` names a whole registry
    (``quay.io`` means ``quay.io/*``).
    """
    forms = [reference.name]
    if reference.tag:
        forms.append(f"{reference.name}:{reference.tag}")
    if reference.digest:
        forms.append(f"{reference.name}@{reference.digest}")
        if reference.tag:
            forms.append(f"{reference.name}:{reference.tag}@{reference.digest}")
    for pattern in patterns:
        glob = _normalise_pattern(pattern)
        if any(fnmatch.fnmatchcase(form, glob) for form in forms):
            return True
    return False


def _normalise_pattern(pattern: str) -> str:
    """``pattern`` with its host lowercased (and ``/*`` added to a bare host).

    The first component is either a host (case-insensitive) or a path component (which
    is lowercase anyway), so lowercasing it never changes what a valid pattern means.
    """
    host, sep, rest = pattern.partition("/")
    if not sep:
        rest = "*"
    host = host.lower()
    if host in _DOCKER_HUB_ALIASES:
        host = DOCKER_HUB
    return f"{host}/{rest}"
