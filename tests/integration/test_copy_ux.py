"""copy as users of crane, skopeo and regctl expect it (issue 15 §4 §5 §6 §7).

A dry run's plan, whole repositories by tag list, results the report sees, and output
that keeps names whole.  Real registries throughout; a fault proxy in front of the
source counts the manifest GETs a copy really sends, against what the plan predicted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
from faultproxy import FaultProxy
from registry_checks import ACCEPT, ROOT, cli_env, unique
from standins import images
from standins.registry import Registry


def armirror(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "armirror.cli", *args],
        capture_output=True, text=True, env=env or cli_env(), cwd=ROOT, timeout=180,
    )  # fmt: skip


def manifest_status(registry: Registry, repository: str, reference: str) -> int:
    return httpx.head(
        f"{registry.url}/v2/{repository}/manifests/{reference}",
        headers={"Accept": ACCEPT},
    ).status_code


def test_dry_run_plans_with_heads_and_predicts_the_manifest_gets(
    source_registry: Registry, dest_registry: Registry
) -> None:
    prefix = f"{dest_registry.host}/{unique('plan')}"
    done = images.single_image(unique("library/done"), "1", seed=1101)
    signed = images.sign(
        images.multi_arch_image(unique("library/signed"), "1", seed=1102), seed=1103
    )
    plain = images.single_image(unique("library/plain"), "1", seed=1104, layer_sizes=(5000, 70000))
    for image in (done, signed, plain):
        images.push(source_registry.url, image)
    with FaultProxy(source_registry.url) as proxy:
        upstream = ["--upstream", f"docker.io={proxy.url}"]
        host = proxy.url.split("://", 1)[1]  # GETs are counted per endpoint host
        assert armirror("copy", f"{done.repository}:1", "--to", prefix, *upstream).returncode == 0
        proxy.clear()
        names = [f"{i.repository}:1" for i in (done, signed, plain)]

        planned = armirror(
            "copy", *names, "--to", prefix, "--dry-run", "--format", "json", *upstream
        )
        assert planned.returncode == 0, planned.stderr
        plan = {row["source"]: row for row in json.loads(planned.stdout)}
        # The up-to-date image cost HEADs only: no GET of any manifest.
        assert plan[f"docker.io/{done.repository}:1"]["status"] == "up-to-date"
        assert plan[f"docker.io/{done.repository}:1"]["manifest_gets"] == {}
        assert proxy.count("GET", rf"/{done.repository}/manifests/") == 0
        # Nothing was written anywhere.
        for image in (signed, plain):
            destination = f"{prefix.split('/', 1)[1]}/docker.io/{image.repository}"
            assert manifest_status(dest_registry, destination, "1") == 404

        # The plan's bytes are the bytes the copy moves; its GETs are the GETs it sends.
        row = plan[f"docker.io/{plain.repository}:1"]
        assert row["status"] == "would-copy"
        assert row["bytes_to_move"] == sum(b.size for b in plain.all_blobs())
        proxy.clear()
        copied = armirror("copy", *names, "--to", prefix, "--format", "json", *upstream)
        assert copied.returncode == 0, copied.stderr
        results = {r["source"]: r for r in json.loads(copied.stdout)}
        assert results[f"docker.io/{plain.repository}:1"]["bytes_copied"] == row["bytes_to_move"]
        for image in (signed, plain):
            predicted = plan[f"docker.io/{image.repository}:1"]["manifest_gets"]
            sent = proxy.count("GET", rf"/v2/{image.repository}/manifests/")
            assert predicted == {host: sent}, (image.repository, predicted, sent)
            assert results[f"docker.io/{image.repository}:1"]["manifest_gets"] == predicted
        assert plan[f"docker.io/{signed.repository}:1"]["manifest_gets"][host] >= 3

    upstream = ["--upstream", f"docker.io={source_registry.url}"]
    table = armirror("copy", *names, "--to", prefix, "--dry-run", *upstream)
    assert "dry run: 0 would copy" in table.stderr and "3 up-to-date" in table.stderr


def test_all_tags_and_tags_regex_through_one_tag_list(
    source_registry: Registry, dest_registry: Registry
) -> None:
    prefix = f"{dest_registry.host}/{unique('tags')}"
    repository = unique("team/app")
    pushed = {}
    for n, tag in enumerate(["1.0", "1.1", "2.0"]):
        image = images.single_image(repository, tag, seed=1200 + n)
        if tag == "1.0":
            image = images.sign(image, seed=1210)  # a .sig tag travels with its image
        pushed[tag] = images.push(source_registry.url, image)
    upstream = ["--upstream", f"docker.io={source_registry.url}"]
    destination = f"{prefix.split('/', 1)[1]}/docker.io/{repository}"

    too_many = armirror(
        "copy", repository, "--to", prefix, "--all-tags", "--max-tags", "2", *upstream
    )
    assert too_many.returncode == 2
    assert "3 tags match, more than --max-tags 2" in too_many.stderr
    assert manifest_status(dest_registry, destination, "1.0") == 404  # nothing by halves

    some = armirror(
        "copy", repository, "--to", prefix, "--tags", r"1\..*", "--format", "json", *upstream
    )
    assert some.returncode == 0, some.stderr
    assert sorted(r["source"].rsplit(":", 1)[1] for r in json.loads(some.stdout)) == ["1.0", "1.1"]
    assert manifest_status(dest_registry, destination, "2.0") == 404
    sig = f"{pushed['1.0'].replace(':', '-')}.sig"
    assert manifest_status(dest_registry, destination, sig) == 200

    every = armirror(
        "copy", repository, "--to", prefix, "--all-tags", "--format", "json", *upstream
    )
    statuses = {r["source"].rsplit(":", 1)[1]: r["status"] for r in json.loads(every.stdout)}
    assert statuses == {"1.0": "up-to-date", "1.1": "up-to-date", "2.0": "copied"}


def test_copies_are_recorded_for_the_report(
    source_registry: Registry, dest_registry: Registry, tmp_path: Path
) -> None:
    prefix = f"{dest_registry.host}/{unique('recorded')}"
    image = images.single_image(unique("library/recorded"), "1", seed=1301)
    images.push(source_registry.url, image)
    env = cli_env(XDG_DATA_HOME=str(tmp_path / "data"))
    upstream = ["--upstream", f"docker.io={source_registry.url}"]
    name = f"{image.repository}:1"
    absent = f"{unique('library/absent')}:1"

    # --no-record: nothing in the store.
    assert armirror("copy", name, "--to", prefix, "--no-record", *upstream, env=env).returncode == 0
    assert not (tmp_path / "data" / "armirror" / "armirror.duckdb").exists()
    # By default: the same DuckDB file pulls and report use.
    for _ in range(2):
        armirror("copy", name, absent, "--to", prefix, *upstream, env=env)
    report = armirror("report", "--format", "json", "--since", "1d", env=env)
    assert json.loads(report.stdout)["copies"] == {"failed": 2, "up-to-date": 2}
    text = armirror("report", "--since", "1d", env=env).stdout
    assert "copies: 2 failed, 2 up-to-date" in text

    # --store names another.
    other = f"duckdb:///{tmp_path / 'other.duckdb'}"
    assert (
        armirror("copy", name, "--to", prefix, "--store", other, *upstream, env=env).returncode == 0
    )
    report = armirror("report", "--store", other, "--format", "json", "--since", "1d", env=env)
    assert json.loads(report.stdout)["copies"] == {"up-to-date": 1}


def test_output_keeps_names_whole_and_messages_on_stderr(
    source_registry: Registry, dest_registry: Registry
) -> None:
    prefix = f"{dest_registry.host}/{unique('narrow')}"
    image = images.single_image(unique("library/a-rather-long-repository-name"), "1.36", seed=1401)
    digest = images.push(source_registry.url, image)
    upstream = ["--upstream", f"docker.io={source_registry.url}"]
    name = f"{image.repository}:1.36@{digest}"
    env = cli_env(COLUMNS="80", ARMIRROR_PROGRESS_INTERVAL="0.05")
    result = armirror("copy", name, "--to", prefix, *upstream, env=env)
    assert result.returncode == 0, result.stderr
    shown = f"{image.repository.removeprefix('library/')}:1.36@{digest[:19]}"
    assert any(shown in line for line in result.stdout.splitlines()), result.stdout
    assert digest not in result.stdout  # abbreviated on screen, whole in JSON
    assert "1 copied, 0 up-to-date, 0 failed" in result.stderr  # a message, not data
    quiet = armirror("copy", name, "--to", prefix, "-q", *upstream, env=env)
    assert quiet.returncode == 0 and quiet.stderr == ""
