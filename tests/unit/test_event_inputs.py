"""The ways entries arrive, at their edges: Pub/Sub envelopes, JSON text, exported files.

Each refusal is a counted skip whose text says what was wrong (it is logged, and an
operator reads it); each limit is where its documentation puts it; a file reads the same
whatever its form and however it is cut into chunks.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from armirror import events
from armirror.events import PullEvent, Skip, parse_log_entry
from armirror.events.messages import go_duration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LINES = (FIXTURES / "gke-pull-events.jsonl").read_text().splitlines()
LIMIT = events.MAX_ENTRY_BYTES  # 512 KiB
ENVELOPE_LIMIT = LIMIT * 4 // 3 + 4  # the base64 of the largest entry: 699,054 characters


def first_entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(LINES[0])
    entry.update(changes)
    return entry


def envelope(data: Any, **message: Any) -> dict[str, Any]:
    return {"data": {"message": {"data": data, **message}}}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def entry_of_size(size: int) -> bytes:
    """A real kubelet entry padded with an extra field to exactly ``size`` bytes of JSON."""
    bare = orjson.dumps(first_entry(pad=""))
    return orjson.dumps(first_entry(pad="x" * (size - len(bare))))


def skips(result: events.ParseResult) -> list[str]:
    assert result.events == []
    return [str(s) for s in result.skipped]


# -- JSON text and the Pub/Sub envelope --------------------------------------------------


def test_an_entry_of_exactly_the_limit_is_read_and_one_byte_more_is_not() -> None:
    at_limit = entry_of_size(LIMIT)
    assert len(at_limit) == LIMIT
    assert [e.insert_id for e in events.parse_json(at_limit).events] == ["sample001"]
    assert skips(events.parse_json(entry_of_size(LIMIT + 1))) == [
        "too_large: entry of 524289 bytes"
    ]
    # The same limits through a Pub/Sub message: 524,289 bytes still fit the envelope's
    # bound (their base64 is 699,052 characters), so the entry's own limit refuses them.
    assert [e.insert_id for e in events.from_cloud_event(envelope(b64(at_limit))).events] == [
        "sample001"
    ]
    assert skips(events.from_cloud_event(envelope(b64(entry_of_size(LIMIT + 1))))) == [
        "too_large: entry of 524289 bytes"
    ]
    assert skips(events.from_cloud_event(envelope(b64(entry_of_size(LIMIT + 2))))) == [
        "too_large: message data of 699056 bytes"
    ]


def test_message_data_longer_than_any_entry_is_refused_before_it_is_decoded() -> None:
    assert skips(events.from_cloud_event(envelope("A" * (ENVELOPE_LIMIT + 1)))) == [
        "too_large: message data of 699055 bytes"
    ]
    # one character less is decoded (and is not valid base64: 699,054 is no multiple of 4)
    assert skips(events.from_cloud_event(envelope("A" * ENVELOPE_LIMIT))) == [
        "bad_base64: Incorrect padding"
    ]


@pytest.mark.parametrize(
    ("data", "skip"),
    [
        # characters outside the alphabet are refused, not dropped
        (b64(LINES[0].encode())[:40] + "*" + b64(LINES[0].encode())[40:], "bad_base64: Only base64 data is allowed"),
        ("YQ==YQ==", "bad_base64: Excess data after padding"),
        # a long reason is cut to 80 characters
        (
            "abcde",
            "bad_base64: Invalid base64-encoded string: number of data characters (5) cannot be 1 more th",
        ),
        (b64(b"{not json"), "bad_json: unexpected character, expected a string key: line 1 column 2 (char 1)"),
        (b64(b"[1, 2]"), "not_a_log_entry: list"),
    ],
)  # fmt: skip
def test_a_message_that_is_not_an_entry_says_why(data: str, skip: str) -> None:
    assert skips(events.from_cloud_event(envelope(data))) == [skip]


def test_the_envelope_may_come_as_a_dict_as_json_text_or_as_an_object() -> None:
    body = envelope(b64(LINES[0].encode()))

    class ItemsOnly:
        """An event type that offers its fields by item access only."""

        def __getitem__(self, key: str) -> Any:
            return body[key]

    class Attribute:
        data = body["data"]

    for event in (body, {"data": json.dumps(body["data"])}, ItemsOnly(), Attribute()):
        assert [e.insert_id for e in events.from_cloud_event(event).events] == ["sample001"]
    assert [e.insert_id for e in events.from_cloud_event(Attribute()).events] == ["sample001"]
    # data that is text but not JSON, or JSON without a message, is no Pub/Sub event
    for event in ({"data": "{not json"}, {"data": '{"message": 1}'}, {"data": {"message": {}}}):
        assert skips(events.from_cloud_event(event)) == ["not_a_cloud_event: no data.message.data"]


def test_an_event_object_that_fails_when_read_is_a_skip_that_names_the_error() -> None:
    class Exploding:
        @property
        def data(self) -> Any:
            raise RuntimeError("broken " + "x" * 200)

    assert skips(events.from_cloud_event(Exploding())) == [
        "not_a_cloud_event: RuntimeError: broken " + "x" * 73
    ]


def test_an_entry_without_a_time_takes_the_attribute_else_the_publish_time() -> None:
    raw = first_entry()
    del raw["timestamp"], raw["receiveTimestamp"]
    data = b64(json.dumps(raw).encode())
    attribute = {"logging.googleapis.com/timestamp": "2026-10-01T08:00:01Z"}
    published = "2026-10-01T08:00:07.5Z"
    for message, expected in [
        ({"attributes": attribute, "publishTime": published}, datetime(2026, 10, 1, 8, 0, 1)),
        ({"attributes": {"other": "x"}, "publishTime": published}, datetime(2026, 10, 1, 8, 0, 7, 500000)),
        ({"publishTime": published}, datetime(2026, 10, 1, 8, 0, 7, 500000)),
    ]:  # fmt: skip
        [event] = events.from_cloud_event(envelope(data, **message)).events
        assert event.event_time == expected.replace(tzinfo=UTC)
    assert skips(events.from_cloud_event(envelope(data))) == ["missing_field: timestamp"]


# -- skips and their text ----------------------------------------------------------------


def test_a_skip_reads_as_its_code_and_its_detail_escaped_only_when_unprintable() -> None:
    assert str(Skip("bad_json")) == "bad_json"
    assert str(Skip("bad_json", 'it\'s "quoted" C:\\path')) == 'bad_json: it\'s "quoted" C:\\path'
    assert str(Skip("bad_json", "a\nb\tc")) == "bad_json: a\\nb\\tc"
    assert str(Skip("bad_json", "'\n")) == "bad_json: '\\n"


def test_a_skip_of_a_cloud_run_entry_keeps_its_insert_id() -> None:
    raw = json.loads((FIXTURES / "cloudrun-audit-replace-service.json").read_text())
    raw["protoPayload"]["methodName"] = "google.cloud.run.v1.Services.DeleteService"
    [skip] = parse_log_entry(raw).skipped
    assert (skip.code, skip.detail, skip.insert_id) == (
        "unsupported_resource",
        "Cloud Run google.cloud.run.v1.Services.DeleteService",
        raw["insertId"],
    )
    raw["protoPayload"]["methodName"] = "google.cloud.run.v1.Services.ReplaceService"
    raw["protoPayload"]["status"] = {"code": 7, "message": "Permission denied"}
    [skip] = parse_log_entry(raw).skipped
    assert (skip.code, skip.detail, skip.insert_id) == (
        "request_failed",
        "Permission denied",
        raw["insertId"],
    )


def test_the_project_comes_from_the_log_name_when_no_label_gives_it() -> None:
    raw = first_entry()
    del raw["resource"]["labels"]["project_id"]
    assert parse_log_entry(raw).events[0].project_id == "example-prod"
    # a BigQuery sink export writes the field lower-cased
    raw["logname"] = raw.pop("logName")
    assert parse_log_entry(raw).events[0].project_id == "example-prod"
    raw["logname"] = "organizations/123/logs/events"
    assert parse_log_entry(raw).events[0].project_id is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("3.402s", 3.402),
        ("523ms", 0.523),
        ("1.5ms", 0.0015),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("2000ns", 2e-06),
        ("1m2.5s", 62.5),
        ("1h2m3s", 3723.0),
        ("1.23456789s", 1.234568),  # to the microsecond
        ("", None),
        ("1sx", None),  # something after the last unit
        ("x1s", None),  # something before the first
        ("1s 2s", None),
        ("1.2.3s", None),
    ],
)
def test_go_durations(text: str, seconds: float | None) -> None:
    assert go_duration(text) == seconds


# -- exported files ----------------------------------------------------------------------


def _array_text() -> tuple[str, list[Any]]:
    entries = [json.loads(line) for line in LINES[:4]]
    return json.dumps(entries, indent=1), entries


def test_an_array_reads_the_same_however_the_file_is_cut_into_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text, entries = _array_text()
    text = text.replace(",\n", " ,\n", 2)  # blanks before separators too
    for chunk in range(1, 300):
        monkeypatch.setattr(events.files, "_CHUNK", chunk)
        assert list(events.read_entries(io.StringIO(text))) == entries, chunk
    # blanks before the array: the first chunk shows what kind of file it is
    for chunk in range(3, 40):
        monkeypatch.setattr(events.files, "_CHUNK", chunk)
        assert list(events.read_entries(io.StringIO(" \n" + text))) == entries, chunk


class CountingReader(io.StringIO):
    """A text stream that records how much each read asked for."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.asked: list[int | None] = []

    def read(self, size: int | None = -1, /) -> str:
        self.asked.append(size)
        return super().read(size)


def test_a_file_is_read_a_bounded_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events.files, "_CHUNK", 1000)
    text, entries = _array_text()
    for form in (text, "\n".join(LINES[:4]) + "\n"):
        stream = CountingReader(form * 1 if form is text else form)
        read = list(events.read_entries(stream))
        assert read == entries
        assert stream.asked and all(size == 1000 for size in stream.asked), stream.asked


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # cut short: the offset of the unfinished element, counted from the file's start
        ('  \n[{"a": 1}, {"b": ', "JSON array malformed or cut short near character 14"),
        ('[{"a": 1}, {"b": 2]', "JSON array malformed or cut short near character 11"),
        ('[1, ' + "[" * 100_000, "JSON array element at character 4 is nested too deeply"),
    ],
)  # fmt: skip
def test_a_broken_array_names_where_it_breaks(
    text: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for chunk in (5, 1 << 20):
        monkeypatch.setattr(events.files, "_CHUNK", chunk)
        with pytest.raises(events.MalformedInput) as info:
            list(events.read_entries(io.StringIO(text)))
        assert str(info.value) == message


def test_an_element_that_never_ends_is_refused_once_it_outgrows_any_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(events.files, "_CHUNK", 1 << 16)
    text = '[{"a": 1}, "' + "x" * (4 * LIMIT + 10)  # an unterminated string, 2 MiB on
    stream = CountingReader(text)
    with pytest.raises(events.MalformedInput) as info:
        list(events.read_entries(stream))
    assert str(info.value) == "JSON array element at character 11 is not valid JSON"
    # it stopped soon after the element outgrew four entries, not at the end of the input
    assert stream.tell() < 4 * LIMIT + 2 * (1 << 16) + 12


@pytest.mark.parametrize(
    "number",
    [
        "9223372036854775807",
        "-9223372036854775808",
        "-9223372036854775809",  # below the signed 64-bit range: a float
        "18446744073709551615",  # the largest unsigned 64-bit integer
        "18446744073709551616",  # one more: a float
        "99999999999999999999",
        "123456789012345678901",
    ],
)
def test_an_integer_reads_the_same_from_an_array_and_from_json_lines(number: str) -> None:
    line = '{"n": ' + number + "}"
    [from_line] = list(events.read_entries(io.StringIO(line + "\n")))
    [from_array] = list(events.read_entries(io.StringIO("[" + line + "]")))
    assert from_array == from_line
    assert type(from_array["n"]) is type(from_line["n"])


def test_events_round_trip_through_json() -> None:
    event = parse_log_entry(first_entry()).events[0]
    assert PullEvent.from_json(json.loads(json.dumps(event.to_json()))) == event
    assert PullEvent.from_json(event._asdict()) == event
