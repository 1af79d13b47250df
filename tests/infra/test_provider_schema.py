"""terraform/ against the google and archive providers' real schemas, offline.

The schemas come from the pinned CDKTF bindings (tests/infra/provider-bindings), installed
into .tools/ on first use; see provider_schema.py.  Each mistake the check exists for is
made on purpose in a copy of the module, and must be reported.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from provider_schema import Finding, check, load_schema
from tfmodel import EXAMPLE, MODULE, ROOT

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def schema() -> dict[str, dict[str, Any]]:
    return load_schema()


def test_the_schema_is_the_pinned_providers(schema: dict[str, dict[str, Any]]) -> None:
    assert schema["versions"] == {"google": "6.50.0", "archive": "2.7.1"}
    # Sanity: the extraction saw the whole provider and knows blocks from arguments.
    assert len(schema["resource"]) > 1000 and len(schema["data"]) > 300
    function = schema["resource"]["google_cloudfunctions2_function"]
    assert function["attributes"]["name"]["required"] is True
    assert "build_config" in function["blocks"] and "labels" in function["attributes"]
    assert "url" in function["read_only"]
    archive = schema["data"]["archive_file"]
    assert archive["attributes"]["type"]["required"] is True
    assert "excludes" in archive["attributes"]


@pytest.mark.parametrize("directory", [MODULE, EXAMPLE], ids=["module", "example"])
def test_terraform_matches_the_provider_schema(
    schema: dict[str, dict[str, Any]], directory: Path
) -> None:
    findings, checked = check(directory, schema)
    assert not findings, "\n".join(map(str, findings))
    assert checked >= (30 if directory == MODULE else 1)


def mutated(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """A copy of the module with one edit in one file (the edit must apply)."""
    copy = tmp_path / "armirror"
    shutil.copytree(MODULE, copy)
    path = copy / file
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {file}"
    path.write_text(text.replace(old, new))
    return copy


def findings_for(tmp_path: Path, schema: Any, file: str, old: str, new: str) -> list[Finding]:
    findings, _ = check(mutated(tmp_path, file, old, new), schema)
    return findings


def test_a_wrong_argument_name_fails(tmp_path: Path, schema: Any) -> None:
    findings = findings_for(
        tmp_path,
        schema,
        "scheduler.tf",
        "attempt_deadline = ",
        "attempt_dedline  = ",
    )
    assert [(f.address, f.where, f.kind) for f in findings] == [
        ("google_cloud_scheduler_job.refresh", "attempt_dedline", "unknown-argument")
    ]


def test_a_wrong_name_inside_a_nested_block_fails(tmp_path: Path, schema: Any) -> None:
    findings = findings_for(
        tmp_path, schema, "tasks.tf", "max_doublings      =", "max_doubling       ="
    )
    assert [(f.where, f.kind) for f in findings] == [
        ("retry_config.max_doubling", "unknown-argument")
    ]


def test_a_read_only_attribute_is_refused(tmp_path: Path, schema: Any) -> None:
    findings = findings_for(
        tmp_path, schema, "scheduler.tf", "  time_zone        = var.refresh_time_zone\n",
        "  time_zone        = var.refresh_time_zone\n  state            = \"ENABLED\"\n",
    )  # fmt: skip
    assert [(f.where, f.kind) for f in findings] == [("state", "unknown-argument")]
    assert "read-only" in findings[0].message


def test_a_missing_required_argument_fails(tmp_path: Path, schema: Any) -> None:
    findings = findings_for(
        tmp_path, schema, "scheduler.tf", "    http_method = \"POST\"\n    uri ", "    http_method = \"POST\"\n    urx "
    )  # fmt: skip
    kinds = {(f.address, f.where, f.kind) for f in findings}
    assert ("google_cloud_scheduler_job.refresh", "http_target.urx", "unknown-argument") in kinds
    assert ("google_cloud_scheduler_job.refresh", "http_target", "missing-required") in kinds


def test_a_block_written_as_an_attribute_fails(tmp_path: Path, schema: Any) -> None:
    findings = findings_for(
        tmp_path,
        schema,
        "scheduler.tf",
        "  retry_config {\n",
        "  retry_config = {\n",
    )
    assert [(f.where, f.kind) for f in findings] == [("retry_config", "block-as-attribute")]


def test_an_attribute_written_as_a_block_fails(tmp_path: Path, schema: Any) -> None:
    findings = findings_for(
        tmp_path,
        schema,
        "scheduler.tf",
        '    headers     = { "Content-Type" = "application/json" }\n',
        '    headers {\n      x = "y"\n    }\n',
    )
    assert [(f.where, f.kind) for f in findings] == [("http_target.headers", "attribute-as-block")]


def test_a_dynamic_block_is_checked_like_a_block(tmp_path: Path, schema: Any) -> None:
    findings = findings_for(
        tmp_path, schema, "registry.tf", '        tag_state  = "UNTAGGED"', '        tag_stat   = "UNTAGGED"'
    )  # fmt: skip
    assert [(f.where, f.kind) for f in findings] == [
        ("dynamic.cleanup_policies.condition.tag_stat", "unknown-argument")
    ]


def test_an_unknown_resource_type_fails(tmp_path: Path, schema: Any) -> None:
    findings = findings_for(
        tmp_path,
        schema,
        "scheduler.tf",
        'resource "google_cloud_scheduler_job" "refresh"',
        'resource "google_cloud_scheduler_jobs" "refresh"',
    )
    assert [(f.address, f.kind) for f in findings] == [
        ("google_cloud_scheduler_jobs.refresh", "unknown-type")
    ]


def test_a_deprecated_argument_is_reported(tmp_path: Path, schema: Any) -> None:
    (tmp_path / "main.tf").write_text(
        'resource "google_gke_hub_feature_membership" "m" {\n'
        '  location   = "global"\n'
        '  feature    = "configmanagement"\n'
        '  membership = "m"\n'
        "  configmanagement {\n"
        "    config_sync {\n"
        '      metrics_gcp_service_account_email = "x@p.iam.gserviceaccount.com"\n'
        "    }\n"
        "  }\n"
        "}\n"
    )
    findings, checked = check(tmp_path, schema)
    assert checked == 1
    assert [(f.where, f.kind) for f in findings] == [
        ("configmanagement.config_sync.metrics_gcp_service_account_email", "deprecated")
    ]


def test_the_script_fails_on_a_finding(tmp_path: Path) -> None:
    import subprocess
    import sys

    copy = mutated(tmp_path, "scheduler.tf", "attempt_deadline = ", "attempt_dedline  = ")
    script = ROOT / "tests" / "infra" / "provider_schema.py"
    bad = subprocess.run([sys.executable, str(script), str(copy)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "attempt_dedline: unknown-argument" in bad.stdout
    good = subprocess.run(
        [sys.executable, str(script), str(MODULE)], capture_output=True, text=True
    )
    assert good.returncode == 0, good.stdout + good.stderr
