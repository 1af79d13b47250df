"""RetryPolicy, retry_after_seconds and the per-endpoint Backoff, as tables."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from armirror.registry.retry import (
    NO_RETRY,
    RETRY_AFTER_CEILING,
    Backoff,
    RetryPolicy,
    retry_after_seconds,
)

NOW = 1_800_000_000.0


def http_date(offset: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),  # a negative wait is no wait
        (http_date(30), 30.0),
        (http_date(-30), 0.0),  # a date in the past
        ("1e308", RETRY_AFTER_CEILING),  # huge, capped so the answer's header stays small
        ("inf", None),
        ("nan", None),
        ("soon", None),
        ("Wed, 99 Foo 2026 99:99:99 GMT", None),
        ("Wed, 21 Oct 2015 07:28:00", None),  # no zone: not an HTTP date
    ],
)
def test_retry_after_seconds(header: str | None, seconds: float | None) -> None:
    got = retry_after_seconds(header, now=NOW)
    if seconds is None:
        assert got is None
    else:
        assert got is not None and math.isclose(got, seconds, abs_tol=1.0)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": -1}, "attempts"),
        ({"base_delay": -0.1}, "base_delay"),
        ({"max_delay": float("inf")}, "max_delay"),
        ({"max_retry_after": float("nan")}, "max_retry_after"),
        ({"base_delay": 2.0, "max_delay": 1.0}, "max_delay"),
    ],
)
def test_retry_policy_refuses_nonsense(kwargs: dict[str, float], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("policy", "attempt", "retry_after", "low", "high"),
    [
        (RetryPolicy(attempts=3, base_delay=1, max_delay=8), 0, None, 0.0, 1.0),
        (RetryPolicy(attempts=5, base_delay=1, max_delay=8), 2, None, 0.0, 4.0),
        (RetryPolicy(attempts=9, base_delay=1, max_delay=8), 6, None, 0.0, 8.0),  # capped
        (RetryPolicy(attempts=3), 0, 5.0, 5.0, 5.1),  # Retry-After is waited out
        (RetryPolicy(attempts=3, max_retry_after=60), 0, 60.0, 60.0, 60.1),
    ],
)
def test_retry_policy_pause(
    policy: RetryPolicy, attempt: int, retry_after: float | None, low: float, high: float
) -> None:
    for _ in range(50):
        pause = policy.pause(attempt, retry_after)
        assert pause is not None and low <= pause <= high


@pytest.mark.parametrize(
    ("policy", "attempt", "retry_after"),
    [
        (RetryPolicy(attempts=3), 2, None),  # attempts spent
        (RetryPolicy(attempts=3), 2, 1.0),
        (RetryPolicy(attempts=3, max_retry_after=60), 0, 61.0),  # too long to wait
        (NO_RETRY, 0, None),  # the inner requests of a retried transfer
    ],
)
def test_retry_policy_gives_up(
    policy: RetryPolicy, attempt: int, retry_after: float | None
) -> None:
    assert policy.pause(attempt, retry_after) is None


def test_backoff_holds_and_never_shortens() -> None:
    backoff = Backoff()
    assert backoff.remaining() == 0
    backoff.hold(30)
    backoff.hold(1)  # a shorter hold does not cut the longer one
    assert 29 < backoff.remaining() <= 30
