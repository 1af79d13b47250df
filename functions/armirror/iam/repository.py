"""Which Artifact Registry repository a destination prefix names."""

from __future__ import annotations

import re
from dataclasses import dataclass

_AR_HOST = re.compile(r"^(?P<location>[a-z0-9]+(?:-[a-z0-9]+)*)-docker\.pkg\.dev$")
_PROJECT_ID = re.compile(r"^(?:[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]+)$")
_REPOSITORY_ID = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class NotArtifactRegistry(ValueError):
    """A destination prefix that does not name an Artifact Registry Docker repository."""


@dataclass(frozen=True)
class Repository:
    """An Artifact Registry repository, as named in a ``docker.pkg.dev`` prefix."""

    location: str
    project: str
    repository: str

    @property
    def resource(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/repositories/{self.repository}"

    @property
    def project_resource(self) -> str:
        return f"projects/{self.project}"


def parse_repository(prefix: str) -> Repository:
    """The repository in ``LOCATION-docker.pkg.dev/PROJECT/REPOSITORY[/...]``.

    A domain-scoped project (``example.com:project``) is written with a slash in Docker
    paths (``…/example.com/project/repository``); both spellings are accepted.
    """
    text = prefix.strip()
    for scheme in ("https://", "http://", "docker://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
    host, _, path = text.partition("/")
    match = _AR_HOST.match(host.lower())
    if match is None:
        raise NotArtifactRegistry(
            f"{prefix}: not an Artifact Registry destination"
            " (expected LOCATION-docker.pkg.dev/PROJECT/REPOSITORY)"
        )
    parts = [p for p in path.split("/") if p]
    if parts and "." in parts[0] and ":" not in parts[0] and len(parts) >= 2:
        parts = [f"{parts[0]}:{parts[1]}", *parts[2:]]
    if len(parts) < 2:
        raise NotArtifactRegistry(
            f"{prefix}: names no repository (expected LOCATION-docker.pkg.dev/PROJECT/REPOSITORY)"
        )
    project, repository = parts[0].lower(), parts[1]
    bare_project = project.rsplit(":", 1)[-1]
    if not _PROJECT_ID.match(bare_project):
        raise NotArtifactRegistry(f"{prefix}: {project!r} is not a project ID")
    if not _REPOSITORY_ID.match(repository):
        raise NotArtifactRegistry(
            f"{prefix}: {repository!r} is not a repository ID"
            " (lower-case letters, digits and hyphens)"
        )
    return Repository(match["location"], project, repository)
