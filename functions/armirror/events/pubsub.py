"""A LogEntry's JSON text, and the Pub/Sub CloudEvent that carries it from an Eventarc
trigger (``data.message.data`` is the base64 of the LogEntry JSON) -> events.

Every problem is a skip: a Pub/Sub message that can never be parsed must be acknowledged,
not redelivered for a day.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from armirror.events.logentry import parse_log_entry
from armirror.events.model import MAX_ENTRY_BYTES, ParseResult, error_text, skipped


def parse_json(text: str | bytes, *, fallback_time: Any = None) -> ParseResult:
    """A LogEntry's JSON text -> its events (bad or oversized JSON is a skip)."""
    if len(text) > MAX_ENTRY_BYTES:
        return skipped("too_large", f"entry of {len(text)} bytes")
    try:
        entry = orjson.loads(text)
    except (ValueError, RecursionError) as exc:
        return skipped("bad_json", error_text(exc))
    return parse_log_entry(entry, fallback_time=fallback_time)


def _cloud_event_data(event: Any) -> Any:
    data = getattr(event, "data", None)
    if data is None:
        try:
            data = event["data"]  # a dict, or cloudevents' CloudEvent (item access)
        except (KeyError, TypeError, IndexError):
            return None
    if isinstance(data, bytes | str):
        try:
            data = orjson.loads(data)
        except (ValueError, RecursionError):
            return None
    return data


def from_cloud_event(event: Any) -> ParseResult:
    """A Pub/Sub CloudEvent (an object with ``.data``, or its dict form) -> events.

    ``data.message.data`` is base64 of the LogEntry JSON.  Every problem is a skip.
    """
    try:
        data = _cloud_event_data(event)
    except Exception as exc:  # an exotic event object; the message is acknowledged
        return skipped("not_a_cloud_event", f"{type(exc).__name__}: {error_text(exc)}")
    message = data.get("message") if isinstance(data, dict) else None
    encoded = message.get("data") if isinstance(message, dict) else None
    if not isinstance(encoded, str | bytes):
        return skipped("not_a_cloud_event", "no data.message.data")
    if len(encoded) > MAX_ENTRY_BYTES * 4 // 3 + 4:
        return skipped("too_large", f"message data of {len(encoded)} bytes")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        return skipped("bad_base64", error_text(exc))
    assert isinstance(message, dict)
    attributes = message.get("attributes")
    fallback = None
    if isinstance(attributes, dict):
        fallback = attributes.get("logging.googleapis.com/timestamp")
    fallback = fallback or message.get("publishTime")
    return parse_json(raw, fallback_time=fallback)
