"""Where each events limit and preference sits, tested at the limit and one past it: which
of two sources a field comes from, how many Cloud Run images are read, the size at which
a line or a pending array element is refused, how much of an error a skip quotes, and what
the store guard refuses, with the exact text an operator reads.  (Each of these was a
mutation the suite did not notice; issue 18.)"""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from armirror import events
from armirror.events import PullEvent, Skip, parse_log_entry
from armirror.events.files import decode_line
from armirror.events.messages import MAX_MESSAGE_CHARS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CLOUD_RUN = json.loads((FIXTURES / "cloudrun-audit-replace-service.json").read_text())
KUBELET = json.loads((FIXTURES / "gke-pull-events.jsonl").read_text().splitlines()[0])
LIMIT = events.MAX_ENTRY_BYTES
#: Pending text of one unfinished array element that is still read on; past it, refused.
PENDING_LIMIT = 4 * LIMIT


def cloud_run() -> dict[str, Any]:
    return copy.deepcopy(CLOUD_RUN)


def with_images(raw: dict[str, Any], count: int) -> dict[str, Any]:
    spec = raw["protoPayload"]["request"]["service"]["spec"]["template"]["spec"]
    spec["containers"] = [{"image": f"quay.io/org/app:{n}"} for n in range(count)]
    return raw


# -- which source a Cloud Run field comes from -------------------------------------------


def test_the_service_label_is_preferred_over_the_resource_name() -> None:
    raw = cloud_run()
    raw["protoPayload"]["resourceName"] = "namespaces/example-prod/services/other"
    assert parse_log_entry(raw).events[0].service == "checkout"
    del raw["protoPayload"]["resourceName"]
    assert parse_log_entry(raw).events[0].service == "checkout"


@pytest.mark.parametrize(
    ("resource_name", "service"),
    [
        ("namespaces/example-prod/services/checkout", "checkout"),
        ("projects/example-prod/locations/europe-west1/services/checkout", "checkout"),
        # a service called "services", named with its revision
        ("projects/p1/locations/europe-west1/services/services/revisions/r-1", "services"),
        # a project called "services"
        ("namespaces/services/services/checkout", "checkout"),
        ("namespaces/example-prod/services", None),
        ("namespaces/example-prod/jobs/services", None),
        ("namespaces/example-prod/services/" + "s" * 254, None),
    ],
)
def test_without_a_label_the_service_is_the_resource_names_services_id(
    resource_name: str, service: str | None
) -> None:
    raw = cloud_run()
    del raw["resource"]["labels"]["service_name"]
    raw["protoPayload"]["resourceName"] = resource_name
    assert parse_log_entry(raw).events[0].service == service


def test_the_project_label_is_preferred_over_the_log_name() -> None:
    raw = cloud_run()
    raw["logName"] = "projects/other-project/logs/cloudaudit.googleapis.com%2Factivity"
    assert parse_log_entry(raw).events[0].project_id == "example-prod"
    del raw["logName"]
    assert parse_log_entry(raw).events[0].project_id == "example-prod"


def test_a_cloud_run_entry_reads_16_images_and_says_when_there_are_more() -> None:
    at_limit = parse_log_entry(with_images(cloud_run(), 16))
    assert [e.insert_id for e in at_limit.events] == [f"audit001#{n}" for n in range(16)]
    assert at_limit.skipped == []
    past = parse_log_entry(with_images(cloud_run(), 17))
    assert [e.insert_id for e in past.events] == [f"audit001#{n}" for n in range(16)]
    assert past.skipped == [Skip("too_large", "17 images; the first 16 are read", "audit001")]


# -- JSON lines and JSON text ------------------------------------------------------------


def line_of_size(size: int) -> str:
    bare = json.dumps({**KUBELET, "pad": ""})
    return json.dumps({**KUBELET, "pad": "x" * (size - len(bare))})


def test_a_line_of_exactly_the_limit_is_read_and_one_character_more_is_not() -> None:
    at_limit = line_of_size(LIMIT)
    assert len(at_limit) == LIMIT
    assert decode_line(at_limit)["insertId"] == "sample001"
    assert decode_line(line_of_size(LIMIT + 1)) == Skip("too_large", "line of 524289 characters")


def test_a_line_that_is_not_json_is_a_skip_quoting_the_parser() -> None:
    assert decode_line('{"a": 1 "b"}') == Skip(
        "bad_json", "unexpected character, expected ',' or '}': line 1 column 9 (char 8)"
    )


def test_a_skip_quotes_the_first_80_characters_of_the_parse_error() -> None:
    text = "\n" * 100_000 + " " * 100_000 + "x"  # the error names a long line and column
    [skip] = events.parse_json(text).skipped
    assert skip == Skip(
        "bad_json",
        "unexpected character, expected a JSON value: line 100001 column 100001 (char 200",
    )
    assert len(skip.detail) == 80  # of "… (char 200000)"


# -- an exported JSON array: how much of one element is read before it is refused --------


def test_an_element_pending_at_exactly_the_limit_is_read_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the first chunk holds all but the closing quote of an element: PENDING_LIMIT pending
    monkeypatch.setattr(events.files, "_CHUNK", PENDING_LIMIT + 1)
    text = '["' + "x" * PENDING_LIMIT + '"]'
    assert list(events.read_entries(io.StringIO(text))) == ["x" * PENDING_LIMIT]


def test_an_element_pending_one_past_the_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events.files, "_CHUNK", PENDING_LIMIT + 2)
    text = '["' + "x" * PENDING_LIMIT + '"]'
    with pytest.raises(events.MalformedInput) as info:
        list(events.read_entries(io.StringIO(text)))
    assert str(info.value) == "JSON array element at character 1 is not valid JSON"


def test_what_counts_as_pending_starts_at_the_unfinished_element(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "1, " before it is read already: PENDING_LIMIT - 3 pending, read on
    monkeypatch.setattr(events.files, "_CHUNK", PENDING_LIMIT + 1)
    text = '[1, "' + "x" * PENDING_LIMIT + '"]'
    assert list(events.read_entries(io.StringIO(text))) == [1, "x" * PENDING_LIMIT]


def test_an_element_refused_mid_chunk_is_named_at_its_own_offset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events.files, "_CHUNK", PENDING_LIMIT + 10)
    text = ' [1, "' + "x" * (2 * PENDING_LIMIT)  # never ends
    with pytest.raises(events.MalformedInput) as info:
        list(events.read_entries(io.StringIO(text)))
    assert str(info.value) == "JSON array element at character 5 is not valid JSON"


# -- what the store guard refuses, and the text it says ----------------------------------


def stored_event(**changes: Any) -> PullEvent:
    return parse_log_entry(KUBELET).events[0]._replace(**changes)


def refusal(event: PullEvent) -> str:
    with pytest.raises(ValueError) as info:
        events.fit_event(event)
    return str(info.value)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"event_time": datetime(2026, 10, 1, 9, 0)}, "event_time is not an aware datetime"),
        ({"event_time": "2026-10-01T09:00:00Z"}, "event_time is not an aware datetime"),
        ({"image": ""}, "image does not fit"),
        ({"image": "nginx\x00:1"}, "image does not fit"),
        ({"registry": 7}, "registry does not fit"),
        ({"reference": "r" * (events.MAX_IMAGE_CHARS + 33)}, "reference does not fit"),
        ({"third_party": 1}, "third_party is not a boolean"),
        ({"source": ""}, "source does not fit"),
        ({"insert_id": "i" * 257}, "insert_id does not fit"),
    ],
)
def test_a_required_value_that_cannot_be_stored_is_refused_naming_event_and_column(
    changes: dict[str, Any], problem: str
) -> None:
    event = stored_event(**changes)
    assert refusal(event) == f"pull event {str(event.insert_id)[:80]!r}: {problem}"


def test_a_refusal_quotes_the_first_80_characters_of_the_insert_id() -> None:
    assert refusal(stored_event(insert_id="i" * 300)) == (
        f"pull event {'i' * 80!r}: insert_id does not fit"
    )


def test_required_text_of_one_character_and_of_the_longest_reference_is_stored() -> None:
    event = stored_event(image="a", reference="r" * (events.MAX_IMAGE_CHARS + 32))
    assert events.fit_event(event) is event


def test_a_cloud_run_insert_id_is_bounded_without_its_image_number() -> None:
    raw = cloud_run()
    raw["insertId"] = "a" * 256  # the longest insertId stored
    [first, *_] = parse_log_entry(raw).events
    assert first.insert_id == "a" * 256 + "#0"
    assert events.fit_event(first) is first
    # the allowance is the "#N" of a Cloud Run event only, and only the last "#"
    assert refusal(stored_event(insert_id="a" * 256 + "#0")).endswith("insert_id does not fit")
    for own_id in ("\ud800", "a#" + "a" * 300, "a#\x00"):
        bad = first._replace(insert_id=own_id + "#0")
        assert refusal(bad).endswith(": insert_id does not fit"), own_id


def test_an_event_read_back_from_json_has_an_aware_time() -> None:
    event = parse_log_entry(KUBELET).events[0]
    naive = {**event._asdict(), "event_time": event.event_time.replace(tzinfo=None)}
    assert PullEvent.from_json(naive) == event
    assert PullEvent.from_json(naive).event_time.tzinfo is UTC


# -- each Cloud Run image on its own -----------------------------------------------------


@pytest.mark.parametrize("bad", [None, "", "x" * 257, "a\nb"])
def test_a_cloud_run_entry_without_a_usable_insert_id_is_a_skip(bad: str | None) -> None:
    raw = cloud_run()
    if bad is None:
        del raw["insertId"]
    else:
        raw["insertId"] = bad
    result = parse_log_entry(raw)
    assert (result.events, result.skipped) == ([], [Skip("missing_field", "insertId")])


def test_each_cloud_run_image_is_read_or_skipped_on_its_own() -> None:
    at_limit = "quay.io/o/a:" + "t" * 1012  # MAX_IMAGE_CHARS: the reference parser judges it
    uppercase = "quay.io/o/" + "A" * 150 + ":1"
    raw = cloud_run()
    spec = raw["protoPayload"]["request"]["service"]["spec"]["template"]["spec"]
    spec["containers"] = [
        {"image": ""},
        {"image": 7},
        {"name": "sidecar"},
        {"image": at_limit},
        {"image": at_limit + "t"},
        {"image": uppercase},
        {"image": "quay.io/o/ok:1"},
    ]
    result = parse_log_entry(raw)
    assert [(e.insert_id, e.reference) for e in result.events] == [("audit001#6", "quay.io/o/ok:1")]
    assert result.skipped == [
        Skip("missing_field", "containers[].image", "audit001#0"),
        Skip("missing_field", "containers[].image", "audit001#1"),
        Skip("missing_field", "containers[].image", "audit001#2"),
        Skip("invalid_reference", f"{at_limit[:120]}: tag longer than 128 characters", "audit001#3"),
        Skip("invalid_reference", f"{at_limit[:120]}: longer than 1024 characters", "audit001#4"),
        Skip("invalid_reference", f"{uppercase[:120]}: repository name must be lowercase", "audit001#5"),
    ]  # fmt: skip
    assert len(at_limit) == events.MAX_IMAGE_CHARS
    assert at_limit[:120].endswith("t") and uppercase[:120].endswith("A")


# -- JSON lines: one endless line is cut as it grows -------------------------------------


def lines_read(text: str, chunk: int, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    monkeypatch.setattr(events.files, "_CHUNK", chunk)
    return list(events.read_entries(io.StringIO(text)))


def test_a_long_line_pending_at_exactly_four_entries_is_kept_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # two reads of PENDING_LIMIT / 2 leave exactly PENDING_LIMIT characters pending
    text = "x" * (PENDING_LIMIT + 5) + "\n" + json.dumps(KUBELET) + "\n"
    read = lines_read(text, PENDING_LIMIT // 2, monkeypatch)
    assert read == [Skip("too_large", f"line of {PENDING_LIMIT + 5} characters"), KUBELET]


def test_a_long_line_pending_past_four_entries_keeps_only_its_last_entrys_worth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # two reads of PENDING_LIMIT / 2 + 1 leave PENDING_LIMIT + 2 pending: cut to LIMIT
    text = "x" * (PENDING_LIMIT + 5) + "\n" + json.dumps(KUBELET) + "\n"
    read = lines_read(text, PENDING_LIMIT // 2 + 1, monkeypatch)
    assert read == [Skip("too_large", f"line of {LIMIT + 3} characters"), KUBELET]


def test_a_line_longer_than_an_entry_but_short_of_four_is_reported_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = "x" * (3 * LIMIT) + "\n" + json.dumps(KUBELET) + "\n"
    read = lines_read(text, LIMIT, monkeypatch)
    assert read == [Skip("too_large", f"line of {3 * LIMIT} characters"), KUBELET]


@pytest.mark.parametrize(
    ("name", "stored"),
    [("a", "a"), ("n" * 253, "n" * 253), ("n" * 254, None), ("", None)],
)
def test_a_name_of_one_to_253_characters_is_stored_and_longer_is_null(
    name: str, stored: str | None
) -> None:
    for raw in (copy.deepcopy(KUBELET), cloud_run()):  # each kind checks names its own way
        raw["resource"]["labels"]["location"] = name
        assert [e.location for e in parse_log_entry(raw).events][:1] == [stored]


# -- kubelet messages --------------------------------------------------------------------


@pytest.mark.parametrize("message", ['Pulling image "nginx:1"', 'pulling image "nginx:1"'])
def test_a_pulling_message_is_read_in_the_new_and_the_old_kubelet_wording(message: str) -> None:
    entry = copy.deepcopy(KUBELET)
    entry["jsonPayload"]["message"] = message
    [event] = parse_log_entry(entry).events
    assert (event.reason, event.reference) == ("pulling", "docker.io/library/nginx:1")


def test_the_image_size_is_read_after_the_image_not_inside_its_quotes() -> None:
    info = events.parse_message(
        'Successfully pulled image "Image size: 5 bytes" in 1s. Image size: 10 bytes.', "Pulled"
    )
    assert isinstance(info, events.MessageInfo)
    assert (info.image, info.image_bytes) == ("Image size: 5 bytes", 10)


# -- kubelet entries: bounds, fallbacks and the insertId of each skip --------------------


def kubelet_entry(**payload: Any) -> dict[str, Any]:
    entry = copy.deepcopy(KUBELET)
    entry["jsonPayload"].update(payload)
    return entry


@pytest.mark.parametrize("insert_id", ["a", "a" * 256])
def test_a_kubelet_insert_id_of_one_to_256_characters_identifies_the_event(insert_id: str) -> None:
    entry = kubelet_entry()
    entry["insertId"] = insert_id
    assert [e.insert_id for e in parse_log_entry(entry).events] == [insert_id]


def test_a_bigquery_export_row_is_read_under_its_lower_cased_payload_name() -> None:
    entry = kubelet_entry()
    entry["jsonpayload"] = entry.pop("jsonPayload")
    [event] = parse_log_entry(entry).events
    assert (event.reason, event.pod) == ("pulling", "api-5f7c9d")


def test_the_pod_label_is_preferred_over_the_involved_object() -> None:
    entry = kubelet_entry()
    entry["jsonPayload"]["involvedObject"]["name"] = "other-pod"
    assert parse_log_entry(entry).events[0].pod == "api-5f7c9d"
    del entry["resource"]["labels"]["pod_name"]
    assert parse_log_entry(entry).events[0].pod == "other-pod"


def test_a_backoff_without_an_image_is_told_by_the_kubelet_reason() -> None:
    message = "Back-off 5m0s restarting failed container=api pod=api-5f7c9d"
    [skip] = parse_log_entry(kubelet_entry(message=message, reason="BackOff")).skipped
    assert skip == Skip("container_backoff", "", "sample001")
    [skip] = parse_log_entry(kubelet_entry(message=message, reason="Killing")).skipped
    assert skip == Skip("not_an_image_event", f"Killing: {message}", "sample001")


def test_each_kubelet_skip_names_the_entrys_insert_id() -> None:
    image = "quay.io/o/" + "A" * 150 + ":1"
    entry = kubelet_entry()
    del entry["jsonPayload"]["message"]
    late = kubelet_entry()
    late["timestamp"] = "yesterday"
    assert [parse_log_entry(e).skipped for e in (
        entry,
        kubelet_entry(message="Started container api", reason="Started"),
        late,
        kubelet_entry(message=f'Pulling image "{image}"'),
    )] == [
        [Skip("missing_field", "jsonPayload.message", "sample001")],
        [Skip("not_an_image_event", "Started: Started container api", "sample001")],
        [Skip("bad_timestamp", "'yesterday'", "sample001")],
        [Skip("invalid_reference", f"{image[:120]}: repository name must be lowercase", "sample001")],
    ]  # fmt: skip


# -- timestamps --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("2026-10-01T10:00:01+02:00", "2026-10-01T08:00:01+00:00"),  # any offset, as UTC
        ("2026-10-01T08:00:01Z", "2026-10-01T08:00:01+00:00"),
        ("2026-10-01T08:00:01", "2026-10-01T08:00:01+00:00"),  # no offset: UTC
        ("2026-10-01 08:00:05.123456 UTC", "2026-10-01T08:00:05.123456+00:00"),  # BigQuery
        ("2026-10-01T08:00:01.123456789Z", "2026-10-01T08:00:01.123456+00:00"),
        (" 2026-10-01T08:00:01Z\n", "2026-10-01T08:00:01+00:00"),
        (1790841601, "2026-10-01T08:00:01+00:00"),
        (1790841601.5, "2026-10-01T08:00:01.500000+00:00"),
        (datetime(2026, 10, 1, 8, 0, 1), "2026-10-01T08:00:01+00:00"),
        (
            datetime(2026, 10, 1, 10, 0, 1, tzinfo=timezone(timedelta(hours=2))),
            "2026-10-01T08:00:01+00:00",
        ),
    ],
)
def test_a_timestamp_in_any_form_reads_as_utc(value: Any, iso: str) -> None:
    assert events.parse_timestamp(value).isoformat() == iso


def test_a_timestamp_of_64_characters_is_read_and_65_is_not() -> None:
    text = "2026-10-01T08:00:01Z".ljust(64)  # trailing blanks are stripped
    assert events.parse_timestamp(text).isoformat() == "2026-10-01T08:00:01+00:00"
    with pytest.raises(ValueError) as info:
        events.parse_timestamp(text + " ")
    assert str(info.value) == f"not a timestamp: {text + ' '!r}"


@pytest.mark.parametrize("value", [True, None, [1], "yesterday", "2026-10-01T08:00:01.1.2Z"])
def test_what_is_not_a_timestamp_is_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        events.parse_timestamp(value)


# -- which parser an entry goes to, and why none ----------------------------------------


def test_an_entry_without_a_resource_type_or_of_another_resource_says_which() -> None:
    entry = kubelet_entry()
    del entry["resource"]["type"]
    assert parse_log_entry(entry).skipped == [Skip("missing_field", "resource.type")]
    entry["resource"]["type"] = "gce_instance_" + "x" * 100
    [skip] = parse_log_entry(entry).skipped
    assert skip == Skip("unsupported_resource", "gce_instance_" + "x" * 51)


def test_a_cloud_run_entry_is_known_by_its_service_name_or_by_its_resource_type() -> None:
    by_service = cloud_run()
    by_service["resource"]["type"] = "audited_resource"
    by_type = cloud_run()
    del by_type["protoPayload"]["serviceName"]
    for raw in (by_service, by_type):
        assert [e.insert_id for e in parse_log_entry(raw).events] == ["audit001#0", "audit001#1"]


@pytest.mark.parametrize("error", [TypeError("odd"), RecursionError("deep")])
def test_an_entry_that_fails_when_read_is_a_skip_naming_the_error(error: Exception) -> None:
    class Failing(dict):  # type: ignore[type-arg]
        def get(self, *args: Any) -> Any:
            raise error

    skip = Skip("missing_field", f"{type(error).__name__}: {error}")
    assert parse_log_entry(Failing(KUBELET)).skipped == [skip]


def test_a_cloud_run_insert_id_of_one_character_identifies_its_events() -> None:
    raw = cloud_run()
    raw["insertId"] = "a"
    assert [e.insert_id for e in parse_log_entry(raw).events] == ["a#0", "a#1"]


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("0s", 0.0), ("168h", 604800.0), ("168h0.000001s", None)],  # a week at most
)
def test_a_pull_of_no_time_or_of_exactly_a_week_is_stored(
    duration: str, seconds: float | None
) -> None:
    message = f'Successfully pulled image "nginx:1" in {duration}. Image size: 10 bytes.'
    [event] = parse_log_entry(kubelet_entry(message=message, reason="Pulled")).events
    assert (event.reason, event.pull_seconds) == ("pulled", seconds)


@pytest.mark.parametrize(
    ("message", "reason", "skip"),
    [
        ("Error: ErrImagePull" + " x" * 50, "Failed", Skip("no_image", ("Error: ErrImagePull" + " x" * 50)[:80], "sample001")),
        ("Back-off restarting failed container api", "", Skip("container_backoff", "", "sample001")),
        ("Back-off pulling image", "BackOff", Skip("not_an_image_event", "BackOff: Back-off pulling image", "sample001")),
        # a BackOff that mentions an image is not taken for a crashing container
        ("Back-off: image policy webhook unavailable", "BackOff", Skip("not_an_image_event", "BackOff: Back-off: image policy webhook unavailable", "sample001")),
        ("Started " + "c" * 100, "Started", Skip("not_an_image_event", "Started: Started " + "c" * 72, "sample001")),
    ],
)  # fmt: skip
def test_a_kubelet_message_that_is_no_pull_says_what_it_is(
    message: str, reason: str, skip: Skip
) -> None:
    assert parse_log_entry(kubelet_entry(message=message, reason=reason)).skipped == [skip]


@pytest.mark.parametrize("payload", ["text", None, [1]])
def test_a_kubelet_payload_that_is_no_object_is_a_skip_for_its_message(payload: Any) -> None:
    entry = kubelet_entry()
    entry["jsonPayload"] = payload
    assert parse_log_entry(entry).skipped == [
        Skip("missing_field", "jsonPayload.message", "sample001")
    ]


def test_kubelet_labels_or_an_involved_object_that_are_no_objects_are_ignored() -> None:
    entry = kubelet_entry()
    entry["resource"]["labels"] = "text"
    entry["jsonPayload"]["involvedObject"] = ["text"]
    entry["jsonPayload"]["source"] = "text"
    [event] = parse_log_entry(entry).events
    assert (event.project_id, event.namespace, event.pod, event.node) == (
        "example-prod",  # from the log name
        None,
        None,
        None,
    )


@pytest.mark.parametrize("reason", [[1], 5, None])
def test_a_kubelet_reason_that_is_no_text_is_read_as_none(reason: Any) -> None:
    entry = kubelet_entry(message="Started container api", reason=reason)
    assert parse_log_entry(entry).skipped == [
        Skip("not_an_image_event", ": Started container api", "sample001")
    ]


def test_the_namespace_label_is_preferred_over_the_involved_object() -> None:
    entry = kubelet_entry()
    entry["jsonPayload"]["involvedObject"]["namespace"] = "other-namespace"
    assert parse_log_entry(entry).events[0].namespace == "payments"
    del entry["resource"]["labels"]["namespace_name"]
    assert parse_log_entry(entry).events[0].namespace == "other-namespace"


def test_each_event_says_which_kind_of_entry_it_came_from() -> None:
    assert [e.source for e in parse_log_entry(KUBELET).events] == ["kubelet"]
    assert [e.source for e in parse_log_entry(CLOUD_RUN).events] == ["cloud_run", "cloud_run"]


def test_an_entry_without_a_timestamp_takes_its_receive_timestamp() -> None:
    entry = kubelet_entry()
    del entry["timestamp"]
    [event] = parse_log_entry(entry).events
    assert event.event_time.isoformat() == "2026-10-01T08:00:01.500000+00:00"
    entry["timestamp"] = "t" * 100
    [skip] = parse_log_entry(entry).skipped
    assert skip == Skip("bad_timestamp", repr("t" * 100)[:64], "sample001")


def test_a_timestamp_reads_as_utc_whatever_the_hosts_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        stamp = events.parse_timestamp("2026-10-01T10:00:01+02:00")
        assert stamp.isoformat() == "2026-10-01T08:00:01+00:00"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_kubelet_message_of_16_kib_is_read_and_one_character_more_is_a_skip() -> None:
    pulling = 'Pulling image "quay.io/o/a:1"'
    longest = pulling + " " * (MAX_MESSAGE_CHARS - len(pulling))
    [event] = parse_log_entry(kubelet_entry(message=longest)).events
    assert event.reference == "quay.io/o/a:1"
    too_long = kubelet_entry(message=longest + " ")
    assert parse_log_entry(too_long).skipped == [
        Skip("too_large", f"message of {MAX_MESSAGE_CHARS + 1} characters", "sample001")
    ]


def test_a_long_backoff_message_is_still_told_by_the_kubelet_reason() -> None:
    # Messages over 512 characters are classified without the cache: the reason must
    # reach that path too.
    message = "Back-off 5m0s restarting failed container=api pod=" + "p" * 600
    [skip] = parse_log_entry(kubelet_entry(message=message, reason="BackOff")).skipped
    assert skip == Skip("container_backoff", "", "sample001")
