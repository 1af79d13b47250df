"""armirror verify against real registries: ok, missing, stale, incomplete, and readers."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from iam_standin import IamStandin, binding, policy
from registry_checks import run_cli, unique, verify_json
from standins import images
from standins.registry import Registry


def copy_cli(*args: str) -> None:
    status, _, stderr = run_cli(*args)
    assert status == 0, stderr


def test_each_status_and_the_exit_code(
    source_registry: Registry, dest_registry: Registry, tmp_path: Path
) -> None:
    upstream = ["--upstream", f"docker.io={source_registry.url}"]
    prefix = f"{dest_registry.host}/{unique('verify')}"
    good = images.multi_arch_image(unique("library/good"), "1", seed=901)
    moved = images.single_image(unique("library/moved"), "1", seed=902)
    broken = images.single_image(unique("library/broken"), "1", seed=903)
    absent = images.single_image(unique("library/absent"), "1", seed=904)
    for image in (good, moved, broken, absent):
        images.push(source_registry.url, image)
    names = [f"{i.repository}:1" for i in (good, moved, broken)]
    copy_cli(*names, "--to", prefix, *upstream)

    # The upstream tag moves on; a blob vanishes from the mirror.
    images.push(source_registry.url, images.single_image(moved.repository, "1", seed=912))
    lost = broken.top
    layer = json.loads(lost.raw)["layers"][0]["digest"]
    repository = f"{prefix.split('/', 1)[1]}/docker.io/{broken.repository}"
    deleted = httpx.delete(f"{dest_registry.url}/v2/{repository}/blobs/{layer}")
    assert deleted.status_code == 202

    listing = tmp_path / "images.txt"
    listing.write_text("\n".join([*names, f"{absent.repository}:1"]) + "\n")
    status, report = verify_json("-f", str(listing), "--to", prefix, *upstream)
    by_image = {row["source"].split("/", 1)[1]: row for row in report["images"]}
    assert status == 1 and report["ok"] is False
    assert by_image[f"{good.repository}:1"]["status"] == "ok"
    assert by_image[f"{moved.repository}:1"]["status"] == "stale"
    assert by_image[f"{broken.repository}:1"]["status"] == "incomplete"
    assert layer in by_image[f"{broken.repository}:1"]["detail"]
    assert by_image[f"{absent.repository}:1"]["status"] == "missing"
    assert set(by_image[f"{good.repository}:1"]) >= {"source", "destination", "status", "detail"}

    # Only the good image: exit 0.
    only_good = tmp_path / "good.txt"
    only_good.write_text(f"{good.repository}:1\n")
    status, report = verify_json("-f", str(only_good), "--to", prefix, *upstream)
    assert status == 0 and report["ok"] is True


def test_paths_are_scanned_for_images(
    source_registry: Registry, dest_registry: Registry, tmp_path: Path
) -> None:
    upstream = ["--upstream", f"docker.io={source_registry.url}"]
    prefix = f"{dest_registry.host}/{unique('verify')}"
    image = images.single_image(unique("library/scanned"), "2", seed=905)
    images.push(source_registry.url, image)
    (tmp_path / "Dockerfile").write_text(f"FROM {image.repository}:2\nRUN true\n")
    status, report = verify_json(str(tmp_path), "--to", prefix, *upstream)
    assert status == 1 and [r["status"] for r in report["images"]] == ["missing"]
    copy_cli(f"{image.repository}:2", "--to", prefix, *upstream)
    status, report = verify_json(str(tmp_path), "--to", prefix, *upstream)
    assert status == 0 and [r["status"] for r in report["images"]] == ["ok"]


def test_reader_permissions_through_the_real_client() -> None:
    repo = "projects/proj-one/locations/us/repositories/mirror"
    reader = "serviceAccount:node@consumer.iam.gserviceaccount.com"
    agent = "serviceAccount:service-123@serverless-robot-prod.iam.gserviceaccount.com"
    with IamStandin(
        {repo: policy(binding("roles/artifactregistry.reader", reader))},
        {"projects/proj-one": policy()},
    ) as iam:
        status, report = verify_json(
            "--to", "us-docker.pkg.dev/proj-one/mirror", "--consumer", reader,
            "--discover-project-number", "123", "--iam-endpoint", iam.endpoint,
        )  # fmt: skip
    statuses = {row["member"]: row["status"] for row in report["permissions"]}
    assert statuses == {reader: "ok", agent: "missing"}
    assert status == 1
    fix = next(row for row in report["permissions"] if row["member"] == agent)
    assert "add-iam-policy-binding mirror" in fix["gcloud"] and agent in fix["terraform"]
