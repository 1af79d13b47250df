"""Option types that read a time: a date or an age (``--since``), a duration (``--timeout``)."""

from __future__ import annotations

from typing import Any

import click


class When(click.ParamType):
    """YYYY-MM-DD, an ISO 8601 time (UTC unless it says), or an age: 7d, 12h, 30m."""

    name = "DATE"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        from datetime import UTC, datetime, timedelta

        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        units = {"d": "days", "h": "hours", "m": "minutes"}
        if text[:-1].isdigit() and text[-1:] in units:
            return datetime.now(UTC) - timedelta(**{units[text[-1]]: int(text[:-1])})
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{text!r}: expected YYYY-MM-DD, an ISO time, or an age like 7d", param, ctx)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Duration(click.ParamType):
    """Seconds, or a number with s, m or h: 90, 90s, 5m, 1h."""

    name = "DURATION"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip().lower()
        scale = {"s": 1, "m": 60, "h": 3600}.get(text[-1:])
        number = text[:-1] if scale else text
        try:
            seconds = float(number) * (scale or 1)
        except ValueError:
            self.fail(f"{value!r}: expected seconds or a duration like 90s, 5m, 1h", param, ctx)
        if not 0 < seconds <= 24 * 3600:
            self.fail(f"{value!r}: must be more than 0 and at most 24h", param, ctx)
        return seconds
