"""Every value the parsers extract fits its pull_events column; one that does not is null
and the entry is kept (issue 12 §5).  Hypothesis drives every input path with hostile
entries; the stores take whatever the parsers give."""

from __future__ import annotations

import base64
import io
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from armirror import events
from armirror.events import PullEvent, Skip, parse_log_entry
from armirror.reference import parse
from armirror.store.duckdb import DuckDBStore
from armirror.store.tables import columns
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LINES = (FIXTURES / "gke-pull-events.jsonl").read_text().splitlines()
CLOUD_RUN = json.loads((FIXTURES / "cloudrun-audit-replace-service.json").read_text())
INT64_MAX = 2**63 - 1
#: No string column holds more than this: the longest, image, is capped at 1024.
LONGEST_TEXT = 2048


def column_problems(event: PullEvent) -> list[str]:
    """What in an event does not fit the table's schema (read from the schema file, not
    from the parsers' own limits)."""
    problems = []
    for column in columns("pull_events"):
        if column.name == "recorded_at":
            continue
        value = getattr(event, column.name)
        if value is None:
            if column.required:
                problems.append(f"{column.name} is null")
            continue
        if column.type == "STRING":
            fits = (
                isinstance(value, str)
                and 0 < len(value) <= LONGEST_TEXT
                and value.isprintable()  # no controls, no lone surrogates: valid UTF-8
            )
        elif column.type == "INTEGER":
            fits = type(value) is int and 0 <= value <= INT64_MAX
        elif column.type == "FLOAT":
            fits = type(value) is float and math.isfinite(value) and value >= 0
        elif column.type == "BOOLEAN":
            fits = type(value) is bool
        elif column.type == "TIMESTAMP":
            fits = isinstance(value, datetime) and value.utcoffset() is not None
        else:
            fits = False
        if not fits:
            problems.append(f"{column.name}={value!r:.80}")
    return problems


def kubelet(message: str, reason: str = "Pulled", **labels: Any) -> dict[str, Any]:
    entry = json.loads(LINES[1])
    entry["jsonPayload"]["message"] = message
    entry["jsonPayload"]["reason"] = reason
    entry["resource"]["labels"].update(labels)
    return entry


def only_event(result: events.ParseResult) -> PullEvent:
    assert not result.skipped, result.skipped
    assert len(result.events) == 1
    event = result.events[0]
    assert column_problems(event) == []
    return event


# -- the figures of a "Successfully pulled" message --------------------------------------


@pytest.mark.parametrize(
    ("size", "stored"),
    [
        ("99999999999999999999", None),  # issue 12 §5: DuckDB could not store it
        (str(INT64_MAX + 1), None),
        (str(INT64_MAX), INT64_MAX),
        ("0", 0),
        ("48213504", 48213504),
    ],
)
def test_an_image_size_outside_the_column_is_null_and_the_event_kept(
    size: str, stored: int | None
) -> None:
    message = f'Successfully pulled image "nginx:1" in 1.5s. Image size: {size} bytes.'
    event = only_event(parse_log_entry(kubelet(message)))
    assert (event.reason, event.reference) == ("pulled", "docker.io/library/nginx:1")
    assert event.image_bytes == stored
    assert event.pull_seconds == 1.5


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("99999999999h", None),  # about eleven million years
        ("9" * 400 + "s", None),  # float("9" * 400) is inf
        ("1" + "0" * 30 + "ns", None),
        ("8d", None),  # not a Go unit
        ("2h30m", 9000.0),
        ("523ms", 0.523),
    ],
)
def test_an_absurd_pull_duration_is_null_and_the_event_kept(
    duration: str, seconds: float | None
) -> None:
    message = f'Successfully pulled image "nginx:1" in {duration}. Image size: 10 bytes.'
    event = only_event(parse_log_entry(kubelet(message)))
    assert event.pull_seconds == seconds
    assert event.image_bytes == 10


@pytest.mark.parametrize(
    "bad",
    ["p" * 10_000, "a\x00b", "line\nbreak", "lone \ud800 surrogate", "\u2028", "\t"],
)
def test_names_that_cannot_be_stored_are_null_and_the_event_kept(bad: str) -> None:
    entry = kubelet('Pulling image "nginx:1"', "Pulling", pod_name=bad, cluster_name=bad)
    entry["jsonPayload"]["source"]["host"] = bad
    entry["jsonPayload"]["involvedObject"]["name"] = bad
    event = only_event(parse_log_entry(entry))
    assert (event.pod, event.cluster, event.node) == (None, None, None)
    assert (event.project_id, event.namespace) == ("example-prod", "payments")


def test_a_project_from_the_log_name_is_bounded_too() -> None:
    entry = kubelet('Pulling image "nginx:1"', "Pulling")
    del entry["resource"]["labels"]["project_id"]
    entry["logName"] = "projects/" + "p" * 5_000 + "/logs/events"
    assert only_event(parse_log_entry(entry)).project_id is None


@pytest.mark.parametrize("insert_id", ["a\ud800", "a\nb", "x" * 257, ""])
def test_an_insert_id_that_cannot_be_stored_is_a_skip(insert_id: str) -> None:
    entry = kubelet('Pulling image "nginx:1"', "Pulling")
    entry["insertId"] = insert_id
    result = parse_log_entry(entry)
    assert result.events == []
    assert [s.code for s in result.skipped] == ["missing_field"]


def test_cloud_run_names_and_images_are_bounded() -> None:
    entry = json.loads(json.dumps(CLOUD_RUN))
    entry["resource"]["labels"]["service_name"] = "s" * 1_000  # resourceName stands in
    entry["resource"]["labels"]["location"] = "europe\x00west1"
    containers = entry["protoPayload"]["request"]["service"]["spec"]["template"]["spec"]
    containers["containers"][1]["image"] = "quay.io/org/app@sha256x:" + "a" * 2_000
    result = parse_log_entry(entry)
    assert [e.reference for e in result.events] == [
        "docker.io/nginxinc/nginx-unprivileged:1.27-alpine"
    ]
    assert [(s.code, s.insert_id) for s in result.skipped] == [("invalid_reference", "audit001#1")]
    event = result.events[0]
    assert column_problems(event) == []
    assert (event.service, event.location, event.project_id) == ("checkout", None, "example-prod")


def test_a_cloud_run_entry_gives_at_most_a_bounded_number_of_events() -> None:
    entry = json.loads(json.dumps(CLOUD_RUN))
    spec = entry["protoPayload"]["request"]["service"]["spec"]["template"]["spec"]
    spec["containers"] = [{"image": f"quay.io/org/app:{n}"} for n in range(5_000)]
    result = parse_log_entry(entry)
    assert 0 < len(result.events) <= events.MAX_CLOUD_RUN_IMAGES
    assert [s.code for s in result.skipped] == ["too_large"]


def test_a_skip_quoting_the_entry_cannot_forge_a_log_line() -> None:
    message = "Started\n2026-10-01 INFO queued evil -> mirror\x1b[2K"
    skip = parse_log_entry(kubelet(message, "Started")).skipped[0]
    assert skip.code == "not_an_image_event"
    assert str(skip).isprintable() and "\\n2026" in str(skip)


# -- the stores take what the parsers give, and guard themselves ----------------------


def hostile_event(number: int) -> PullEvent:
    return PullEvent(
        insert_id=f"hostile-{number}",
        event_time=datetime(2026, 10, 1, tzinfo=UTC),
        reason="pulled",
        image="nginx:1",
        reference="docker.io/library/nginx:1",
        registry="docker.io",
        repository="library/nginx",
        registry_class="third_party",
        third_party=True,
        pod="lone \ud800",
        node="n" * 10_000,
        image_bytes=99999999999999999999,
        pull_seconds=math.inf,
    )


@pytest.mark.parametrize("count", [1, 300])  # one INSERT, or a CSV file
def test_the_duckdb_store_nulls_what_does_not_fit(count: int) -> None:
    with DuckDBStore(":memory:") as store:
        assert store.record([hostile_event(n) for n in range(count)]) == count
        rows = store._rows("SELECT pod, node, image_bytes, pull_seconds FROM pull_events")
    assert rows == [{"pod": None, "node": None, "image_bytes": None, "pull_seconds": None}] * count


def test_the_row_for_bigquery_nulls_what_does_not_fit() -> None:
    from armirror.store.tables import event_row

    row = event_row(hostile_event(1), datetime(2026, 10, 2, tzinfo=UTC))
    assert (row["pod"], row["node"], row["image_bytes"], row["pull_seconds"]) == (None,) * 4
    json.dumps(row, default=str, allow_nan=False)  # what insertAll is sent


def test_a_required_value_that_cannot_be_stored_is_refused_by_name() -> None:
    event = hostile_event(1)._replace(insert_id="lone \ud800")
    with pytest.raises(ValueError, match="insert_id does not fit"):
        events.fit_event(event)
    fine = hostile_event(1)._replace(pod=None, node=None, image_bytes=None, pull_seconds=None)
    assert events.fit_event(fine) is fine


# -- Hypothesis: hostile entries on every input path ------------------------------------

any_text = st.text(st.characters(exclude_categories=()), max_size=40)
long_text = st.builds(lambda c, n: c * n, st.sampled_from("a\x00\ud800é-"), st.integers(0, 3000))
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | any_text
    | long_text
    | st.integers(-(10**30), 10**30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3)
    ),
    max_leaves=12,
)
digits = st.integers(0, 10**40).map(str) | st.text("0123456789", min_size=1, max_size=60)
durations = st.text("0123456789.nsuµmh", max_size=40)
images = st.sampled_from(
    ["nginx", "nginx:1.25", "quay.io/org/app:1", "ghcr.io/a/b@sha256:" + "a" * 64, ""]
) | st.text(st.characters(exclude_categories=(), exclude_characters='"'), max_size=60)
messages = st.one_of(
    st.builds(
        'Successfully pulled image "{}" in {}. Image size: {} bytes.'.format,
        images,
        durations,
        digits,
    ),
    st.builds(
        lambda verb, image: f'{verb} image "{image}"',
        st.sampled_from(["Pulling", "pulling", "Failed to pull", "Back-off pulling"]),
        images,
    ),
    st.builds('Container image "{}" already present on machine'.format, images),
    any_text,
    long_text,
)
names = any_text | long_text | json_values


@st.composite
def hostile_entries(draw: st.DrawFn) -> dict[str, Any]:
    """A kubelet or Cloud Run entry whose every field may be hostile."""
    if draw(st.booleans()):
        entry = kubelet(draw(messages), draw(any_text | st.sampled_from(["Pulled", "BackOff"])))
        labels = entry["resource"]["labels"]
        for key in ("project_id", "location", "cluster_name", "namespace_name", "pod_name"):
            if draw(st.booleans()):
                labels[key] = draw(names)
        payload = entry["jsonPayload"]
        if draw(st.booleans()):
            payload["source"] = {"host": draw(names)}
        if draw(st.booleans()):
            payload["involvedObject"] = draw(json_values)
        entry["resource"]["type"] = draw(st.sampled_from(["k8s_pod", "k8s_cluster"]))
    else:
        entry = json.loads(json.dumps(CLOUD_RUN))
        entry["resource"]["labels"] = draw(st.dictionaries(any_text, names, max_size=4)) or {
            "service_name": draw(names),
            "location": draw(names),
        }
        spec = entry["protoPayload"]["request"]["service"]["spec"]["template"]["spec"]
        spec["containers"] = draw(
            st.lists(st.fixed_dictionaries({"image": images | json_values}), max_size=4)
        )
        entry["protoPayload"]["resourceName"] = draw(names)
    if draw(st.booleans()):
        entry["insertId"] = draw(names)
    if draw(st.booleans()):
        entry["timestamp"] = draw(json_values | st.datetimes().map(str))
    if draw(st.booleans()):
        entry["logName"] = draw(names)
    return entry


def check(result: events.ParseResult) -> None:
    for event in result.events:
        assert column_problems(event) == [], event
        assert str(parse(event.reference)) == event.reference  # what on_pull_event reads
    assert all(s.code in events.SKIP_CODES for s in result.skipped)
    assert result.events or result.skipped


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(entry=hostile_entries())
def test_hostile_entries_give_events_that_fit_or_skips(entry: dict[str, Any]) -> None:
    check(parse_log_entry(entry))


@SETTINGS
@given(entry=hostile_entries())
def test_hostile_entries_through_every_input_path(entry: dict[str, Any]) -> None:
    text = json.dumps(entry)  # lone surrogates become \ud800 escapes
    check(events.parse_json(text))
    encoded = base64.b64encode(text.encode()).decode()
    check(events.from_cloud_event({"data": {"message": {"data": encoded}}}))
    for read in (
        list(events.read_entries(io.StringIO(text))),  # JSON lines (orjson)
        list(events.read_entries(io.StringIO(f"[{text}, {text}]"))),  # an array (json)
    ):
        for item in read:
            check(_parsed(item))


def _parsed(item: Any) -> events.ParseResult:
    if isinstance(item, Skip):
        return events.ParseResult(skipped=[item])
    return parse_log_entry(item)


@settings(max_examples=500, deadline=None)
@given(message=messages, reason=any_text)
def test_any_message_text_gives_figures_that_fit(message: str, reason: str) -> None:
    info = events.parse_message(message, reason)
    if isinstance(info, Skip):
        assert info.code in events.SKIP_CODES
        return
    assert info.reason in events.REASONS
    assert 0 < len(info.image) <= 1024
    assert info.image_bytes is None or 0 <= info.image_bytes <= INT64_MAX
    seconds = info.pull_seconds
    assert seconds is None or (math.isfinite(seconds) and 0 <= seconds <= 7 * 24 * 3600)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(hostile_entries(), min_size=1, max_size=8))
def test_whatever_the_parsers_give_the_store_records(entries: list[dict[str, Any]]) -> None:
    found = [e for entry in entries for e in parse_log_entry(entry).events]
    unique = events.first_by_insert_id(found)
    with DuckDBStore(":memory:") as store:
        assert store.record(found) == len(unique)
        rows = store._rows("SELECT * FROM pull_events ORDER BY insert_id")
    by_id = {e.insert_id: e for e in unique}
    for row in rows:
        row.pop("recorded_at")
        event = by_id[row["insert_id"]]
        expected = event._asdict()
        assert {k: v for k, v in row.items() if k != "event_time"} == {
            k: v for k, v in expected.items() if k != "event_time"
        }
        assert row["event_time"] == event.event_time
