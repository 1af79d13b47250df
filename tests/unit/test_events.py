"""armirror.events: LogEntries, Pub/Sub CloudEvents and exported files -> PullEvents or skips."""

from __future__ import annotations

import base64
import copy
import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from armirror import events
from armirror.events import PullEvent, Skip, parse_log_entry
from hypothesis import given, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LINES = (FIXTURES / "gke-pull-events.jsonl").read_text().splitlines()


def entry(message: str, reason: str = "Pulling", **changes: Any) -> dict[str, Any]:
    base = json.loads(LINES[0])
    base["jsonPayload"]["message"] = message
    base["jsonPayload"]["reason"] = reason
    base.update(changes)
    return base


def only_event(result: events.ParseResult) -> PullEvent:
    assert not result.skipped, result.skipped
    assert len(result.events) == 1
    return result.events[0]


def test_fixture_lines_give_each_kind_of_event() -> None:
    results = [events.parse_json(line) for line in LINES]
    kinds = [r.events[0].reason if r.events else r.skipped[0].code for r in results]
    assert kinds == [
        "pulling",
        "pulled",
        "present",
        "pulling",
        "rate_limited",
        "no_image",
        "backoff",
        "pulling",
        "pulled",
        "container_backoff",
    ]


def test_event_fields_come_from_the_entry_and_the_reference_is_normalised() -> None:
    event = only_event(events.parse_json(LINES[0]))
    assert event.insert_id == "sample001"
    assert event.event_time == datetime(2026, 10, 1, 8, 0, 1, tzinfo=UTC)
    assert event.image == "traefik:v3.1"
    assert event.reference == "docker.io/library/traefik:v3.1"
    assert (event.registry, event.repository) == ("docker.io", "library/traefik")
    assert event.third_party and event.registry_class == "third_party"
    assert (event.project_id, event.location, event.cluster) == (
        "example-prod",
        "europe-west1",
        "blue",
    )
    assert (event.namespace, event.pod) == ("payments", "api-5f7c9d")
    assert event.node == "gke-blue-default-pool-1a2b"


def test_new_successfully_pulled_text_carries_size_and_duration() -> None:
    event = only_event(events.parse_json(LINES[1]))
    assert event.reason == "pulled"
    assert event.image_bytes == 48213504
    assert event.pull_seconds == pytest.approx(3.402)


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        ('Successfully pulled image "nginx" in 2.1s', 2.1),
        ('Successfully pulled image "nginx" in 523ms', 0.523),
        ('Successfully pulled image "nginx" in 1m2.5s (1m3s including waiting)', 62.5),
    ],
)
def test_old_successfully_pulled_text_and_go_durations(message: str, seconds: float) -> None:
    event = only_event(parse_log_entry(entry(message, "Pulled")))
    assert event.reason == "pulled"
    assert event.image_bytes is None
    assert event.pull_seconds == pytest.approx(seconds)


def test_already_present_is_its_own_reason_not_a_pull() -> None:
    message = 'Container image "nginx:1.25" already present on machine'
    assert only_event(parse_log_entry(entry(message, "Pulled"))).reason == "present"


@pytest.mark.parametrize(
    "detail",
    [
        # containerd
        'rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/library/'
        'redis:7": failed to copy: httpReadSeeker: failed open: unexpected status code '
        "https://registry-1.docker.io/v2/library/redis/manifests/sha256:aa: 429 Too Many "
        "Requests - Server message: toomanyrequests: You have reached your pull rate limit.",
        # dockershim / Docker
        "rpc error: code = Unknown desc = Error response from daemon: toomanyrequests: You have "
        "reached your pull rate limit. You may increase the limit by authenticating and upgrading",
        # containerd, HEAD request
        'failed to resolve reference "docker.io/library/redis:7": unexpected status from HEAD '
        "request to https://registry-1.docker.io/v2/library/redis/manifests/7: "
        "429 Too Many Requests",
    ],
)
def test_rate_limit_forms(detail: str) -> None:
    message = f'Failed to pull image "redis:7": {detail}'
    event = only_event(parse_log_entry(entry(message, "Failed")))
    assert event.reason == "rate_limited"
    assert event.reference == "docker.io/library/redis:7"


def test_other_failures_are_failed() -> None:
    message = 'Failed to pull image "redis:7": rpc error: code = NotFound desc = not found'
    assert only_event(parse_log_entry(entry(message, "Failed"))).reason == "failed"


@pytest.mark.parametrize(
    ("message", "reason", "code"),
    [
        ("Error: ErrImagePull", "Failed", "no_image"),
        ("Error: ImagePullBackOff", "Failed", "no_image"),
        ("Back-off restarting failed container api in pod x(0b1c)", "BackOff", "container_backoff"),
        ("Started container api", "Started", "not_an_image_event"),
        ("x" * (events.MAX_MESSAGE_CHARS + 1), "Pulling", "too_large"),
    ],
)
def test_non_pull_events_are_counted_skips(message: str, reason: str, code: str) -> None:
    result = parse_log_entry(entry(message, reason))
    assert result.events == []
    assert [s.code for s in result.skipped] == [code]
    assert result.skipped[0].insert_id in (None, "sample001")
    assert code in events.SKIP_CODES


def test_invalid_image_is_a_skip() -> None:
    result = parse_log_entry(entry('Pulling image "Not/Valid:!!"'))
    assert [s.code for s in result.skipped] == ["invalid_reference"]


def test_k8s_cluster_resource_takes_pod_and_namespace_from_the_involved_object() -> None:
    raw = entry('Pulling image "ghcr.io/org/tool:1"')
    raw["resource"] = {
        "type": "k8s_cluster",
        "labels": {"project_id": "p2", "location": "us-central1", "cluster_name": "green"},
    }
    event = only_event(parse_log_entry(raw))
    assert (event.project_id, event.cluster, event.namespace, event.pod) == (
        "p2",
        "green",
        "payments",
        "api-5f7c9d",
    )
    assert event.reference == "ghcr.io/org/tool:1"


def test_node_resource_is_unsupported() -> None:
    raw = entry('Pulling image "nginx"')
    raw["resource"] = {"type": "k8s_node", "labels": {}}
    assert [s.code for s in parse_log_entry(raw).skipped] == ["unsupported_resource"]


def test_bigquery_sink_row_with_lowercased_columns_and_utc_timestamps() -> None:
    raw = json.loads(LINES[4])
    payload = raw["jsonPayload"]
    payload["involvedobject"] = payload.pop("involvedObject")
    raw["timestamp"] = "2026-10-01 08:00:05.123456 UTC"
    raw["insertid"] = raw.pop("insertId")
    raw["resource"]["labels"].pop("pod_name")
    event = only_event(parse_log_entry(raw))
    assert event.insert_id == "sample005"
    assert event.reason == "rate_limited"
    assert event.pod == "api-5f7c9d"
    assert event.event_time == datetime(2026, 10, 1, 8, 0, 5, 123456, tzinfo=UTC)


def test_nanosecond_timestamps() -> None:
    raw = entry('Pulling image "nginx"', timestamp="2026-10-01T08:00:01.123456789Z")
    assert only_event(parse_log_entry(raw)).event_time.microsecond == 123456


def test_cloud_run_replace_service_is_a_deployed_event_per_image() -> None:
    raw = json.loads((FIXTURES / "cloudrun-audit-replace-service.json").read_text())
    result = parse_log_entry(raw)
    assert [(e.reason, e.reference, e.third_party) for e in result.events] == [
        ("deployed", "docker.io/nginxinc/nginx-unprivileged:1.27-alpine", True),
        ("deployed", "europe-docker.pkg.dev/example-prod/app/checkout:4f2a", False),
    ]
    assert [e.insert_id for e in result.events] == ["audit001#0", "audit001#1"]
    assert {e.service for e in result.events} == {"checkout"}
    assert {e.source for e in result.events} == {"cloud_run"}


def test_cloud_run_v2_shape_and_failed_requests() -> None:
    raw = json.loads((FIXTURES / "cloudrun-audit-replace-service.json").read_text())
    v2 = copy.deepcopy(raw)
    v2["protoPayload"]["methodName"] = "google.cloud.run.v2.Services.CreateService"
    v2["protoPayload"]["request"] = {
        "service": {"template": {"containers": [{"image": "quay.io/org/app:2"}]}}
    }
    assert [e.reference for e in parse_log_entry(v2).events] == ["quay.io/org/app:2"]
    failed = copy.deepcopy(raw)
    failed["protoPayload"]["status"] = {"code": 7, "message": "permission denied"}
    assert [s.code for s in parse_log_entry(failed).skipped] == ["request_failed"]
    last = copy.deepcopy(raw)
    del last["protoPayload"]["request"]
    assert [s.code for s in parse_log_entry(last).skipped] == ["no_images"]


def cloud_event(data: bytes | str) -> dict[str, Any]:
    body = json.loads((FIXTURES / "pubsub-cloudevent.json").read_text())
    body["data"]["message"]["data"] = data
    return body


def test_pubsub_cloud_event_fixture() -> None:
    body = json.loads((FIXTURES / "pubsub-cloudevent.json").read_text())
    event = only_event(events.from_cloud_event(body))
    assert (event.insert_id, event.reason, event.reference) == (
        "sample001",
        "pulling",
        "docker.io/library/traefik:v3.1",
    )


def test_cloudevents_object_is_accepted() -> None:
    from cloudevents.http import CloudEvent

    body = json.loads((FIXTURES / "pubsub-cloudevent.json").read_text())
    attributes = {k: v for k, v in body.items() if k != "data"}
    event = CloudEvent(attributes, body["data"])
    assert only_event(events.from_cloud_event(event)).insert_id == "sample001"


def test_missing_timestamp_falls_back_to_the_pubsub_attribute() -> None:
    raw = json.loads(LINES[0])
    del raw["timestamp"], raw["receiveTimestamp"]
    encoded = base64.b64encode(json.dumps(raw).encode()).decode()
    event = only_event(events.from_cloud_event(cloud_event(encoded)))
    assert event.event_time == datetime(2026, 10, 1, 8, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (cloud_event("not base64 !!"), "bad_base64"),
        (cloud_event(base64.b64encode(b"{not json").decode()), "bad_json"),
        (cloud_event(base64.b64encode(b"[1, 2]").decode()), "not_a_log_entry"),
        (cloud_event(base64.b64encode(b'{"insertId": "x"}').decode()), "missing_field"),
        (
            cloud_event(base64.b64encode(b" " * (events.MAX_ENTRY_BYTES + 10)).decode()),
            "too_large",
        ),
        ({"data": {"message": {}}}, "not_a_cloud_event"),
        ({"data": "not json"}, "not_a_cloud_event"),
        ({}, "not_a_cloud_event"),
        (None, "not_a_cloud_event"),
        (42, "not_a_cloud_event"),
    ],
)
def test_garbage_messages_are_skips_not_exceptions(event: Any, code: str) -> None:
    result = events.from_cloud_event(event)
    assert result.events == []
    assert [s.code for s in result.skipped] == [code]
    assert result.skip_reason and result.skip_reason.startswith(code)


def test_entry_without_insert_id_or_message_is_a_skip() -> None:
    raw = json.loads(LINES[0])
    del raw["insertId"]
    assert str(parse_log_entry(raw).skipped[0]) == "missing_field: insertId"
    raw = json.loads(LINES[0])
    raw["jsonPayload"]["message"] = 5
    assert parse_log_entry(raw).skipped[0].code == "missing_field"
    raw = json.loads(LINES[0])
    raw["timestamp"] = "yesterday"
    del raw["receiveTimestamp"]
    assert parse_log_entry(raw).skipped[0].code == "bad_timestamp"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(
    resource_type=st.sampled_from(["k8s_pod", "k8s_cluster", "cloud_run_revision", None]),
    payload=json_values,
    labels=json_values,
    message=st.one_of(
        st.text(max_size=60),
        st.sampled_from(['Pulling image "', 'Successfully pulled image "a" in ', "Error: "]),
    ),
    stamp=json_values,
)
def test_no_entry_shape_raises(
    resource_type: Any, payload: Any, labels: Any, message: Any, stamp: Any
) -> None:
    raw: dict[str, Any] = {
        "insertId": "x",
        "timestamp": stamp,
        "resource": {"type": resource_type, "labels": labels},
        "jsonPayload": {**payload, "message": message} if isinstance(payload, dict) else payload,
        "protoPayload": {
            "serviceName": "run.googleapis.com",
            "methodName": "x.CreateService",
            "request": payload,
        },
    }
    result = parse_log_entry(raw)
    assert all(isinstance(s, Skip) and s.code in events.SKIP_CODES for s in result.skipped)
    assert result.events or result.skipped


def test_events_are_json_serialisable_and_round_trip() -> None:
    for line in LINES:
        for event in events.parse_json(line).events:
            text = json.dumps(event.to_json())
            assert PullEvent.from_json(json.loads(text)) == event


# -- read_entries ---------------------------------------------------------------------


def test_read_entries_json_lines_with_a_broken_line() -> None:
    text = LINES[0] + "\n\n{broken\n" + LINES[1]  # no final newline
    read = list(events.read_entries(io.StringIO(text)))
    assert [type(x).__name__ for x in read] == ["dict", "Skip", "dict"]
    assert read[1].code == "bad_json"


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_read_entries_gcloud_array_streamed_in_small_chunks(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events.files, "_CHUNK", chunk)
    entries = [json.loads(line) for line in LINES]
    text = json.dumps(entries, indent=2)
    assert list(events.read_entries(io.StringIO(text))) == entries
    assert list(events.read_entries(io.StringIO("  [ ]  "))) == []


def test_read_entries_cut_short_array_raises_a_clear_error() -> None:
    text = json.dumps([json.loads(line) for line in LINES], indent=2)[:-40]
    with pytest.raises(ValueError, match="cut short"):
        list(events.read_entries(io.StringIO(text)))


def test_read_entries_gzip_stream() -> None:
    data = gzip.compress(("\n".join(LINES) + "\n").encode())
    with gzip.open(io.BytesIO(data), "rt") as stream:
        assert len(list(events.read_entries(stream))) == len(LINES)
