"""Offline checks of terraform/: formatting, parsing, checkov, least privilege, and that
the module agrees with the code it deploys (entry points, environment, schemas, filter)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from armirror import config
from tfmodel import (
    EXAMPLE,
    FUNCTIONS,
    MODULE,
    ROOT,
    TERRAFORM,
    block,
    expr,
    locals_,
    of_kind,
    outputs,
    parse,
    resolve_local,
    resource,
    resources,
    tf_files,
    unquote,
    variables,
)

PRIMITIVE_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
PUBLIC_MEMBERS = {"allUsers", "allAuthenticatedUsers"}


# --- tools -----------------------------------------------------------------------------


def test_terraform_fmt() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed (no package registry here ships it)")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"},
        check=False,
    )
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}"


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tf_file_parses(path: Path) -> None:
    assert isinstance(parse(path), dict)


def test_checkov_reports_no_failed_checks() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "infra" / "local" / "checkov.sh"), "--output", "json"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.stdout.strip(), f"checkov printed nothing:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert result.returncode == 0, result.stderr[-3000:]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 20, "checkov scanned suspiciously little"
    for r in reports:
        for skipped in r.get("results", {}).get("skipped_checks", []):
            reason = skipped.get("check_result", {}).get("suppress_comment", "")
            assert len(reason) >= 40, f"{skipped['check_id']} skipped without a real reason"


def test_checkov_skips_are_inline_with_reasons() -> None:
    script = (ROOT / "infra" / "local" / "checkov.sh").read_text()
    assert "--skip-check" not in script and "--soft-fail" not in script
    assert "--skip-download" in script
    for path in tf_files():
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                match = re.search(r"#checkov:skip=(CKV2?_[A-Z]+_\d+):(.+)$", line)
                assert match, f"{path.name}: malformed skip: {line.strip()}"
                assert len(match.group(2).strip()) >= 40, f"{path.name}: skip without reason"


# --- least privilege --------------------------------------------------------------------


def iam_grants() -> list[Any]:
    return [r for r in resources() if re.search(r"_iam_(member|binding|policy)$", r.kind)]


def test_no_primitive_roles_and_no_public_members_anywhere() -> None:
    texts = [p.read_text() for p in tf_files()]
    texts.append((ROOT / "cloudbuild.yaml").read_text())
    for text in texts:
        for role in PRIMITIVE_ROLES:
            assert f'"{role}"' not in text
        for member in PUBLIC_MEMBERS:
            assert f'"{member}"' not in text
    for grant in iam_grants():
        assert grant.kind.endswith("_iam_member"), f"{grant.address}: use additive _iam_member"
        assert grant.get("role") not in PRIMITIVE_ROLES
        assert grant.get("member") not in PUBLIC_MEMBERS


def test_member_inputs_refuse_public_principals() -> None:
    for name in ("consumers", "request_copy_invokers"):
        validation = block(variables()[name]["validation"])
        pattern = re.search(r'regex\("([^"]+)"', validation["condition"])
        assert pattern, name
        regex = pattern.group(1).replace("\\\\", "\\")
        assert re.match(regex, "serviceAccount:gke@p.iam.gserviceaccount.com")
        for public in PUBLIC_MEMBERS:
            assert not re.match(regex, public), f"{name} accepts {public}"


# Every grant the module makes: resource name -> (role, member expression, for_each).
EXPECTED_GRANTS = {
    "sink_publisher": (
        "roles/pubsub.publisher",
        "google_logging_organization_sink.pull_events.writer_identity",
        None,
    ),
    "dead_letter_publisher": ("roles/pubsub.publisher", "local.pubsub_service_agent", None),
    "store_writer": (
        "roles/bigquery.dataEditor",
        "google_service_account.functions[each.key].member",
        "local.function_accounts",
    ),
    "store_jobs": (
        "roles/bigquery.jobUser",
        "google_service_account.functions[each.key].member",
        "local.function_accounts",
    ),
    "enqueuers": (
        "roles/cloudtasks.enqueuer",
        "google_service_account.functions[each.key].member",
        "local.enqueuers",
    ),
    "enqueuers_act_as_tasks": (
        "roles/iam.serviceAccountUser",
        "google_service_account.functions[each.key].member",
        "local.enqueuers",
    ),
    "copier_writer": (
        "roles/artifactregistry.writer",
        'google_service_account.functions["copy_image"].member',
        None,
    ),
    "consumers": ("roles/artifactregistry.reader", "each.value", "toset(var.consumers)"),
    "tasks_invokes_copy_image": ("roles/run.invoker", "google_service_account.tasks.member", None),
    "scheduler_invokes_refresh": (
        "roles/run.invoker",
        "google_service_account.scheduler.member",
        None,
    ),
    "eventarc_invokes_on_pull_event": (
        "roles/run.invoker",
        'google_service_account.functions["on_pull_event"].member',
        None,
    ),
    "request_copy_invokers": (
        "roles/run.invoker",
        "each.value",
        "toset(var.request_copy_invokers)",
    ),
}


def test_grants_are_exactly_the_listed_roles() -> None:
    grants = {}
    for grant in iam_grants():
        for_each = grant.body.get("for_each")
        grants[grant.name] = (
            grant.get("role"),
            expr(grant.body["member"]),
            expr(for_each) if for_each else None,
        )
    assert grants == EXPECTED_GRANTS


def test_grants_sit_on_the_narrowest_resource() -> None:
    on = {g.name: g for g in iam_grants()}
    # The one project-level grant: BigQuery jobs have no smaller scope.
    assert [g.name for g in iam_grants() if g.kind == "google_project_iam_member"] == ["store_jobs"]
    assert on["enqueuers_act_as_tasks"].get("service_account_id") == (
        "${google_service_account.tasks.name}"
    )
    assert on["enqueuers"].get("name") == "${google_cloud_tasks_queue.copy.name}"
    assert on["tasks_invokes_copy_image"].get("name") == (
        "${google_cloudfunctions2_function.copy_image.name}"
    )
    assert on["scheduler_invokes_refresh"].get("name") == (
        "${google_cloudfunctions2_function.refresh.name}"
    )
    assert on["eventarc_invokes_on_pull_event"].get("name") == (
        "${google_cloudfunctions2_function.on_pull_event.name}"
    )
    assert on["request_copy_invokers"].get("name") == (
        "${google_cloudfunctions2_function.request_copy.name}"
    )
    assert on["store_writer"].get("dataset_id") == ("${google_bigquery_dataset.pulls.dataset_id}")
    assert on["sink_publisher"].get("topic") == "${google_pubsub_topic.pull_events.name}"


def test_one_service_account_per_function() -> None:
    accounts = locals_()["function_accounts"]
    assert set(accounts) == set(FUNCTIONS)
    ids = [unquote(a["id"]) for a in accounts.values()]
    ids += [
        resource("google_service_account", "tasks").get("account_id"),
        resource("google_service_account", "scheduler").get("account_id"),
    ]
    assert len(set(ids)) == len(ids) == 6
    for name in FUNCTIONS:
        service = block(function(name).body["service_config"])
        assert unquote(service["service_account_email"]) == (
            f'${{google_service_account.functions["{name}"].email}}'
        )
    trigger = block(function("on_pull_event").body["event_trigger"])
    assert unquote(trigger["service_account_email"]) == (
        '${google_service_account.functions["on_pull_event"].email}'
    )


def test_enqueuers_are_the_functions_that_queue_copies() -> None:
    assert expr(locals_()["enqueuers"]) == 'toset(["on_pull_event", "request_copy", "refresh"])'


# --- the functions ----------------------------------------------------------------------


def function(name: str) -> Any:
    return resource("google_cloudfunctions2_function", name)


def main_entry_points() -> dict[str, str]:
    """Top-level functions of functions/main.py -> their functions_framework decorator."""
    tree = ast.parse((ROOT / "functions" / "main.py").read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                text = ast.unparse(decorator)
                if text.startswith("functions_framework."):
                    found[node.name] = text.removeprefix("functions_framework.")
    return found


def test_four_functions_with_entry_points_in_main_py() -> None:
    defined = {r.name for r in of_kind("google_cloudfunctions2_function")}
    assert defined == set(FUNCTIONS)
    entry_points = main_entry_points()
    for name in FUNCTIONS:
        build = block(function(name).body["build_config"])
        assert unquote(build["runtime"]) == "python312"
        entry = unquote(build["entry_point"])
        assert entry in entry_points, f"{entry} is not a functions_framework entry in main.py"
        kind = "cloud_event" if "event_trigger" in function(name).body else "http"
        assert entry_points[entry] == kind, f"{entry}: main.py says {entry_points[entry]}"
        source = block(block(build["source"])["storage_source"])
        assert unquote(source["object"]) == "${local.build_source.object}"


def test_on_pull_event_is_triggered_by_the_sink_topic_with_retry() -> None:
    trigger = block(function("on_pull_event").body["event_trigger"])
    assert unquote(trigger["event_type"]) == "google.cloud.pubsub.topic.v1.messagePublished"
    assert unquote(trigger["pubsub_topic"]) == "${google_pubsub_topic.pull_events.id}"
    assert unquote(trigger["retry_policy"]) == "RETRY_POLICY_RETRY"


def test_ingress_is_as_narrow_as_each_caller_allows() -> None:
    ingress = {
        name: unquote(block(function(name).body["service_config"])["ingress_settings"])
        for name in FUNCTIONS
    }
    # Eventarc, Cloud Tasks and Cloud Scheduler in the same project are internal traffic.
    assert ingress["on_pull_event"] == "ALLOW_INTERNAL_ONLY"
    assert ingress["copy_image"] == "ALLOW_INTERNAL_ONLY"
    assert ingress["refresh"] == "ALLOW_INTERNAL_ONLY"
    # People call request_copy; the adopter chooses, IAM guards it either way.
    assert ingress["request_copy"] == "${var.request_copy_ingress}"


def function_env(name: str) -> dict[str, Any]:
    service = block(function(name).body["service_config"])
    env = resolve_local(unquote(service["environment_variables"]))
    assert isinstance(env, dict), f"{name}: environment_variables is not a map: {env!r}"
    return env


def test_environment_is_what_config_reads() -> None:
    for name in FUNCTIONS:
        env = function_env(name)
        unknown = set(env) - set(config.ENV_VARS)
        assert not unknown, f"{name} sets variables config.py does not read: {unknown}"
        missing = config.REQUIRED_IN_CLOUD - set(env)
        assert not missing, f"{name} lacks required variables: {missing}"


# Sample values for the references Terraform resolves at apply time.
SAMPLE_REFERENCES = {
    "local.repository_url": "europe-docker.pkg.dev/platform/armirror",
    "var.project_id": "platform",
    "var.region": "europe-west1",
    "local.names.copy_image": "armirror-copy-image",
    "google_bigquery_dataset.pulls.dataset_id": "armirror",
    "local.queue_url": "cloudtasks://projects/platform/locations/europe-west1/queues/armirror-copy",
    "local.copy_url": "https://europe-west1-platform.cloudfunctions.net/armirror-copy-image",
    "google_service_account.tasks.email": "armirror-tasks@platform.iam.gserviceaccount.com",
    'join(",", var.allow)': "docker.io/*,quay.io/*",
    'join(",", var.deny)': "docker.io/library/*:latest",
    "tostring(var.mirror_threshold)": "3",
    "google_cloud_tasks_queue.copy.id": (
        "projects/platform/locations/europe-west1/queues/armirror-copy"
    ),
}


def render(value: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        inner = match.group(1)
        assert inner in SAMPLE_REFERENCES, f"no sample value for ${{{inner}}}"
        return SAMPLE_REFERENCES[inner]

    return re.sub(r"\$\{([^{}]+)\}", substitute, unquote(value))


def test_environment_values_load_in_config() -> None:
    for name in FUNCTIONS:
        rendered = {key: render(value) for key, value in function_env(name).items()}
        settings = config.load(rendered)
        settings.require_cloud()
        assert settings.store == "bigquery://platform/armirror"
        assert settings.queue.startswith("cloudtasks://projects/platform/locations/")
        assert settings.destination == "europe-docker.pkg.dev/platform/armirror"
        assert settings.mirror_threshold == 3
    # The queue URL and copy URL are built from the resources they name.
    table = locals_()
    assert unquote(table["queue_url"]) == "cloudtasks://${google_cloud_tasks_queue.copy.id}"
    assert unquote(table["copy_url"]) == (
        "https://${var.region}-${var.project_id}.cloudfunctions.net/${local.names.copy_image}"
    )
    check = block(parse(MODULE / "functions.tf")["check"][0]['"copy_url_is_deployed_url"'])
    assert "google_cloudfunctions2_function.copy_image.url == local.copy_url" in str(check)


def test_copy_url_creates_no_dependency_cycle() -> None:
    """copy_image's own environment must not reference copy_image."""
    text = json.dumps(function("copy_image").body)
    assert "google_cloudfunctions2_function.copy_image" not in text
    common = json.dumps(locals_()["common_env"])
    assert "google_cloudfunctions2_function" not in common


# --- the other resources ----------------------------------------------------------------


def test_organisation_sink_reads_the_filter_from_infra() -> None:
    sink = resource("google_logging_organization_sink", "pull_events")
    assert sink.get("include_children") is True
    assert sink.get("org_id") == "${var.org_id}"
    assert sink.get("destination") == (
        "pubsub.googleapis.com/${google_pubsub_topic.pull_events.id}"
    )
    assert sink.get("filter") == "${local.sink_filter}"
    assert 'file("${local.infra_dir}/sink-filter.txt")' in expr(locals_()["sink_filter"])


def test_default_paths_point_into_this_repository() -> None:
    table = locals_()
    for local, var, target in (
        ("infra_dir", "infra_dir", ROOT / "infra"),
        ("functions_dir", "functions_source_dir", ROOT / "functions"),
    ):
        match = re.fullmatch(
            rf'coalesce\(var\.{var}, "\$\{{path\.module\}}/([^"]+)"\)', expr(table[local])
        )
        assert match, f"local.{local}: {table[local]}"
        assert (MODULE / match.group(1)).resolve() == target


def test_bigquery_tables_and_views_come_from_infra_bigquery() -> None:
    table = locals_()
    assert unquote(table["bigquery_dir"]) == "${local.infra_dir}/bigquery"
    assert 'fileset(local.bigquery_dir, "*.json")' in expr(table["table_files"])
    assert 'fileset(local.bigquery_dir, "*.sql")' in expr(table["view_files"])
    tables = resource("google_bigquery_table", "tables")
    assert tables.get("for_each") == "${local.table_files}"
    assert tables.get("schema") == "${file(each.value)}"
    views = resource("google_bigquery_table", "views")
    assert views.get("for_each") == "${local.view_files}"
    view = block(views.body["view"])
    assert expr(view["query"]).startswith("templatefile(each.value, {")
    assert view["use_legacy_sql"] is False


BIGQUERY = ROOT / "infra" / "bigquery"


def schema_fields(name: str) -> dict[str, str]:
    path = BIGQUERY / f"{name}.json"
    fields = json.loads(path.read_text())
    assert isinstance(fields, list), f"{path}: not a BigQuery JSON schema (a list of fields)"
    return {f["name"]: f["type"].upper() for f in fields}


def test_partitioning_and_clustering_use_fields_of_the_schema_files() -> None:
    layout = locals_()["table_layout"]
    pull_events = layout["pull_events"]
    assert unquote(pull_events["partition_field"]) == "event_time"
    assert [unquote(c) for c in pull_events["clustering"]] == ["registry", "repository"]
    present = {p.stem for p in BIGQUERY.glob("*.json")}
    if "pull_events" not in present:
        pytest.skip("infra/bigquery/pull_events.json is not written yet")
    for name, spec in layout.items():
        if name not in present:
            continue
        fields = schema_fields(name)
        partition = unquote(spec["partition_field"])
        assert fields.get(partition) in {"TIMESTAMP", "DATE", "DATETIME"}, (name, partition)
        for column in spec["clustering"]:
            assert unquote(column) in fields, f"{name}: no clustering column {column}"
    assert "copies" in present, "infra/bigquery/copies.json is missing"


@pytest.mark.parametrize("path", sorted(BIGQUERY.glob("*.json")), ids=lambda p: p.name)
def test_schema_files_are_bigquery_json_schemas(path: Path) -> None:
    fields = json.loads(path.read_text())
    assert isinstance(fields, list) and fields
    for field in fields:
        assert re.fullmatch(r"[A-Za-z_]\w*", field["name"]), field
        assert field["type"].upper() in {
            "STRING",
            "BYTES",
            "INTEGER",
            "INT64",
            "FLOAT",
            "FLOAT64",
            "NUMERIC",
            "BIGNUMERIC",
            "BOOLEAN",
            "BOOL",
            "TIMESTAMP",
            "DATE",
            "TIME",
            "DATETIME",
            "GEOGRAPHY",
            "JSON",
            "RECORD",
            "STRUCT",
            "RANGE",
        }, field
        assert field.get("mode", "NULLABLE").upper() in {"NULLABLE", "REQUIRED", "REPEATED"}


def test_views_render_with_the_template_variables_terraform_passes() -> None:
    views = sorted(BIGQUERY.glob("*.sql"))
    query = expr(block(resource("google_bigquery_table", "views").body["view"])["query"])
    passed = set(re.findall(r"(\w+)\s*=", query.split("{", 1)[1]))
    for path in views:
        text = path.read_text()
        assert "%{" not in text, f"{path.name}: template directives are not expected"
        used = set(re.findall(r"\$\{(\w+)\}", text))
        assert used <= passed, f"{path.name} uses ${{{used - passed}}}, Terraform passes {passed}"
        leftover = re.sub(r"\$\{\w+\}", "", text)
        assert "${" not in leftover, f"{path.name}: a ${{...}} Terraform cannot render"
        # BigQuery refuses a view whose tables are not qualified with their dataset.
        sql = re.sub(r"--[^\n]*", "", text)
        sql = re.sub(r"\b(?:EXTRACT|TRIM)\s*\([^()]*\)", "", sql, flags=re.IGNORECASE)
        ctes = set(re.findall(r"(?:\bWITH|,)\s+(\w+)\s+AS\s*\(", sql, re.IGNORECASE))
        for target in re.findall(r"\b(?:FROM|JOIN)\s+([`\w.${}-]+)", sql, re.IGNORECASE):
            name = target.strip("`")
            if name in ctes or name.upper() in {"UNNEST"}:
                continue
            assert "." in name, f"{path.name}: table {name} is not qualified with its dataset"


def test_queue_has_rate_limits_and_retries() -> None:
    queue = resource("google_cloud_tasks_queue", "copy")
    limits = block(queue.body["rate_limits"])
    assert unquote(limits["max_dispatches_per_second"]) == (
        "${var.queue.max_dispatches_per_second}"
    )
    retry = block(queue.body["retry_config"])
    assert set(retry) - {"__is_block__"} == {
        "max_attempts",
        "max_retry_duration",
        "min_backoff",
        "max_backoff",
        "max_doublings",
    }
    default = expr(variables()["queue"]["type"])
    found = re.search(r"max_dispatches_per_second\s*=\s*optional\(number,\s*([\d.]+)", default)
    assert found, default
    rate = float(found.group(1))
    # At the default rate six hours' dispatches stay under Docker Hub's anonymous limit of 100
    # pulls per 6 hours.
    assert rate * 6 * 3600 <= 100


def test_scheduler_calls_refresh_with_oidc() -> None:
    job = resource("google_cloud_scheduler_job", "refresh")
    target = block(job.body["http_target"])
    uri = "${google_cloudfunctions2_function.refresh.service_config[0].uri}"
    assert unquote(target["uri"]) == uri
    token = block(target["oidc_token"])
    assert unquote(token["service_account_email"]) == "${google_service_account.scheduler.email}"
    assert unquote(token["audience"]) == uri
    assert job.get("schedule") == "${var.refresh_schedule}"


def test_repository_readers_and_optional_creation() -> None:
    repo = resource("google_artifact_registry_repository", "mirror")
    assert repo.get("count") == "${var.create_repository ? 1 : 0}"
    assert repo.get("format") == "DOCKER"
    assert "cleanup_policies" in str(repo.body.get("dynamic"))
    consumers = resource("google_artifact_registry_repository_iam_member", "consumers")
    assert consumers.get("repository") == "${local.repository_name}"


def test_required_apis_are_enabled() -> None:
    services = expr(locals_()["services"])
    for api in (
        "artifactregistry",
        "bigquery",
        "cloudbuild",
        "cloudfunctions",
        "cloudscheduler",
        "cloudtasks",
        "eventarc",
        "logging",
        "pubsub",
        "run",
    ):
        assert f'"{api}.googleapis.com"' in services


def test_outputs_and_inputs() -> None:
    assert {"topic", "dataset", "queue", "repository_url", "request_copy_url"} <= set(outputs())
    declared = variables()
    for name in (
        "org_id",
        "project_id",
        "region",
        "repository_location",
        "repository_id",
        "create_repository",
        "untagged_retention_days",
        "allow",
        "deny",
        "mirror_threshold",
        "consumers",
        "queue",
        "refresh_schedule",
        "labels",
        "partition_expiration_days",
    ):
        assert name in declared, f"missing input {name}"
    for name, body in declared.items():
        assert unquote(body.get("description", "")), f"variable {name} has no description"
        assert "type" in body, f"variable {name} has no type"
    for name, body in outputs().items():
        assert unquote(body.get("description", "")), f"output {name} has no description"


def test_example_uses_the_module_with_every_required_input() -> None:
    modules = [m for entry in parse(EXAMPLE / "main.tf")["module"] for m in entry.values()]
    assert len(modules) == 1
    module = modules[0]
    assert unquote(module["source"]) == "../../modules/armirror"
    required = {name for name, body in variables().items() if "default" not in body}
    assert required == {"org_id", "project_id", "region"}
    assert required <= set(module)
    for key in set(module) - {"source", "__is_block__"}:
        assert key in variables(), f"example passes unknown input {key}"


def test_readme_documents_every_input_and_output() -> None:
    readme = (MODULE / "README.md").read_text()
    for name in variables():
        assert f"| `{name}` |" in readme, f"README lacks input {name}"
    for name in outputs():
        assert f"| `{name}` |" in readme, f"README lacks output {name}"
    assert "```mermaid" in readme or "```text" in readme, "README lacks the flow diagram"
