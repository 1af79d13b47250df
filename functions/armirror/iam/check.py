"""The check itself: one finding per consumer from the repository's and project's policies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from armirror.iam.clients import (
    artifact_registry_client,
    explain_failure,
    policy_request,
    projects_client,
    recoverable_errors,
)
from armirror.iam.findings import PermissionFinding, Status, gcloud_fix, terraform_fix
from armirror.iam.policy import READER_ROLE, Verdict, judge
from armirror.iam.principals import InvalidPrincipal, normalise_principal
from armirror.iam.repository import NotArtifactRegistry, Repository, parse_repository

if TYPE_CHECKING:
    from google.cloud.artifactregistry_v1 import ArtifactRegistryClient
    from google.cloud.resourcemanager_v3 import ProjectsClient
    from google.iam.v1 import policy_pb2

#: How long to wait for one GetIamPolicy answer, in seconds.
TIMEOUT = 30.0


def check_readers(
    prefix: str,
    consumers: Sequence[str],
    *,
    ar_client: ArtifactRegistryClient | None = None,
    projects_client: ProjectsClient | None = None,
    timeout: float = TIMEOUT,
) -> list[PermissionFinding]:
    """One finding per consumer: can it pull from the repository that ``prefix`` names?

    ``prefix`` is an Artifact Registry destination (``LOCATION-docker.pkg.dev/PROJECT/
    REPOSITORY[/...]``); ``consumers`` are IAM principals (see :func:`normalise_principal`).
    The clients default to Google's with application default credentials; pass clients
    built by :func:`artifact_registry_client` / :func:`projects_client` to talk to another
    endpoint.  Nothing is raised for a failed check: it becomes an ``error`` finding.
    """
    members: list[tuple[str, str | None, str]] = []  # (as given, normalised, problem)
    seen: set[str] = set()
    for given in consumers:
        try:
            normalised = normalise_principal(given)
        except InvalidPrincipal as exc:
            members.append((given, None, str(exc)))
            continue
        if normalised not in seen:
            seen.add(normalised)
            members.append((given, normalised, ""))
    if not members:
        return []

    def every(status: Status, detail: str, resource: str | None = None) -> list[PermissionFinding]:
        return [
            PermissionFinding(norm or given, status, prefix, resource, problem or detail)
            for given, norm, problem in members
        ]

    try:
        repository = parse_repository(prefix)
    except NotArtifactRegistry as exc:
        return every("error", str(exc))

    recoverable = recoverable_errors()
    try:
        ar = ar_client if ar_client is not None else artifact_registry_client()
        repo_policy = ar.get_iam_policy(
            request=policy_request(repository.resource), timeout=timeout
        )
    except recoverable as exc:
        detail = explain_failure(
            exc,
            f"repository {repository.resource}",
            "artifactregistry.repositories.getIamPolicy (roles/artifactregistry.repoAdmin)",
        )
        return every("error", detail, repository.resource)

    project_policy: policy_pb2.Policy | None = None
    project_problem = ""
    try:
        pc = projects_client if projects_client is not None else _default_projects_client()
        project_policy = pc.get_iam_policy(
            request=policy_request(repository.project_resource), timeout=timeout
        )
    except recoverable as exc:
        project_problem = explain_failure(
            exc,
            f"project {repository.project}",
            "resourcemanager.projects.getIamPolicy (roles/iam.securityReviewer)",
        )

    findings: list[PermissionFinding] = []
    for given, member, problem in members:
        if member is None:
            findings.append(PermissionFinding(given, "error", prefix, repository.resource, problem))
            continue
        findings.append(
            _finding(member, prefix, repository, repo_policy, project_policy, project_problem)
        )
    return findings


def _default_projects_client() -> ProjectsClient:
    return projects_client()


def _finding(
    member: str,
    prefix: str,
    repository: Repository,
    repo_policy: policy_pb2.Policy,
    project_policy: policy_pb2.Policy | None,
    project_problem: str,
) -> PermissionFinding:
    verdict = Verdict()
    judge(member, repo_policy, "repository", verdict)
    if project_policy is not None:
        judge(member, project_policy, f"project {repository.project}", verdict)
    finding = PermissionFinding(member, "ok", prefix, repository.resource)
    if verdict.grants:
        finding.via = verdict.grants
        finding.detail = "can read: " + "; ".join(verdict.grants)
        return finding
    finding.gcloud = gcloud_fix(repository, member)
    finding.terraform = terraform_fix(member)
    if verdict.maybe:
        finding.status = "cannot-tell"
        finding.via = verdict.maybe
        finding.detail = "may read: " + "; ".join(verdict.maybe)
        if project_problem:
            finding.detail += f"; {project_problem}"
        finding.detail += f"; grant {READER_ROLE} directly to be sure"
    elif project_problem:
        finding.status = "cannot-tell"
        finding.detail = (
            f"no reader role on the repository, and {project_problem}; grant {READER_ROLE}"
            " on the repository to be sure"
        )
    else:
        finding.status = "missing"
        finding.detail = (
            f"no reader role on the repository or on project {repository.project}"
            " (folder and organisation policies not read)"
        )
    return finding
