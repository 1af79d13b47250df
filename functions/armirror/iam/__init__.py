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

The parts: :mod:`.principals` (consumers as IAM members), :mod:`.repository` (the
repository a prefix names), :mod:`.policy` (what a policy grants), :mod:`.clients` (the
policy readers), :mod:`.findings` (findings and their fixes), :mod:`.check` (the check).
"""

from armirror.iam.check import TIMEOUT, check_readers
from armirror.iam.clients import artifact_registry_client, projects_client
from armirror.iam.findings import (
    PermissionFinding,
    Status,
    gcloud_fix,
    terraform_consumers,
    terraform_fix,
)
from armirror.iam.policy import READER_ROLE, READER_ROLES
from armirror.iam.principals import InvalidPrincipal, discover_consumers, normalise_principal
from armirror.iam.repository import NotArtifactRegistry, Repository, parse_repository

__all__ = [
    "READER_ROLE",
    "READER_ROLES",
    "TIMEOUT",
    "InvalidPrincipal",
    "NotArtifactRegistry",
    "PermissionFinding",
    "Repository",
    "Status",
    "artifact_registry_client",
    "check_readers",
    "discover_consumers",
    "gcloud_fix",
    "normalise_principal",
    "parse_repository",
    "projects_client",
    "terraform_consumers",
    "terraform_fix",
]
