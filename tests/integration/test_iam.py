"""Reader permissions against a local gRPC IAM stand-in, through the real client libraries.

The stand-in (tests/iam_standin.py) implements ArtifactRegistry.GetIamPolicy and
Projects.GetIamPolicy with the real protobuf types; armirror's clients reach it over an
insecure channel on 127.0.0.1, exactly as they would reach Google with credentials.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from armirror.iam import (
    PermissionFinding,
    artifact_registry_client,
    check_readers,
    discover_consumers,
    projects_client,
)
from google.cloud.artifactregistry_v1 import ArtifactRegistryClient
from google.cloud.resourcemanager_v3 import ProjectsClient
from iam_standin import AR_SERVICE, PROJECTS_SERVICE, IamStandin, binding, policy

PROJECT = "mirror-prod"
PREFIX = f"europe-west1-docker.pkg.dev/{PROJECT}/mirror"
REPO = f"projects/{PROJECT}/locations/europe-west1/repositories/mirror"
GROUPED = f"projects/{PROJECT}/locations/europe-west1/repositories/grouped"
LOCKED = "projects/locked-proj/locations/us/repositories/mirror"
HALF = "projects/half-open/locations/us/repositories/mirror"


def sa(name: str, project: str = "consumer-a") -> str:
    return f"serviceAccount:{name}@{project}.iam.gserviceaccount.com"


DIRECT = sa("direct-reader")
WRITER = sa("copier", PROJECT)
PROJECT_READER = sa("project-reader")
CONDITIONAL = sa("temporary")
CUSTOM = sa("custom-role")
NOBODY = sa("nobody")
IN_GROUP = sa("maybe-in-group")
GKE_NODES = "gke-nodes@consumer-b.iam.gserviceaccount.com"  # a bare email: normalised
RUN_AGENT_NUMBER = 123456789012
RUN_AGENT = (
    f"serviceAccount:service-{RUN_AGENT_NUMBER}@serverless-robot-prod.iam.gserviceaccount.com"
)
OWNER = "user:alice@example.com"
DOMAIN_USER = "user:bob@example.org"
GONE = sa("gone")


@pytest.fixture(scope="module")
def standin() -> Iterator[IamStandin]:
    repositories = {
        REPO: policy(
            binding("roles/artifactregistry.reader", DIRECT, f"deleted:{GONE}?uid=1234567"),
            binding("roles/artifactregistry.writer", WRITER),
            binding(
                "roles/artifactregistry.reader",
                CONDITIONAL,
                condition='request.time < timestamp("2027-01-01T00:00:00Z")',
            ),
            binding(f"projects/{PROJECT}/roles/imagePuller", CUSTOM),
            binding("roles/artifactregistry.reader", "domain:example.org"),
            # Not a reader role: does not count.
            binding("roles/logging.logWriter", NOBODY),
        ),
        GROUPED: policy(
            binding("roles/artifactregistry.reader", "group:pullers@example.com"),
            binding("roles/artifactregistry.repoAdmin", DIRECT),
        ),
        LOCKED: grpc.StatusCode.PERMISSION_DENIED,
        HALF: policy(binding("roles/artifactregistry.reader", DIRECT)),
    }
    projects = {
        f"projects/{PROJECT}": policy(
            binding("roles/artifactregistry.reader", PROJECT_READER),
            binding("roles/owner", OWNER),
            binding("roles/viewer", CONDITIONAL, condition="resource.name.startsWith('x')"),
            binding("roles/storage.objectViewer", NOBODY, IN_GROUP),
        ),
        "projects/half-open": grpc.StatusCode.PERMISSION_DENIED,
    }
    with IamStandin(repositories, projects) as server:
        yield server


@pytest.fixture
def clients(standin: IamStandin) -> Iterator[tuple[ArtifactRegistryClient, ProjectsClient]]:
    ar = artifact_registry_client(endpoint=standin.endpoint)
    pc = projects_client(endpoint=standin.endpoint)
    yield ar, pc
    ar.transport.close()
    pc.transport.close()


def check(
    prefix: str, consumers: list[str], clients: tuple[ArtifactRegistryClient, ProjectsClient]
) -> dict[str, PermissionFinding]:
    ar, pc = clients
    findings = check_readers(prefix, consumers, ar_client=ar, projects_client=pc)
    assert len(findings) == len(consumers)
    return {f.member: f for f in findings}


def gcloud_for(repository: str, location: str, project: str, member: str) -> str:
    return (
        f"gcloud artifacts repositories add-iam-policy-binding {repository}"
        f" --location={location} --project={project} --member={member}"
        " --role=roles/artifactregistry.reader"
    )


def test_every_outcome_on_one_repository(
    standin: IamStandin, clients: tuple[ArtifactRegistryClient, ProjectsClient]
) -> None:
    consumers = [
        DIRECT,
        WRITER,
        PROJECT_READER,
        OWNER,
        DOMAIN_USER,
        CONDITIONAL,
        CUSTOM,
        NOBODY,
        GONE,
        *discover_consumers([RUN_AGENT_NUMBER], [GKE_NODES]),
    ]
    found = check(f"{PREFIX}/docker.io/library/nginx", consumers, clients)
    status = {member: f.status for member, f in found.items()}
    gke = "serviceAccount:" + GKE_NODES
    assert status == {
        DIRECT: "ok",
        WRITER: "ok",
        PROJECT_READER: "ok",
        OWNER: "ok",
        DOMAIN_USER: "ok",
        CONDITIONAL: "cannot-tell",
        CUSTOM: "cannot-tell",
        NOBODY: "missing",
        GONE: "missing",
        RUN_AGENT: "missing",
        gke: "missing",
    }
    assert found[DIRECT].via == ["repository: roles/artifactregistry.reader"]
    assert found[WRITER].via == ["repository: roles/artifactregistry.writer"]
    assert found[PROJECT_READER].via == [f"project {PROJECT}: roles/artifactregistry.reader"]
    assert found[OWNER].via == [f"project {PROJECT}: roles/owner"]
    assert found[DOMAIN_USER].via == [
        "repository: roles/artifactregistry.reader through domain:example.org"
    ]
    # Both conditional grants (repository reader, project viewer) are named.
    assert len(found[CONDITIONAL].via) == 2
    assert "2027-01-01" in found[CONDITIONAL].detail
    assert "startsWith" in found[CONDITIONAL].detail
    assert "custom role" in found[CUSTOM].detail
    assert "imagePuller" in found[CUSTOM].detail

    for member, finding in found.items():
        assert finding.repository == REPO
        if finding.status == "ok":
            assert finding.gcloud is None and finding.terraform is None
        else:
            assert finding.gcloud == gcloud_for("mirror", "europe-west1", PROJECT, member)
            assert finding.terraform == f'"{member}",'
    assert found[RUN_AGENT].gcloud == (
        "gcloud artifacts repositories add-iam-policy-binding mirror --location=europe-west1"
        " --project=mirror-prod"
        " --member=serviceAccount:service-123456789012"
        "@serverless-robot-prod.iam.gserviceaccount.com"
        " --role=roles/artifactregistry.reader"
    )
    assert "folder and organisation" in found[NOBODY].detail

    # Both policies were asked for at version 3, so conditions come back as conditions.
    asked = {(service, r.resource) for service, r in standin.requests}
    assert (AR_SERVICE, REPO) in asked
    assert (PROJECTS_SERVICE, f"projects/{PROJECT}") in asked
    assert {r.options.requested_policy_version for _, r in standin.requests} == {3}


def test_group_binding_is_cannot_tell(
    clients: tuple[ArtifactRegistryClient, ProjectsClient],
) -> None:
    prefix = f"europe-west1-docker.pkg.dev/{PROJECT}/grouped"
    found = check(prefix, [IN_GROUP, DIRECT, "group:pullers@example.com", OWNER], clients)
    assert found[IN_GROUP].status == "cannot-tell"
    assert "group:pullers@example.com" in found[IN_GROUP].detail
    assert found[IN_GROUP].gcloud == gcloud_for("grouped", "europe-west1", PROJECT, IN_GROUP)
    assert found[DIRECT].status == "ok"  # repoAdmin contains reader
    assert found["group:pullers@example.com"].status == "ok"
    assert found[OWNER].status == "ok"  # project owner, even though a group might hold it too


def test_unknown_repository_is_an_error(
    clients: tuple[ArtifactRegistryClient, ProjectsClient],
) -> None:
    found = check(f"europe-west1-docker.pkg.dev/{PROJECT}/nope", [DIRECT, NOBODY], clients)
    for finding in found.values():
        assert finding.status == "error"
        assert finding.detail == (
            f"repository projects/{PROJECT}/locations/europe-west1/repositories/nope does not exist"
        )
        assert finding.gcloud is None


def test_permission_denied_on_repository_is_an_error(
    clients: tuple[ArtifactRegistryClient, ProjectsClient],
) -> None:
    found = check("us-docker.pkg.dev/locked-proj/mirror", [DIRECT], clients)
    finding = found[DIRECT]
    assert finding.status == "error"
    assert finding.detail.startswith(
        f"permission denied reading the IAM policy of repository {LOCKED}"
    )
    assert "artifactregistry.repositories.getIamPolicy" in finding.detail


def test_unreadable_project_policy_leaves_repository_grants_ok(
    clients: tuple[ArtifactRegistryClient, ProjectsClient],
) -> None:
    found = check("us-docker.pkg.dev/half-open/mirror", [DIRECT, NOBODY], clients)
    assert found[DIRECT].status == "ok"
    assert found[NOBODY].status == "cannot-tell"
    assert "permission denied reading the IAM policy of project half-open" in found[NOBODY].detail
    assert found[NOBODY].gcloud == gcloud_for("mirror", "us", "half-open", NOBODY)


def test_not_artifact_registry_asks_nothing(
    standin: IamStandin, clients: tuple[ArtifactRegistryClient, ProjectsClient]
) -> None:
    before = len(standin.requests)
    for prefix in ("docker.io/library", "gcr.io/p/mirror", "us-docker.pkg.dev/only-project"):
        found = check(prefix, [DIRECT], clients)
        assert found[DIRECT].status == "error"
        assert found[DIRECT].repository is None
        assert prefix in found[DIRECT].detail
    assert len(standin.requests) == before


def test_malformed_consumer_is_its_own_error(
    clients: tuple[ArtifactRegistryClient, ProjectsClient],
) -> None:
    ar, pc = clients
    findings = check_readers(
        PREFIX, ["someone@example.com", DIRECT], ar_client=ar, projects_client=pc
    )
    assert [f.status for f in findings] == ["error", "ok"]
    assert findings[0].member == "someone@example.com"
    assert "user:someone@example.com or group:someone@example.com" in findings[0].detail
    assert findings[0].to_json()["status"] == "error"


def test_to_json(clients: tuple[ArtifactRegistryClient, ProjectsClient]) -> None:
    found = check(PREFIX, [NOBODY], clients)
    assert found[NOBODY].to_json() == {
        "member": NOBODY,
        "status": "missing",
        "destination": PREFIX,
        "repository": REPO,
        "detail": found[NOBODY].detail,
        "via": [],
        "gcloud": gcloud_for("mirror", "europe-west1", PROJECT, NOBODY),
        "terraform": f'"{NOBODY}",',
    }


def test_channel_injection(standin: IamStandin) -> None:
    channel = grpc.insecure_channel(standin.endpoint)
    try:
        found = check_readers(
            PREFIX,
            [PROJECT_READER],
            ar_client=artifact_registry_client(channel=channel),
            projects_client=projects_client(channel=channel),
        )
    finally:
        channel.close()
    assert [f.status for f in found] == ["ok"]
