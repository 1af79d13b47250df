"""One consumer's finding, and the gcloud command and Terraform entry that fix it."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from armirror.iam.policy import READER_ROLE
from armirror.iam.repository import Repository

Status = Literal["ok", "missing", "cannot-tell", "error"]


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
