"""What a scan reports: findings, the text spans behind them, and files it could not read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from armirror.reference import Reference, RegistryClass, classify_registry

#: Where a finding came from (the ``kind`` field of ``--format json``).
KINDS = (
    "dockerfile",
    "kubernetes",
    "cloudrun",
    "compose",
    "cloudbuild",
    "kustomize",
    "helm",
    "skaffold",
    "cluster",
)


@dataclass(frozen=True, slots=True)
class Slot:
    """A place in a file's text that holds one part of a reference.

    ``start``/``end`` are character offsets into the text as read (BOM, ``\\r\\n`` and
    all).  ``part`` says what a rewrite writes there:

    - ``ref``: the whole reference (``nginx:1.25`` -> ``PREFIX/docker.io/library/nginx:1.25``)
    - ``name``: the name only, without tag or digest (a Helm ``repository`` without a
      ``registry`` key, a kustomize ``newName``, an ARG that holds the name part)
    - ``registry`` / ``repository``: the two halves of a Helm ``image:`` map
    - ``digest``: a digest value, written only by ``--pin-digests``
    - ``tag+digest``: a tag value that gains ``@digest`` under ``--pin-digests``
    - ``alias``: a whole kustomize ``images`` entry added after the original, for
      resources that name the mirror; ``tail`` is the original ``name``, and the
      template's ``{name}`` and ``{new_name}`` are the destinations of ``tail`` and of
      the reference
    - ``name-head``: the leading part of a name assembled from several values
      (``ARG REG=ghcr.io`` in ``FROM ${REG}/org/app``); ``tail`` is the written rest,
      which the new name must end with

    An insertion has ``start == end`` and a ``template`` such as ``"\\n  newName: {}"``;
    a replacement's template is ``"{}"``.
    """

    start: int
    end: int
    part: str
    template: str = "{}"
    tail: str = ""

    @property
    def is_insert(self) -> bool:
        return self.start == self.end and self.template != "{}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One image reference found in a file (or a running pod)."""

    file: str
    line: int
    kind: str
    image: str
    reference: Reference | None
    where: str = ""
    expression: str | None = None
    problem: str | None = None
    digest: str | None = None
    slots: tuple[Slot, ...] = field(default=(), compare=False)
    #: the host a template names literally (``gcr.io/$PROJECT_ID/app``), when unresolved
    literal_registry: str | None = None
    #: the name of an image that is built, not pulled (a skaffold artifact, a compose
    #: service with ``build:``): reported, never copied or rewritten
    built: bool = False

    @property
    def unresolved(self) -> bool:
        return self.reference is None

    @property
    def registry(self) -> str | None:
        if self.reference is not None:
            return self.reference.registry
        return self.literal_registry

    @property
    def third_party(self) -> bool | None:
        """True or False when known; None for an unresolved template naming no host.

        An image that is built here is not pulled from a third party: False.
        """
        if self.built:
            return False
        if self.reference is not None:
            return self.reference.third_party
        if self.literal_registry is not None:
            return classify_registry(self.literal_registry) is RegistryClass.THIRD_PARTY
        return None

    @property
    def tagless(self) -> bool:
        """A kustomize or Helm entry that names an image but leaves the tag to others."""
        return self.reference is not None and not (self.reference.tag or self.reference.digest)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file,
            "line": self.line or None,
            "kind": self.kind,
            "image": self.image,
            "reference": str(self.reference) if self.reference is not None else None,
            "registry": self.registry,
            "third_party": self.third_party,
            "unresolved": self.unresolved,
            "where": self.where,
        }
        if self.expression is not None:
            out["expression"] = self.expression
        if self.problem is not None:
            out["problem"] = self.problem
        if self.digest is not None:
            out["digest"] = self.digest
        if self.built:
            out["built"] = True
        return out


@dataclass(frozen=True, slots=True)
class Link:
    """A file that another file names, read with the type given whatever its name: the
    Dockerfile a build config builds (``docker build -f``, compose ``build.dockerfile``,
    skaffold ``docker.dockerfile``) or a kustomize patch file."""

    path: str  # as written, relative to the directory of the file that names it
    type: str  # a file type of armirror.scan.walk (DOCKERFILE, KUSTOMIZE_PATCH)


@dataclass
class Scanned:
    """What scanning one file's text gives."""

    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    links: list[Link] = field(default_factory=list)
    #: shape facts the tree-wide pass needs (a kustomization's structure, skaffold artifacts)
    facts: list[Any] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FileError:
    """A file (or cluster) that could not be read or parsed; the scan went on."""

    file: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"file": self.file, "error": self.message}


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    files_scanned: int = 0

    def images(self) -> list[str]:
        """Unique normalised references with a tag or digest, in first-seen order."""
        seen: dict[str, None] = {}
        for finding in self.findings:
            if finding.reference is not None and not finding.tagless and not finding.built:
                seen.setdefault(str(finding.reference), None)
        return list(seen)
