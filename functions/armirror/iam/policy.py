"""Does a policy grant a consumer a reader role?  One binding member at a time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from armirror.iam.principals import PRINCIPAL_PREFIXES, PUBLIC_MEMBERS

if TYPE_CHECKING:
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


@dataclass
class Verdict:
    """What the bindings say of one consumer: grants that hold, and grants that may."""

    grants: list[str] = field(default_factory=list)
    maybe: list[str] = field(default_factory=list)


def _email_domain(member: str) -> str | None:
    _, _, value = member.partition(":")
    return value.rpartition("@")[2] if "@" in value else None


def _coverage(member: str, binding_member: str) -> Literal["yes", "maybe", "no"]:
    """Whether one member of a binding includes the consumer ``member``."""
    if binding_member in PUBLIC_MEMBERS:
        return "yes"
    if binding_member.startswith("deleted:"):
        return "no"
    kind, _, value = binding_member.partition(":")
    kind_norm = PRINCIPAL_PREFIXES.get(kind.lower(), kind)
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


def judge(member: str, policy: policy_pb2.Policy, level: str, verdict: Verdict) -> None:
    """Add what ``policy`` (the ``level``'s) grants ``member`` to ``verdict``."""
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
