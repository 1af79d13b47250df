"""Principal normalisation, destination parsing, fix commands, and policy judgement."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from armirror.iam import (
    READER_ROLES,
    InvalidPrincipal,
    NotArtifactRegistry,
    PermissionFinding,
    Repository,
    check_readers,
    discover_consumers,
    gcloud_fix,
    normalise_principal,
    parse_repository,
    terraform_consumers,
    terraform_fix,
)
from google.api_core import exceptions as gexc
from google.auth.exceptions import DefaultCredentialsError
from google.iam.v1 import policy_pb2

SA = "serviceAccount:nodes@proj-a.iam.gserviceaccount.com"

# -- principals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (SA, SA),
        ("serviceaccount:Nodes@Proj-A.iam.gserviceaccount.com", SA),
        ("  nodes@proj-a.iam.gserviceaccount.com  ", SA),
        ("NODES@PROJ-A.IAM.GSERVICEACCOUNT.COM", SA),
        (
            "123456-compute@developer.gserviceaccount.com",
            "serviceAccount:123456-compute@developer.gserviceaccount.com",
        ),
        (
            "service-42@serverless-robot-prod.iam.gserviceaccount.com",
            "serviceAccount:service-42@serverless-robot-prod.iam.gserviceaccount.com",
        ),
        ("user:Alice@Example.com", "user:alice@example.com"),
        ("USER:alice@example.com", "user:alice@example.com"),
        ("group:Pullers@example.com", "group:pullers@example.com"),
        ("domain:Example.COM", "domain:example.com"),
        (
            "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/*",
            "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/*",
        ),
    ],
)
def test_normalise_principal(given: str, expected: str) -> None:
    assert normalise_principal(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "empty"),
        ("alice@example.com", "user:alice@example.com or group:alice@example.com"),
        ("nodes", "not a principal"),
        ("allUsers", "not a consumer"),
        ("allauthenticatedusers", "not a consumer"),
        ("robot:x@y.com", "unknown principal type"),
        ("serviceAccount:alice@example.com", "end in gserviceaccount.com"),
        ("user:not-an-email", "not an email"),
        ("domain:not a domain", "not a domain"),
        ("principal:iam.googleapis.com/x", "expected principal://"),
    ],
)
def test_normalise_principal_refuses(given: str, message: str) -> None:
    with pytest.raises(InvalidPrincipal, match=message):
        normalise_principal(given)


def test_discover_consumers() -> None:
    assert discover_consumers(
        [123, "000456", 123],
        [
            "nodes@proj-a.iam.gserviceaccount.com",
            SA,
            "serviceAccount:other@p.iam.gserviceaccount.com",
        ],
    ) == [
        "serviceAccount:service-123@serverless-robot-prod.iam.gserviceaccount.com",
        "serviceAccount:service-456@serverless-robot-prod.iam.gserviceaccount.com",
        SA,
        "serviceAccount:other@p.iam.gserviceaccount.com",
    ]
    assert discover_consumers() == []


def test_discover_consumers_wants_project_numbers() -> None:
    with pytest.raises(InvalidPrincipal, match="project \\*number\\*"):
        discover_consumers(["my-project"], [])


# -- destinations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("us-docker.pkg.dev/proj-a/mirror", Repository("us", "proj-a", "mirror")),
        (
            "europe-west1-docker.pkg.dev/proj-a/mirror/docker.io/library/nginx",
            Repository("europe-west1", "proj-a", "mirror"),
        ),
        ("https://asia-docker.pkg.dev/proj-a/m2/", Repository("asia", "proj-a", "m2")),
        (
            "us-docker.pkg.dev/example.com/proj-a/mirror",
            Repository("us", "example.com:proj-a", "mirror"),
        ),
        (
            "us-docker.pkg.dev/example.com:proj-a/mirror",
            Repository("us", "example.com:proj-a", "mirror"),
        ),
    ],
)
def test_parse_repository(prefix: str, expected: Repository) -> None:
    assert parse_repository(prefix) == expected


def test_repository_resource_names() -> None:
    repo = Repository("us", "proj-a", "mirror")
    assert repo.resource == "projects/proj-a/locations/us/repositories/mirror"
    assert repo.project_resource == "projects/proj-a"


@pytest.mark.parametrize(
    "prefix",
    [
        "docker.io/library/nginx",
        "gcr.io/proj-a/mirror",
        "us.gcr.io/proj-a",
        "us-docker.pkg.dev/proj-a",
        "us-docker.pkg.dev",
        "us-python.pkg.dev/proj-a/mirror",
        "us-docker.pkg.dev/Proj_A!/mirror",
        "us-docker.pkg.dev/proj-a/Mirror_Repo",
        "127.0.0.1:5000/mirror",
    ],
)
def test_parse_repository_refuses(prefix: str) -> None:
    with pytest.raises(NotArtifactRegistry):
        parse_repository(prefix)


# -- fixes -----------------------------------------------------------------------------------


def test_gcloud_fix() -> None:
    repo = Repository("europe-west1", "proj-a", "mirror")
    assert gcloud_fix(repo, SA) == (
        "gcloud artifacts repositories add-iam-policy-binding mirror"
        " --location=europe-west1 --project=proj-a"
        " --member=serviceAccount:nodes@proj-a.iam.gserviceaccount.com"
        " --role=roles/artifactregistry.reader"
    )


def test_gcloud_fix_quotes_what_the_shell_would_split() -> None:
    repo = Repository("us", "proj-a", "mirror")
    member = (
        "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/*"
    )
    command = gcloud_fix(repo, member)
    assert shlex.split(command)[-2] == f"--member={member}"
    assert f"'--member={member}'" in command


def test_terraform_fix() -> None:
    assert terraform_fix(SA) == f'"{SA}",'
    assert terraform_fix('user:a"b@x.com') == '"user:a\\"b@x.com",'
    assert terraform_fix("principalSet://x/${y}") == '"principalSet://x/$${y}",'


def test_terraform_consumers_lists_each_fix_once() -> None:
    findings = [
        PermissionFinding(SA, "missing", "p", terraform=terraform_fix(SA)),
        PermissionFinding("user:a@x.com", "ok", "p"),
        PermissionFinding(SA, "missing", "p", terraform=terraform_fix(SA)),
        PermissionFinding(
            "group:g@x.com", "cannot-tell", "p", terraform=terraform_fix("group:g@x.com")
        ),
    ]
    assert terraform_consumers(findings) == (f'consumers = [\n  "{SA}",\n  "group:g@x.com",\n]')


def test_reader_roles_contain_the_documented_list() -> None:
    assert {
        "roles/artifactregistry.reader",
        "roles/artifactregistry.writer",
        "roles/artifactregistry.repoAdmin",
        "roles/artifactregistry.admin",
        "roles/owner",
        "roles/editor",
        "roles/viewer",
    } <= READER_ROLES
    assert "roles/artifactregistry.serviceAgent" not in READER_ROLES
    assert "roles/storage.objectViewer" not in READER_ROLES


# -- judgement with stub clients -------------------------------------------------------------


def _policy(*bindings: tuple[str, list[str]]) -> policy_pb2.Policy:
    return policy_pb2.Policy(
        version=3, bindings=[policy_pb2.Binding(role=r, members=m) for r, m in bindings]
    )


class StubClient:
    """Answers get_iam_policy from a dict of resource -> Policy | exception."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def get_iam_policy(self, *, request: Any, timeout: float) -> policy_pb2.Policy:
        self.asked.append(request.resource)
        answer = self.answers[request.resource]
        if isinstance(answer, Exception):
            raise answer
        return answer


REPO = "projects/proj-a/locations/us/repositories/mirror"
PREFIX = "us-docker.pkg.dev/proj-a/mirror"


def _check(repo_answer: Any, project_answer: Any, consumers: list[str]) -> list[PermissionFinding]:
    ar = StubClient({REPO: repo_answer})
    pc = StubClient({"projects/proj-a": project_answer})
    return check_readers(PREFIX, consumers, ar_client=ar, projects_client=pc)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("member", "binding_member", "status"),
    [
        (SA, "allUsers", "ok"),
        (SA, "allAuthenticatedUsers", "ok"),
        ("user:a@x.com", "allAuthenticatedUsers", "ok"),
        (SA, "serviceAccount:NODES@proj-a.iam.gserviceaccount.com", "ok"),
        (SA, "group:g@x.com", "cannot-tell"),
        ("group:h@x.com", "group:g@x.com", "cannot-tell"),
        ("domain:x.com", "group:g@x.com", "missing"),
        (SA, "domain:proj-a.iam.gserviceaccount.com", "missing"),
        ("user:a@x.com", "domain:x.com", "ok"),
        ("user:a@alias.com", "domain:x.com", "cannot-tell"),
        ("domain:x.com", "domain:x.com", "ok"),
        (SA, f"deleted:{SA}?uid=1", "missing"),
        (
            SA,
            "principalSet://iam.googleapis.com/locations/global/workforcePools/p/*",
            "cannot-tell",
        ),
        (
            SA,
            "principal://iam.googleapis.com/locations/global/workforcePools/p/subject/x",
            "missing",
        ),
    ],
)
def test_binding_members(member: str, binding_member: str, status: str) -> None:
    repo = _policy(("roles/artifactregistry.reader", [binding_member]))
    [finding] = _check(repo, _policy(), [member])
    assert finding.status == status


def test_basic_roles_count_at_project_level() -> None:
    project = _policy(("roles/editor", [SA]), ("roles/viewer", ["user:v@x.com"]))
    findings = _check(_policy(), project, [SA, "user:v@x.com"])
    assert [f.status for f in findings] == ["ok", "ok"]
    assert findings[0].via == ["project proj-a: roles/editor"]


def test_ok_wins_over_maybe_and_lists_every_grant() -> None:
    repo = _policy(
        ("roles/artifactregistry.reader", ["group:g@x.com"]),
        ("roles/artifactregistry.writer", [SA]),
    )
    project = _policy(("roles/artifactregistry.admin", [SA]))
    [finding] = _check(repo, project, [SA])
    assert finding.status == "ok"
    assert finding.via == [
        "repository: roles/artifactregistry.writer",
        "project proj-a: roles/artifactregistry.admin",
    ]


def test_missing_credentials_is_an_error_finding() -> None:
    [finding] = _check(DefaultCredentialsError("no ADC"), _policy(), [SA])
    assert finding.status == "error"
    assert "no Google credentials" in finding.detail
    assert "application-default login" in finding.detail


def test_unauthenticated_and_other_api_errors_are_findings() -> None:
    [finding] = _check(gexc.Unauthenticated("expired"), _policy(), [SA])
    assert finding.status == "error"
    assert "credentials were refused" in finding.detail
    [finding] = _check(gexc.ServiceUnavailable("down for a moment"), _policy(), [SA])
    assert finding.status == "error"
    assert "down for a moment" in finding.detail


def test_project_not_found_makes_a_missing_consumer_cannot_tell() -> None:
    [finding] = _check(_policy(), gexc.NotFound("gone"), [SA])
    assert finding.status == "cannot-tell"
    assert "project proj-a does not exist" in finding.detail


def test_no_consumers_asks_nothing() -> None:
    ar = StubClient({})
    assert check_readers(PREFIX, [], ar_client=ar) == []  # type: ignore[arg-type]
    assert ar.asked == []


def test_duplicate_consumers_are_checked_once() -> None:
    findings = _check(
        _policy(("roles/artifactregistry.reader", [SA])),
        _policy(),
        [SA, "nodes@proj-a.iam.gserviceaccount.com", SA],
    )
    assert [f.member for f in findings] == [SA]
