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
    resolve_env,
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
    "dead_letter_forwarder": ("roles/pubsub.subscriber", "local.pubsub_service_agent", None),
    "pubsub_agent_mints_push_tokens": (
        "roles/iam.serviceAccountTokenCreator",
        "local.pubsub_service_agent",
        None,
    ),
    "build_logs": ("roles/logging.logWriter", "google_service_account.build.member", None),
    "build_images": (
        "roles/artifactregistry.writer",
        "google_service_account.build.member",
        None,
    ),
    "build_reads_source": (
        "roles/storage.objectViewer",
        "google_service_account.build.member",
        None,
    ),
    "build_function_sources": (
        "roles/storage.objectAdmin",
        "google_service_account.build.member",
        None,
    ),
    "store": (
        "${each.value.role}",
        "google_service_account.functions[each.value.function].member",
        "local.store_access",
    ),
    "store_jobs": (
        "roles/bigquery.jobUser",
        "google_service_account.functions[each.key].member",
        "local.store_queriers",
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
    "ingest_reader": (
        "roles/artifactregistry.reader",
        'google_service_account.functions["on_pull_event"].member',
        None,
    ),
    "consumers": ("roles/artifactregistry.reader", "each.value", "toset(var.consumers)"),
    "registry_readers": (
        "roles/secretmanager.secretAccessor",
        "google_service_account.functions[each.key].member",
        "local.registry_readers",
    ),
    "tasks_invokes_copy_image": ("roles/run.invoker", "google_service_account.tasks.member", None),
    "scheduler_invokes_refresh": (
        "roles/run.invoker",
        "google_service_account.scheduler.member",
        None,
    ),
    "push_invokes_on_pull_event": (
        "roles/run.invoker",
        "google_service_account.push.member",
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
    # Project-level grants only where no narrower scope exists: BigQuery jobs, log writing,
    # and the build's source bucket (created by Cloud Functions), which a condition narrows.
    project_level = sorted(g.name for g in iam_grants() if g.kind == "google_project_iam_member")
    assert project_level == ["build_function_sources", "build_logs", "store_jobs"]
    condition = block(on["build_function_sources"].body["condition"])
    assert unquote(condition["expression"]) == (
        'resource.name.startsWith(\\"projects/_/buckets/gcf-v2-sources-'
        '${data.google_project.this.number}-${var.region}\\")'
    )
    assert on["enqueuers_act_as_tasks"].get("service_account_id") == (
        "${google_service_account.tasks.name}"
    )
    assert on["enqueuers"].get("name") == "${google_cloud_tasks_queue.copy.name}"
    for name, function in (
        ("tasks_invokes_copy_image", "copy_image"),
        ("scheduler_invokes_refresh", "refresh"),
        ("push_invokes_on_pull_event", "on_pull_event"),
        ("request_copy_invokers", "request_copy"),
    ):
        assert on[name].get("name") == f"${{google_cloudfunctions2_function.{function}.name}}"
    assert on["store"].get("table_id") == "${local.store_tables[each.value.table].table_id}"
    assert on["store"].get("dataset_id") == "${google_bigquery_dataset.pulls.dataset_id}"
    assert on["sink_publisher"].get("topic") == "${google_pubsub_topic.pull_events.name}"
    assert on["dead_letter_publisher"].get("topic") == "${google_pubsub_topic.dead_letter.name}"
    assert on["dead_letter_forwarder"].get("subscription") == (
        "${google_pubsub_subscription.pull_events.name}"
    )
    assert on["build_images"].get("repository") == (
        "${google_artifact_registry_repository.builds.name}"
    )
    assert on["build_reads_source"].get("bucket") == "${google_storage_bucket.source.name}"
    assert on["ingest_reader"].get("repository") == "${local.repository_name}"
    assert on["registry_readers"].get("secret_id") == (
        "${google_secret_manager_secret.registry_credentials.secret_id}"
    )


def store_access() -> dict[str, set[tuple[str, str]]]:
    """Function -> {(table or view, role)} in the pull store."""
    found: dict[str, set[tuple[str, str]]] = {}
    for entry in locals_()["store_access"].values():
        found.setdefault(unquote(entry["function"]), set()).add(
            (unquote(entry["table"]), unquote(entry["role"]))
        )
    return found


def test_request_copy_holds_no_bigquery_role() -> None:
    """request_copy faces callers from outside: it can neither read nor rewrite the records."""
    assert "request_copy" not in store_access()
    assert "request_copy" not in expr(locals_()["store_queriers"])
    for grant in iam_grants():
        if "bigquery" in str(grant.get("role")) or "bigquery" in grant.kind:
            assert "request_copy" not in json.dumps(grant.body), grant.address
    assert not [g for g in iam_grants() if g.kind == "google_bigquery_dataset_iam_member"], (
        "no function may edit the whole dataset"
    )


def test_each_function_writes_and_reads_only_its_tables() -> None:
    editor, viewer = "roles/bigquery.dataEditor", "roles/bigquery.dataViewer"
    assert store_access() == {
        "on_pull_event": {("pull_events", editor)},  # records events, counts pulls
        "copy_image": {("copies", editor)},  # records copies; reads nothing
        "refresh": {("copies", viewer), ("mirrors", viewer)},  # mirrored tags (view + table)
    }
    assert expr(locals_()["store_queriers"]) == 'toset(["on_pull_event", "refresh"])'
    tables = {p.stem for p in (ROOT / "infra" / "bigquery").glob("*.json")}
    views = {p.stem for p in (ROOT / "infra" / "bigquery").glob("*.sql")}
    for granted in store_access().values():
        for table, _ in granted:
            assert table in tables | views, f"no table or view {table} in infra/bigquery"
    assert expr(locals_()["store_tables"]) == (
        "merge(google_bigquery_table.tables, google_bigquery_table.views)"
    )


def test_one_service_account_per_function() -> None:
    accounts = locals_()["function_accounts"]
    assert set(accounts) == set(FUNCTIONS)
    ids = [unquote(a["id"]) for a in accounts.values()]
    ids += [
        resource("google_service_account", name).get("account_id")
        for name in ("tasks", "scheduler", "push", "build")
    ]
    assert len(set(ids)) == len(ids) == 8
    for name in FUNCTIONS:
        service = block(function(name).body["service_config"])
        assert unquote(service["service_account_email"]) == (
            f'${{google_service_account.functions["{name}"].email}}'
        )


def test_every_function_builds_as_the_build_account_into_the_build_repository() -> None:
    table = locals_()
    assert unquote(table["build_service_account"]) == "${google_service_account.build.id}"
    assert unquote(table["build_repository"]) == (
        "${google_artifact_registry_repository.builds.id}"
    )
    for name in FUNCTIONS:
        build = block(function(name).body["build_config"])
        assert unquote(build["service_account"]) == "${local.build_service_account}", name
        assert unquote(build["docker_repository"]) == "${local.build_repository}", name
        # The build's grants exist before the first build starts.
        depends = " ".join(function(name).body.get("depends_on", []))
        for grant in (
            "google_project_iam_member.build_logs",
            "google_artifact_registry_repository_iam_member.build_images",
            "google_storage_bucket_iam_member.build_reads_source",
            "google_project_iam_member.build_function_sources",
        ):
            assert grant in depends, f"{name} does not wait for {grant}"
    assert "build_service_account" not in variables(), "the build account is the module's own"


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
        # on_pull_event takes the push subscription's messages, which functions-framework
        # turns into the messagePublished CloudEvent; the others are plain HTTP.
        kind = "cloud_event" if name == "on_pull_event" else "http"
        assert entry_points[entry] == kind, f"{entry}: main.py says {entry_points[entry]}"
        source = block(block(build["source"])["storage_source"])
        assert unquote(source["object"]) == "${local.build_source.object}"


def test_on_pull_event_is_fed_by_the_modules_push_subscription() -> None:
    assert "event_trigger" not in function("on_pull_event").body, (
        "Eventarc's subscription keeps 24 h"
    )
    sub = resource("google_pubsub_subscription", "pull_events")
    assert sub.get("topic") == "${google_pubsub_topic.pull_events.id}"
    push = block(sub.body["push_config"])
    url = "${local.on_pull_event_url}"
    assert unquote(push["push_endpoint"]) == url
    token = block(push["oidc_token"])
    assert unquote(token["service_account_email"]) == "${google_service_account.push.email}"
    assert unquote(token["audience"]) == url
    assert unquote(locals_()["on_pull_event_url"]) == (
        "${google_cloudfunctions2_function.on_pull_event.service_config[0].uri}"
    )


def test_events_survive_a_seven_day_outage() -> None:
    week = "604800s"
    sub = resource("google_pubsub_subscription", "pull_events")
    assert sub.get("message_retention_duration") == week
    assert sub.get("retain_acked_messages") is True  # a seek replays what was delivered
    assert unquote(block(sub.body["expiration_policy"])["ttl"]) == ""  # never expires
    assert resource("google_pubsub_topic", "pull_events").get("message_retention_duration") == week
    dead = resource("google_pubsub_subscription", "dead_letter")
    assert dead.get("message_retention_duration") == week
    assert unquote(block(dead.body["expiration_policy"])["ttl"]) == ""
    assert "seek" in expr(outputs()["replay_command"]["value"])


def test_failing_messages_back_off_then_go_to_the_dead_letter_topic() -> None:
    sub = resource("google_pubsub_subscription", "pull_events")
    retry = block(sub.body["retry_policy"])
    assert unquote(retry["minimum_backoff"]) == "${var.pull_event_delivery.minimum_backoff}"
    assert unquote(retry["maximum_backoff"]) == "${var.pull_event_delivery.maximum_backoff}"
    dead = block(sub.body["dead_letter_policy"])
    assert unquote(dead["dead_letter_topic"]) == "${google_pubsub_topic.dead_letter.id}"
    assert unquote(dead["max_delivery_attempts"]) == (
        "${var.pull_event_delivery.max_delivery_attempts}"
    )
    delivery = expr(variables()["pull_event_delivery"]["type"])
    assert re.search(r"max_delivery_attempts\s*=\s*optional\(number,\s*20\)", delivery)
    assert re.search(r'minimum_backoff\s*=\s*optional\(string,\s*"10s"\)', delivery)
    assert re.search(r'maximum_backoff\s*=\s*optional\(string,\s*"600s"\)', delivery)
    # The grants dead-lettering needs exist before the subscription does.
    depends = " ".join(sub.body["depends_on"])
    for needed in (
        "google_pubsub_topic_iam_member.dead_letter_publisher",
        "google_service_account_iam_member.pubsub_agent_mints_push_tokens",
        "google_cloud_run_v2_service_iam_member.push_invokes_on_pull_event",
    ):
        assert needed in depends


def test_the_pubsub_service_agent_may_mint_push_tokens() -> None:
    grant = resource("google_service_account_iam_member", "pubsub_agent_mints_push_tokens")
    assert grant.get("role") == "roles/iam.serviceAccountTokenCreator"
    assert grant.get("service_account_id") == "${google_service_account.push.name}"
    assert unquote(locals_()["pubsub_service_agent"]) == (
        "serviceAccount:service-${data.google_project.this.number}"
        "@gcp-sa-pubsub.iam.gserviceaccount.com"
    )


def test_registry_credentials_are_mounted_only_into_copy_image_and_refresh() -> None:
    secret = "${google_secret_manager_secret.registry_credentials.secret_id}"
    for name in FUNCTIONS:
        service = block(function(name).body["service_config"])
        volumes = service.get("secret_volumes")
        env = resolve_env(unquote(service["environment_variables"]))
        if name in ("copy_image", "refresh"):
            volume = block(volumes)
            assert unquote(volume["secret"]) == secret
            assert unquote(volume["mount_path"]) == "${local.docker_config_dir}"
            version = block(volume["versions"])
            assert unquote(version["path"]) == "config.json"
            assert unquote(version["version"]) == "latest"
            assert env["DOCKER_CONFIG"] == "${local.docker_config_dir}"
        else:
            assert volumes is None, f"{name} must not see the registry credentials"
            assert env == locals_()["common_env"]
    registry_env = expr(locals_()["registry_env"])
    assert registry_env == "merge(local.common_env, {DOCKER_CONFIG = local.docker_config_dir})"
    assert unquote(locals_()["registry_readers"]) == '${toset(["copy_image", "refresh"])}'
    accessor = resource("google_secret_manager_secret_iam_member", "registry_readers")
    assert accessor.get("role") == "roles/secretmanager.secretAccessor"
    # Nothing else in the module names the secret with an IAM grant.
    for grant in iam_grants():
        if "secret" in grant.kind:
            assert grant.name == "registry_readers"
    # A first, empty version lets the functions start before the operator adds one.
    first = resource("google_secret_manager_secret_version", "anonymous")
    assert expr(first.body["secret_data"]) == "jsonencode({auths = {}})"


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
    return resolve_env(unquote(service["environment_variables"]))


def test_copy_image_stops_before_its_timeout() -> None:
    """Its deadline is the function's timeout, so transfers stop (and record where they
    stood) before the platform cuts the call off."""
    assert function_env("copy_image")["ARMIRROR_COPY_DEADLINE"] == (
        "${tostring(var.copy_image.timeout_seconds)}"
    )
    for name in ("on_pull_event", "request_copy", "refresh"):
        assert "ARMIRROR_COPY_DEADLINE" not in function_env(name)


#: Variables read by code other than config.py: the Docker config directory (registry auth).
OTHER_READERS = {"DOCKER_CONFIG"}


def test_environment_is_what_config_reads() -> None:
    for name in FUNCTIONS:
        env = function_env(name)
        unknown = set(env) - set(config.ENV_VARS) - OTHER_READERS
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
    "tostring(var.copy_image.timeout_seconds)": "1500",
    "local.upstreams": "docker.io=https://mirror.gcr.io,https://registry-1.docker.io",
    "local.docker_config_dir": "/etc/armirror/docker",
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


def test_upstreams_send_docker_hub_to_mirror_gcr_first() -> None:
    table = locals_()
    assert unquote(table["upstreams"]) == (
        '${var.docker_hub_mirror == null ? "" : '
        '"docker.io=${var.docker_hub_mirror},https://registry-1.docker.io"}'
    )
    assert unquote(variables()["docker_hub_mirror"]["default"]) == "https://mirror.gcr.io"
    assert expr(table["common_env"]["ARMIRROR_UPSTREAMS"]) == "local.upstreams"


def test_environment_values_load_in_config() -> None:
    for name in FUNCTIONS:
        rendered = {key: render(value) for key, value in function_env(name).items()}
        settings = config.load(rendered)
        settings.require_cloud()
        assert settings.upstreams["docker.io"] == (
            "https://mirror.gcr.io",
            "https://registry-1.docker.io",
        )
        assert settings.copy_deadline == (1500 if name == "copy_image" else 1800)  # default
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
    assert unquote(limits["max_dispatches_per_second"]) == "${local.queue_rate}"
    assert unquote(limits["max_concurrent_dispatches"]) == "${local.queue_concurrency}"
    retry = block(queue.body["retry_config"])
    assert set(retry) - {"__is_block__"} == {
        "max_attempts",
        "max_retry_duration",
        "min_backoff",
        "max_backoff",
        "max_doublings",
    }


# Docker Hub's pull limits per hour (https://docs.docker.com/docker-hub/usage/, 2025).
# The lower of the two figures Docker's pages have given for each plan since 2025:
# anonymous 10 an hour or 100 per 6 hours; Personal 100 an hour or 200 per 6 hours.
DOCKER_HUB_PULLS_PER_HOUR = {"anonymous": 10, "personal": 33, "paid": None}


def test_queue_rates_derive_from_the_docker_hub_plan() -> None:
    table = locals_()
    plans = {k: unquote(v) for k, v in table["docker_hub_pulls_per_hour"].items()}
    assert plans == DOCKER_HUB_PULLS_PER_HOUR
    assert unquote(variables()["docker_hub_plan"]["default"]) == "anonymous"
    pulls_per_copy = table["pulls_per_copy"]
    assert isinstance(pulls_per_copy, int) and pulls_per_copy >= 4
    derived = table["derived_queue"]
    assert expr(derived["max_dispatches_per_second"]) == (
        "local.plan_pulls_per_hour == null ? 1 : "
        "local.plan_pulls_per_hour / local.pulls_per_copy / 3600"
    )
    # An hour's dispatches cost at most the plan's hourly pulls.
    for limit in (10, 33):
        rate = limit / pulls_per_copy / 3600
        assert rate * 3600 * pulls_per_copy <= limit
    assert expr(table["queue_rate"]) == (
        "coalesce(var.queue.max_dispatches_per_second, "
        "local.derived_queue.max_dispatches_per_second)"
    )
    assert expr(table["queue_concurrency"]) == (
        "coalesce(var.queue.max_concurrent_dispatches, "
        "local.derived_queue.max_concurrent_dispatches)"
    )
    # The operator's own numbers win; none are set by default.
    queue_type = expr(variables()["queue"]["type"])
    assert re.search(r"max_dispatches_per_second\s*=\s*optional\(number\)", queue_type)
    assert re.search(r"max_concurrent_dispatches\s*=\s*optional\(number\)", queue_type)


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
        "secretmanager",
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


def test_readme_states_the_guarantees_and_the_threat_model() -> None:
    readme = (MODULE / "README.md").read_text()
    for heading in (
        "## Delivery",
        "## Registry credentials",
        "## Queue rates",
        "## Large images and the 30-minute limit",
        "## Threat model",
        "### Build identity",
    ):
        assert heading in readme, heading
    assert "7 days" in readme and "max_delivery_attempts" in readme
    assert "gcloud secrets versions add" in readme and "access token" in readme
    assert "k8s_pod" in readme and "`allow`" in readme
    assert "https://cloud.google.com/functions/docs/securing/build-custom-sa" in readme
    assert "https://docs.docker.com/docker-hub/usage/" in readme


def test_provider_constraints_match_what_is_checked() -> None:
    """archive >= 2.5 for the glob excludes; google >= 6.50, the schema tests/infra checks."""
    for path in (MODULE / "versions.tf", EXAMPLE / "main.tf"):
        terraform = block(parse(path)["terraform"])
        providers = block(terraform["required_providers"])
        assert unquote(providers["archive"]["version"]) == ">= 2.5, < 3.0", path
        assert unquote(providers["google"]["version"]) == ">= 6.50, < 8.0", path
    excludes = resource_data_archive_excludes()
    assert "**/__pycache__/**" in excludes and "*.egg-info/**" in excludes


def resource_data_archive_excludes() -> list[str]:
    for entry in parse(MODULE / "source.tf")["data"]:
        archive = entry.get('"archive_file"')
        if archive:
            return [unquote(e) for e in archive['"functions"']["excludes"]]
    raise AssertionError("no data.archive_file.functions")


def _readme_table(heading: str) -> list[str]:
    """The first-column names of the module README's table under ``## heading``."""
    text = (MODULE / "README.md").read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([\w-]+)` \|", section, re.M)


def test_the_readme_lists_every_input_and_output_once() -> None:
    inputs, outputs_listed = _readme_table("Inputs"), _readme_table("Outputs")
    assert sorted(inputs) == sorted(variables()), "README Inputs differ from variables.tf"
    assert sorted(outputs_listed) == sorted(outputs()), "README Outputs differ from outputs.tf"
