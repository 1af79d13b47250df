"""redeploy on Cloud Run: the real google-cloud-run client (gRPC) against the Admin API
stand-in, real registries behind the verify step, the IAM stand-in for the reader check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from armirror import iam
from armirror.cli import cli
from armirror.redeploy import UndoLog, read_undo_file, redeploy, restore
from armirror.redeploy.cloudrun import CloudRun, services_client
from click.testing import CliRunner
from google.cloud import run_v2
from iam_standin import IamStandin, binding, policy
from redeploy_support import Mirror, make_mirror
from standins.cloudrun import CloudRunStandin, service
from standins.registry import Registry

PROJECT, REGION = "shop-prod", "europe-west1"
NAME = f"projects/{PROJECT}/locations/{REGION}/services"
AR_PREFIX = "europe-docker.pkg.dev/mirror-proj/mirror"


@pytest.fixture(scope="module")
def mirror(source_registry: Registry, dest_registry: Registry) -> Mirror:
    return make_mirror(source_registry, dest_registry, ready=2, absent=1)


@pytest.fixture
def standin(mirror: Mirror) -> Iterator[CloudRunStandin]:
    a, b = mirror.ready
    (gone,) = mirror.absent
    services = [
        service(PROJECT, REGION, "web", [("web", a), ("proxy", b)]),
        service(PROJECT, REGION, "api", [("api", b)], revision="api-v7"),
        service(PROJECT, REGION, "legacy", [("legacy", gone)]),
        service(
            PROJECT, REGION, "deployed", [("app", a)], labels={"managed-by": "google-cloud-deploy"}
        ),
        service(PROJECT, "us-central1", "elsewhere", [("x", a)]),
    ]
    with CloudRunStandin(services) as server:
        yield server


def cloud_run(standin: CloudRunStandin, **kwargs: object) -> CloudRun:
    return CloudRun(services_client(standin.endpoint), project=PROJECT, regions=(REGION,), **kwargs)  # type: ignore[arg-type]


def images(standin: CloudRunStandin, name: str) -> list[str]:
    return [c.image for c in standin.services[f"{NAME}/{name}"].template.containers]


def statuses(report: object) -> dict[str, str]:
    return {w.name: w.status for w in report.workloads}  # type: ignore[attr-defined]


def updates(standin: CloudRunStandin) -> list[run_v2.UpdateServiceRequest]:
    return [r for m, r in standin.requests if m == "UpdateService"]


def test_dry_run_validates_and_changes_nothing(standin: CloudRunStandin, mirror: Mirror) -> None:
    report = redeploy(cloud_run(standin), prefix=mirror.prefix, check_images=mirror.check, dry_run=True)  # fmt: skip
    assert statuses(report) == {
        "web": "would-move",
        "api": "would-move",
        "legacy": "left-alone",
        "deployed": "refused",
    }
    web = next(w for w in report.workloads if w.name == "web")
    a, b = mirror.ready
    assert [(c.name, c.before, c.after) for c in web.containers] == [
        ("web", a, mirror.mirrored(a)),
        ("proxy", b, mirror.mirrored(b)),
    ]
    assert web.namespace == f"{PROJECT}/{REGION}"
    sent = updates(standin)
    assert len(sent) == 2 and all(r.validate_only for r in sent)
    assert images(standin, "web") == [a, b]
    assert standin.services[f"{NAME}/web"].generation == 1
    deployed = next(w for w in report.workloads if w.name == "deployed")
    assert deployed.manager == "Cloud Deploy" and "armirror rewrite" in deployed.reason
    legacy = next(w for w in report.workloads if w.name == "legacy")
    assert legacy.containers[0].reason.startswith("missing in the mirror")


def test_move_wait_undo_and_a_second_run(standin: CloudRunStandin, mirror: Mirror, tmp_path: Path) -> None:  # fmt: skip
    a, b = mirror.ready
    path = tmp_path / "undo.json"
    platform = cloud_run(standin)
    report = redeploy(
        platform,
        prefix=mirror.prefix,
        check_images=mirror.check,
        undo=UndoLog(path, "cloud-run", {"project": PROJECT}),
        wait=30,
    )
    assert statuses(report)["web"] == "moved" and statuses(report)["api"] == "moved"
    assert next(w for w in report.workloads if w.name == "web").rollout == "ready"
    assert images(standin, "web") == [mirror.mirrored(a), mirror.mirrored(b)]
    # Each update carried the etag that was read; the named revision was left to Cloud Run.
    assert all(r.service.etag == '"gen-1"' for r in updates(standin))
    api = next(r for r in updates(standin) if r.service.name.endswith("/api"))
    assert api.service.template.revision == ""
    assert standin.services[f"{NAME}/api"].latest_ready_revision.endswith("api-00002-new")
    entry = next(e for e in read_undo_file(path).entries if e.name == "web")
    assert (entry.version, entry.generation, entry.generation_after) == ('"gen-1"', 1, 2)

    standin.requests.clear()
    again = redeploy(platform, prefix=mirror.prefix, check_images=mirror.check, undo=UndoLog(tmp_path / "2.json", "cloud-run", {}))  # fmt: skip
    assert statuses(again)["web"] == "already" and statuses(again)["api"] == "already"
    assert updates(standin) == []

    # Someone deploys api again by hand; undo restores web and leaves api alone.
    standin.edit(f"{NAME}/api", lambda s: s.template.containers[0].__setattr__("image", "redis:8"))
    undone = restore(cloud_run(standin), read_undo_file(path), wait=30)
    assert statuses(undone) == {"web": "restored", "api": "refused"}
    assert images(standin, "web") == [a, b]
    assert images(standin, "api") == ["redis:8"]
    assert "redis:8" in next(w for w in undone.workloads if w.name == "api").reason


def test_a_service_changed_in_between_is_a_conflict(standin: CloudRunStandin, mirror: Mirror, tmp_path: Path) -> None:  # fmt: skip
    def someone_deploys() -> None:
        standin.edit(f"{NAME}/web", lambda s: s.labels.__setitem__("team", "checkout"))

    standin.before_update = someone_deploys
    report = redeploy(cloud_run(standin), prefix=mirror.prefix, check_images=mirror.check, undo=UndoLog(tmp_path / "u.json", "cloud-run", {}))  # fmt: skip
    web = next(w for w in report.workloads if w.name == "web")
    assert web.status == "conflict" and "etag" in web.reason
    assert images(standin, "web") == mirror.ready
    assert standin.services[f"{NAME}/web"].labels["team"] == "checkout"
    assert not report.ok


def test_wait_reports_a_revision_that_cannot_pull(standin: CloudRunStandin, mirror: Mirror, tmp_path: Path) -> None:  # fmt: skip
    standin.unpullable.add(mirror.mirrored(mirror.ready[1]))
    report = redeploy(cloud_run(standin), prefix=mirror.prefix, check_images=mirror.check, undo=UndoLog(tmp_path / "u.json", "cloud-run", {}), wait=30)  # fmt: skip
    api = next(w for w in report.workloads if w.name == "api")
    assert api.status == "failed" and "not found" in api.reason and mirror.mirrored(mirror.ready[1]) in api.reason  # fmt: skip


def test_the_service_agent_must_be_able_to_read_the_mirror(standin: CloudRunStandin, mirror: Mirror) -> None:  # fmt: skip
    agent = "serviceAccount:service-123456789012@serverless-robot-prod.iam.gserviceaccount.com"
    with IamStandin(
        repositories={"projects/mirror-proj/locations/europe/repositories/mirror": policy()},
        projects={"projects/mirror-proj": policy(binding("roles/viewer", "user:ops@example.com"))},
    ) as server:
        clients = {
            "ar_client": iam.artifact_registry_client(endpoint=server.endpoint),
            "projects_client": iam.projects_client(endpoint=server.endpoint),
        }
        report = redeploy(
            cloud_run(standin, project_number="123456789012"),
            prefix=mirror.prefix,
            check_images=mirror.check,
            check_readers=lambda consumers: iam.check_readers(AR_PREFIX, consumers, **clients),
            dry_run=True,
        )
    web = next(w for w in report.workloads if w.name == "web")
    assert web.status == "left-alone"
    assert all(c.status == "left" and agent in c.reason for c in web.containers)
    assert "gcloud artifacts repositories add-iam-policy-binding" in web.containers[0].reason
    assert updates(standin) == []


def test_the_command_line(standin: CloudRunStandin, mirror: Mirror, tmp_path: Path) -> None:
    base = ["redeploy", "--cloud-run", "--project", PROJECT, "--region", REGION, "--to", mirror.prefix,
            "--cloud-run-endpoint", standin.endpoint, "--upstream", f"docker.io={mirror.upstreams['docker.io']}",
            "--store", f"duckdb://{tmp_path}/s.duckdb", "--format", "json"]  # fmt: skip
    dry = CliRunner().invoke(cli, [*base, "--dry-run"])
    assert dry.exit_code == 1, dry.output  # legacy's image is missing, deployed is managed
    assert json.loads(dry.stdout)["summary"]["by_status"] == {"left-alone": 1, "refused": 1, "would-move": 2}  # fmt: skip
    moved = CliRunner().invoke(cli, [*base, "--undo-file", str(tmp_path / "u.json"), "--wait"])
    assert json.loads(moved.stdout)["summary"]["by_status"]["moved"] == 2
    undone = CliRunner().invoke(cli, ["redeploy", "--undo", str(tmp_path / "u.json"), "--cloud-run-endpoint", standin.endpoint, "--store", f"duckdb://{tmp_path}/s.duckdb"])  # fmt: skip
    assert undone.exit_code == 0, undone.output
    assert "Service shop-prod/europe-west1/web  restored" in undone.stdout
    assert images(standin, "web") == mirror.ready
