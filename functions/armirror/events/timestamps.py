"""Timestamps as log entries and their exports write them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_timestamp(value: Any) -> datetime:
    """An RFC 3339 timestamp (any fraction length), BigQuery's ``… UTC`` form, or epoch
    seconds, as an aware UTC datetime.  Raises ``ValueError`` otherwise."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError(f"not a timestamp: {value!r}")
    # BigQuery writes "… UTC": without it the time has no offset, which reads as UTC.
    # Nanoseconds, as Cloud Logging writes them, are cut to microseconds (Python 3.11+).
    parsed = datetime.fromisoformat(value.strip().removesuffix(" UTC"))
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
