"""Can every consumer pull from the mirror?  Reader permissions on an Artifact Registry repository.

A consumer is an IAM principal that pulls images: a GKE node service account, the Cloud
Run service agent of a project (``service-NUMBER@serverless-robot-prod.iam.gserviceaccount.com``),
a CI identity.  To pull it needs ``artifactregistry.repositories.downloadArtifacts`` on the
repository, granted on the repository itself or higher up.

:func:`check_readers` reads two IAM policies (at policy version 3, so conditional bindings
are returned as such):

- the repository's, with google-cloud-artifact-registry
  (``projects/P/locations/L/repositories/R``);
- the project's, with google-cloud-resource-manager (``projects/P``).

and reports, for each consumer, one :class:`PermissionFinding`:

``ok``
    an unconditional binding of a role in :data:`READER_ROLES` names the consumer (or
    ``allUsers`` / ``allAuthenticatedUsers``; or ``domain:D`` for ``user:someone@D``);
``cannot-tell``
    the only bindings that might cover it are conditional (the condition may or may not
    hold when the pull happens), name a ``group:`` or ``principalSet:`` that armirror cannot
    expand, name a ``domain:`` that might hold the user through an alias domain, or grant
    a custom role whose permissions armirror does not read; also when the project policy
    could not be read and the repository policy alone does not make it ``ok``;
``missing``
    nothing on the repository or the project grants it a reader role;
``error``
    the check could not run: the destination is not an Artifact Registry repository, the
    principal is malformed, the repository does not exist, the caller may not read its
    policy, or there are no Google credentials.

``missing`` and ``cannot-tell`` findings carry the ``gcloud`` command and the Terraform
``consumers`` entry that grant ``roles/artifactregistry.reader`` on the repository (for a
``cannot-tell`` a direct grant turns the guess into a certainty).

What this does not read: folder and organisation policies (a grant there would make a
``missing`` consumer able to pull after all), IAM deny policies, custom role definitions,
and group memberships.  So ``ok`` is reliable unless a deny policy intervenes, and
``missing`` means "not granted on the repository or its project".
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import grpc
    from google.cloud.artifactregistry_v1 import ArtifactRegistryClient
    from google.cloud.resourcemanager_v3 import ProjectsClient
    from google.iam.v1 import policy_pb2

READER_ROLE = "roles/artifactregistry.reader"

#: Predefined roles that contain ``artifactregistry.repositories.downloadArtifacts``.
#: The Artifact Registry roles hold it wherever they are granted (repository, project,
#: folder, organisation); the basic roles and the Cloud Run service agent role only
#: appear in project (or higher) policies.  ``roles/run.serviceAgent`` is what the Cloud
#: Run service agent gets in its own project, which is why same-project pulls work
#: without a grant; across projects it needs one.
READER_ROLES: frozenset[str] = frozenset(
    {
        "roles/artifactregistry.reader",
        "roles/artifactregistry.writer",
        "roles/artifactregistry.createOnPushWriter",
        "roles/artifactregistry.repoAdmin",
        "roles/artifactregistry.createOnPushRepoAdmin",
        "roles/artifactregistry.admin",
        "roles/owner",
        "roles/editor",
        "roles/viewer",
        "roles/run.serviceAgent",
    }
)

#: How long to wait for one GetIamPolicy answer, in seconds.
TIMEOUT = 30.0

Status = Literal["ok", "missing", "cannot-tell", "error"]

_PREFIXES = {
    "serviceaccount": "serviceAccount",
    "user": "user",
    "group": "group",
    "domain": "domain",
    "principal": "principal",
    "principalset": "principalSet",
}
_PUBLIC = frozenset({"allUsers", "allAuthenticatedUsers"})
_EMAIL = re.compile(r"^[^@\s:]+@[^@\s:]+\.[^@\s:]+$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]{1,63})+$")
_AR_HOST = re.compile(r"^(?P<location>[a-z0-9]+(?:-[a-z0-9]+)*)-docker\.pkg\.dev$")
_PROJECT_ID = re.compile(r"^(?:[a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]+)$")
_REPOSITORY_ID = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_SERVICE_ACCOUNT_DOMAIN = "gserviceaccount.com"


class InvalidPrincipal(ValueError):
    """A consumer that is not an IAM principal armirror can check."""


class NotArtifactRegistry(ValueError):
    """A destination prefix that does not name an Artifact Registry Docker repository."""


# -- principals ------------------------------------------------------------------------------


def normalise_principal(text: str) -> str:
    """An IAM member string for a consumer, in the form policies use.

    ``serviceAccount:``, ``user:``, ``group:`` and ``domain:`` members are accepted with any
    case of the prefix; emails and domains are lower-cased.  A plain email of a service
    account (``…gserviceaccount.com``) becomes ``serviceAccount:EMAIL``; a plain email of
    anything else is refused, since it could be a user or a group.  ``principal://`` and
    ``principalSet://`` identifiers are kept as given.  ``allUsers`` and
    ``allAuthenticatedUsers`` are not consumers and are refused.
    """
    raw = text.strip()
    if not raw:
        raise InvalidPrincipal("empty principal")
    if raw in _PUBLIC or raw.lower() in {p.lower() for p in _PUBLIC}:
        raise InvalidPrincipal(f"{raw}: not a consumer; name the identity that pulls")
    kind, sep, value = raw.partition(":")
    if not sep:
        email = raw.lower()
        if _EMAIL.match(email) and email.endswith("." + _SERVICE_ACCOUNT_DOMAIN):
            return f"serviceAccount:{email}"
        if _EMAIL.match(email):
            raise InvalidPrincipal(
                f"{raw}: say whether this is user:{email} or group:{email}"
                " (only service account emails are accepted bare)"
            )
        raise InvalidPrincipal(
            f"{raw}: not a principal; use serviceAccount:, user:, group: or domain:"
        )
    prefix = _PREFIXES.get(kind.lower())
    if prefix is None:
        raise InvalidPrincipal(
            f"{raw}: unknown principal type {kind!r};"
            " use serviceAccount:, user:, group:, domain:, principal: or principalSet:"
        )
    if prefix in {"principal", "principalSet"}:
        if not value.startswith("//"):
            raise InvalidPrincipal(f"{raw}: expected {prefix}://…")
        return f"{prefix}:{value}"
    value = value.strip().lower()
    if prefix == "domain":
        if not _DOMAIN.match(value):
            raise InvalidPrincipal(f"{raw}: not a domain name")
        return f"domain:{value}"
    if not _EMAIL.match(value):
        raise InvalidPrincipal(f"{raw}: not an email address")
    if prefix == "serviceAccount" and not value.endswith(_SERVICE_ACCOUNT_DOMAIN):
        raise InvalidPrincipal(f"{raw}: service account emails end in {_SERVICE_ACCOUNT_DOMAIN}")
    return f"{prefix}:{value}"


def discover_consumers(
    project_numbers: Iterable[str | int] = (),
    gke_node_service_accounts: Iterable[str] = (),
) -> list[str]:
    """Consumers that pull on behalf of projects: Cloud Run service agents and GKE nodes.

    Each project number gives the Cloud Run service agent
    ``serviceAccount:service-NUMBER@serverless-robot-prod.iam.gserviceaccount.com`` (a
    number, because the agent is named by it; a project ID is refused).  Node service
    accounts are normalised with :func:`normalise_principal`.  Duplicates are dropped,
    order is kept.
    """
    found: list[str] = []
    for number in project_numbers:
        text = str(number).strip()
        if not text.isdigit():
            raise InvalidPrincipal(
                f"{number!r}: the Cloud Run service agent is named by the project *number*"
                " (gcloud projects describe PROJECT --format='value(projectNumber)')"
            )
        found.append(
            f"serviceAccount:service-{int(text)}@serverless-robot-prod.iam.gserviceaccount.com"
        )
    found.extend(normalise_principal(sa) for sa in gke_node_service_accounts)
    return list(dict.fromkeys(found))


# -- destinations ----------------------------------------------------------------------------


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


# -- fixes -----------------------------------------------------------------------------------


def gcloud_fix(repository: Repository, member: str, role: str = READER_ROLE) -> str:
    """The gcloud command that grants ``role`` on the repository to ``member``."""
    return shlex.join(
        [
            "gcloud",
            "artifacts",
            "repositories",
            "add-iam-policy-binding",
            repository.repository,
            f"--location={repository.location}",
            f"--project={repository.project}",
            f"--member={member}",
            f"--role={role}",
        ]
    )


def terraform_fix(member: str) -> str:
    """The entry to add to the armirror module's ``consumers`` list (an HCL string)."""
    escaped = member.replace("\\", "\\\\").replace('"', '\\"').replace("${", "$${")
    return f'"{escaped}",'


def terraform_consumers(findings: Iterable[PermissionFinding]) -> str:
    """A ``consumers = [...]`` block with every principal a finding says to add, in order."""
    members = list(dict.fromkeys(f.member for f in findings if f.terraform))
    lines = ["consumers = ["]
    lines += [f"  {terraform_fix(m)}" for m in members]
    lines.append("]")
    return "\n".join(lines)


# -- findings --------------------------------------------------------------------------------


@dataclass
class PermissionFinding:
    """Whether one consumer can pull from one repository, and how to fix it if not."""

    member: str
    status: Status
    destination: str
    repository: str | None = None
    detail: str = ""
    #: Where a grant was found: ``"repository: roles/artifactregistry.writer"``.
    via: list[str] = field(default_factory=list)
    gcloud: str | None = None
    terraform: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Verdict:
    grants: list[str] = field(default_factory=list)
    maybe: list[str] = field(default_factory=list)


def _email_domain(member: str) -> str | None:
    _, _, value = member.partition(":")
    return value.rpartition("@")[2] if "@" in value else None


def _coverage(member: str, binding_member: str) -> Literal["yes", "maybe", "no"]:
    """Whether one member of a binding includes the consumer ``member``."""
    if binding_member in _PUBLIC:
        return "yes"
    if binding_member.startswith("deleted:"):
        return "no"
    kind, _, value = binding_member.partition(":")
    kind_norm = _PREFIXES.get(kind.lower(), kind)
    if kind_norm in {"principal", "principalSet"}:
        if f"{kind_norm}:{value}" == member:
            return "yes"
        # A principal set (a workload or workforce pool, or goog/public:all) may hold it.
        return "maybe" if kind_norm == "principalSet" else "no"
    candidate = f"{kind_norm}:{value.lower()}"
    if candidate == member:
        return "yes"
    consumer_kind = member.partition(":")[0]
    if kind_norm == "group":
        # Users, service accounts and groups can all be members of a group.
        return "maybe" if consumer_kind in {"user", "serviceAccount", "group"} else "no"
    if kind_norm == "domain" and consumer_kind == "user":
        # The user's email domain is the domain itself, or possibly one of its aliases.
        return "yes" if _email_domain(member) == value.lower() else "maybe"
    # A domain does not hold service accounts or groups.
    return "no"


def _judge(member: str, policy: policy_pb2.Policy, level: str, verdict: _Verdict) -> None:
    for binding in policy.bindings:
        known = binding.role in READER_ROLES
        custom = not binding.role.startswith("roles/")
        if not (known or custom):
            continue
        conditional = binding.HasField("condition") and bool(
            binding.condition.expression or binding.condition.title
        )
        for binding_member in binding.members:
            cover = _coverage(member, binding_member)
            if cover == "no":
                continue
            where = f"{level}: {binding.role}"
            through = "" if binding_member == member else f" through {binding_member}"
            if known and cover == "yes" and not conditional:
                verdict.grants.append(where + through)
                continue
            reasons = []
            if custom:
                reasons.append("custom role, whose permissions armirror does not read")
            if conditional:
                title = binding.condition.title or binding.condition.expression
                reasons.append(f"only if condition {title!r} holds")
            if cover == "maybe":
                reasons.append(f"if it is a member of {binding_member}")
            verdict.maybe.append(f"{where}{through} ({'; '.join(reasons)})")


# -- clients ---------------------------------------------------------------------------------


def _is_loopback(endpoint: str) -> bool:
    host = endpoint.rsplit(":", 1)[0].strip("[]") if ":" in endpoint else endpoint
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _channel(endpoint: str | None, channel: grpc.Channel | None) -> grpc.Channel | None:
    if channel is not None:
        return channel
    if endpoint is not None and _is_loopback(endpoint):
        import grpc

        return grpc.insecure_channel(endpoint)
    return None


def artifact_registry_client(
    *, endpoint: str | None = None, channel: grpc.Channel | None = None
) -> ArtifactRegistryClient:
    """An ArtifactRegistryClient: Google's by default, or one at ``endpoint`` / on ``channel``.

    A loopback ``endpoint`` (``127.0.0.1:PORT``) is spoken to over plain gRPC without
    credentials (a local stand-in); any other endpoint uses TLS and application default
    credentials.
    """
    from google.cloud.artifactregistry_v1 import ArtifactRegistryClient
    from google.cloud.artifactregistry_v1.services.artifact_registry.transports import (
        ArtifactRegistryGrpcTransport,
    )

    chan = _channel(endpoint, channel)
    if chan is not None:
        return ArtifactRegistryClient(transport=ArtifactRegistryGrpcTransport(channel=chan))
    if endpoint is not None:
        return ArtifactRegistryClient(client_options={"api_endpoint": endpoint})
    return ArtifactRegistryClient()


def projects_client(
    *, endpoint: str | None = None, channel: grpc.Channel | None = None
) -> ProjectsClient:
    """A Resource Manager ProjectsClient, like :func:`artifact_registry_client`."""
    from google.cloud.resourcemanager_v3 import ProjectsClient
    from google.cloud.resourcemanager_v3.services.projects.transports import (
        ProjectsGrpcTransport,
    )

    chan = _channel(endpoint, channel)
    if chan is not None:
        return ProjectsClient(transport=ProjectsGrpcTransport(channel=chan))
    if endpoint is not None:
        return ProjectsClient(client_options={"api_endpoint": endpoint})
    return ProjectsClient()


def _policy_request(resource: str) -> Any:
    from google.iam.v1 import iam_policy_pb2, options_pb2

    return iam_policy_pb2.GetIamPolicyRequest(
        resource=resource, options=options_pb2.GetPolicyOptions(requested_policy_version=3)
    )


def _explain(exc: Exception, what: str, needs: str) -> str:
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    if isinstance(exc, auth_exc.DefaultCredentialsError):
        return (
            f"cannot read the IAM policy of {what}: no Google credentials"
            " (gcloud auth application-default login)"
        )
    if isinstance(exc, gexc.NotFound):
        return f"{what} does not exist"
    if isinstance(exc, gexc.PermissionDenied):
        return (
            f"permission denied reading the IAM policy of {what}: the caller needs {needs}"
            " (Google also answers this way when it does not exist)"
        )
    if isinstance(exc, gexc.Unauthenticated):
        return f"cannot read the IAM policy of {what}: the credentials were refused"
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"cannot read the IAM policy of {what}: {message}"


def _recoverable() -> tuple[type[Exception], ...]:
    from google.api_core import exceptions as gexc
    from google.auth import exceptions as auth_exc

    return (gexc.GoogleAPICallError, gexc.RetryError, auth_exc.GoogleAuthError)


# -- the check -------------------------------------------------------------------------------


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

    recoverable = _recoverable()
    try:
        ar = ar_client if ar_client is not None else artifact_registry_client()
        repo_policy = ar.get_iam_policy(
            request=_policy_request(repository.resource), timeout=timeout
        )
    except recoverable as exc:
        detail = _explain(
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
            request=_policy_request(repository.project_resource), timeout=timeout
        )
    except recoverable as exc:
        project_problem = _explain(
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
    verdict = _Verdict()
    _judge(member, repo_policy, "repository", verdict)
    if project_policy is not None:
        _judge(member, project_policy, f"project {repository.project}", verdict)
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
