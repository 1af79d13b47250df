"""The deployed functions' log: structured lines Cloud Logging reads a severity from, and
a Pub/Sub push body functions-framework could not convert, read as the CloudEvent it is.

End to end (functions-framework, both emulators) in tests/e2e/test_cloud_mode.py.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from armirror import cloudlog
from armirror.events import from_cloud_event
from armirror.runtime import push_as_cloud_event
from standins.logentries import kubelet_entry, push_body


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root, ours = logging.getLogger(), logging.getLogger("armirror")
    saved = (list(root.handlers), root.level, ours.level)
    out = io.StringIO()
    cloudlog.configure(out)
    yield out
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    ours.setLevel(saved[2])


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_armirror_info_is_a_structured_line_with_its_severity(stream: io.StringIO) -> None:
    logging.getLogger("armirror.pipeline").info("queued %s", "docker.io/library/nginx:1")
    logging.getLogger("armirror.pipeline").error("configuration error: %s", "refused")
    assert lines(stream) == [
        {"severity": "INFO", "message": "queued docker.io/library/nginx:1", "logger": "armirror.pipeline"},
        {"severity": "ERROR", "message": "configuration error: refused", "logger": "armirror.pipeline"},
    ]  # fmt: skip


def test_other_libraries_log_warnings_only(stream: io.StringIO) -> None:
    # httpx logs each request's URL at INFO; an upload URL carries the session's state.
    logging.getLogger("httpx").info(
        "HTTP Request: PUT https://r.example/v2/x/blobs/uploads/1?_state=s"
    )
    logging.getLogger("urllib3.connectionpool").warning("retrying")
    assert [(e["logger"], e["severity"]) for e in lines(stream)] == [
        ("urllib3.connectionpool", "WARNING")
    ]


def test_a_traceback_stays_in_one_entry_and_a_long_message_is_cut(stream: io.StringIO) -> None:
    log = logging.getLogger("armirror.server")
    try:
        raise RuntimeError("store unavailable")
    except RuntimeError:
        log.exception("on_pull_event failed")
    log.info("x" * (cloudlog.MAX_MESSAGE * 2))
    failed, long = lines(stream)
    assert failed["message"].startswith("on_pull_event failed\nTraceback")
    assert "RuntimeError: store unavailable" in failed["message"]
    assert len(long["message"]) == cloudlog.MAX_MESSAGE


def test_configuring_again_keeps_one_handler(stream: io.StringIO) -> None:
    second = io.StringIO()
    cloudlog.configure(second)
    logging.getLogger("armirror").info("once")
    assert stream.getvalue() == "" and len(lines(second)) == 1


# -- push bodies functions-framework did not convert -----------------------------------------


def test_a_push_body_is_the_data_of_its_cloud_event() -> None:
    entry = kubelet_entry("i-1", datetime(2026, 10, 1, tzinfo=UTC), "Pulling", "nginx:1")
    body = push_body(entry, "1234")
    event = push_as_cloud_event(json.dumps(body).encode())
    assert event is not None and event["id"] == "1234" and event["data"] == body
    (pulled,) = from_cloud_event(event).events
    assert pulled.insert_id == "i-1" and pulled.reference == "docker.io/library/nginx:1"


def test_a_message_with_attributes_only_is_skipped_not_refused() -> None:
    body = push_body(b"", "5678")
    assert "data" not in body["message"]
    event = push_as_cloud_event(json.dumps(body).encode())
    assert event is not None and event["id"] == "5678"
    parsed = from_cloud_event(event)
    assert parsed.events == [] and parsed.skip_reason


@pytest.mark.parametrize(
    "body",
    [
        b"hello",
        b"[1, 2]",
        b'{"message": {"data": "eA=="}}',  # no subscription: not from Pub/Sub
        b'{"message": "x", "subscription": "projects/p/subscriptions/s"}',
        b"[" * 100_000,
        base64.b64encode(b"{}"),
    ],
    ids=["text", "array", "no-subscription", "message-not-an-object", "deep", "base64"],
)
def test_a_body_that_is_no_push_body_is_left_to_the_framework(body: bytes) -> None:
    assert push_as_cloud_event(body) is None
