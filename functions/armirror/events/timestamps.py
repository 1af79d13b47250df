"""Timestamps as log entries and their exports write them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

_FRACTION_RE = re.compile(r"(\.\d{1,6})\d*")


def parse_timestamp(value: Any) -> datetime:
    """An RFC 3339 timestamp (any fraction length), BigQuery's ``… UTC`` form, or epoch
    seconds, as an aware UTC datetime.  Raises ``ValueError`` otherwise."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        # Nanoseconds, as Cloud Logging writes them: Python reads six digits at most.
        parsed = datetime.fromisoformat(_FRACTION_RE.sub(r"\1", text, count=1))
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
