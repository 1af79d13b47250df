"""What each kind of entry gives, field by field: Cloud Run audit entries and kubelet
events, with the labels present, missing or unusable, and every skip with its text and
the insertId it belongs to."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from armirror.events import PullEvent, parse_log_entry

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CLOUD_RUN = json.loads((FIXTURES / "cloudrun-audit-replace-service.json").read_text())
KUBELET = json.loads((FIXTURES / "gke-pull-events.jsonl").read_text().splitlines()[0])
NGINX = "docker.io/nginxinc/nginx-unprivileged:1.27-alpine"


def cloud_run(**proto: Any) -> dict[str, Any]:
    raw = copy.deepcopy(CLOUD_RUN)
    raw["protoPayload"].update(proto)
    return raw


def skip_of(raw: dict[str, Any]) -> tuple[str, str, str | None]:
    result = parse_log_entry(raw)
    assert result.events == []
    [skip] = result.skipped
    return skip.code, skip.detail, skip.insert_id


def test_a_cloud_run_deploy_gives_one_event_per_image_with_where_it_ran() -> None:
    first = parse_log_entry(CLOUD_RUN).events[0]
    assert first == PullEvent(
        insert_id="audit001#0",
        event_time=datetime(2026, 10, 1, 9, 0, tzinfo=UTC),
        reason="deployed",
        image="nginxinc/nginx-unprivileged:1.27-alpine",
        reference=NGINX,
        registry="docker.io",
        repository="nginxinc/nginx-unprivileged",
        registry_class="third_party",
        third_party=True,
        project_id="example-prod",
        location="europe-west1",
        service="checkout",
        source="cloud_run",
    )


def test_without_labels_the_service_and_project_come_from_the_names() -> None:
    raw = copy.deepcopy(CLOUD_RUN)
    raw["resource"]["labels"] = {}
    for resource_name in (
        "namespaces/example-prod/services/checkout",
        "projects/example-prod/locations/europe-west1/services/checkout/revisions/r-1",
    ):
        raw["protoPayload"]["resourceName"] = resource_name
        event = parse_log_entry(raw).events[0]
        assert (event.service, event.project_id, event.location) == (
            "checkout",
            "example-prod",
            None,
        )
    raw["protoPayload"]["resourceName"] = "namespaces/example-prod/jobs/nightly"
    assert parse_log_entry(raw).events[0].service is None


@pytest.mark.parametrize("code", [None, 0])
def test_a_request_with_an_ok_status_deploys(code: int | None) -> None:
    raw = cloud_run(status={"code": code} if code is not None else {})
    assert [e.reference for e in parse_log_entry(raw).events][:1] == [NGINX]


@pytest.mark.parametrize(
    ("proto", "skip"),
    [
        (
            {"methodName": "google.cloud.run.v1.Services.DeleteService"},
            ("unsupported_resource", "Cloud Run google.cloud.run.v1.Services.DeleteService"),
        ),
        ({"methodName": None}, ("unsupported_resource", "Cloud Run None")),
        (
            {"methodName": "x" * 100},
            ("unsupported_resource", "Cloud Run " + "x" * 64),
        ),
        ({"status": {"code": 1, "message": "cancelled"}}, ("request_failed", "cancelled")),
        ({"status": {"code": 7}}, ("request_failed", "")),
        ({"status": {"code": 3, "message": "m" * 100}}, ("request_failed", "m" * 80)),
        (
            {"request": {}},
            ("no_images", "google.cloud.run.v1.Services.ReplaceService"),
        ),
    ],
)
def test_a_cloud_run_entry_that_deploys_nothing_says_why(
    proto: dict[str, Any], skip: tuple[str, str]
) -> None:
    assert skip_of(cloud_run(**proto)) == (*skip, "audit001")


def test_a_cloud_run_entry_without_a_usable_time() -> None:
    raw = copy.deepcopy(CLOUD_RUN)
    raw["timestamp"] = "yesterday"
    assert skip_of(raw) == ("bad_timestamp", "'yesterday'", "audit001")
    del raw["timestamp"]
    assert skip_of(raw) == ("missing_field", "timestamp", "audit001")
    [event, *_] = parse_log_entry(raw, fallback_time="2026-10-01T09:30:00Z").events
    assert event.event_time == datetime(2026, 10, 1, 9, 30, tzinfo=UTC)


def test_a_v2_request_without_a_spec_level_lists_its_containers() -> None:
    raw = cloud_run(
        methodName="google.cloud.run.v2.Services.UpdateService",
        request={"service": {"template": {"containers": [{"image": "quay.io/o/a:1"}, "x"]}}},
    )
    assert [e.reference for e in parse_log_entry(raw).events] == ["quay.io/o/a:1"]
