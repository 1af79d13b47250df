"""The retry policy at its edges: full jitter spans its whole range, the last attempt is
the last, Retry-After values read exactly, and a hold is over when a wait returns.

tests/unit/test_registry_retry.py holds the main tables.  No test here measures time:
the waits are bounded only so that a broken wait fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from armirror.registry.retry import (
    RETRY_AFTER_CEILING,
    Backoff,
    Backoffs,
    RetryPolicy,
    retry_after_seconds,
)

SAMPLES = 400


@pytest.mark.parametrize(
    ("policy", "attempt", "cap"),
    [
        (RetryPolicy(attempts=9, base_delay=0.25, max_delay=8), 0, 0.25),
        (RetryPolicy(attempts=9, base_delay=0.25, max_delay=8), 2, 1.0),
        (RetryPolicy(attempts=9, base_delay=1, max_delay=100), 3, 8.0),
        (RetryPolicy(attempts=9, base_delay=1, max_delay=5), 4, 5.0),  # capped
    ],
)
def test_backoff_is_full_jitter_over_the_whole_range(
    policy: RetryPolicy, attempt: int, cap: float
) -> None:
    """Each pause lies in [0, min(max_delay, base_delay * 2**attempt)], and they spread
    over it: of 400 draws, some fall in the lowest and some in the highest quarter (the
    odds of failing by chance are below 1e-49)."""
    pauses = [policy.pause(attempt, None) for _ in range(SAMPLES)]
    assert all(p is not None and 0 <= p <= cap for p in pauses)
    numbers = [p for p in pauses if p is not None]
    assert min(numbers) < cap / 4 and max(numbers) > cap * 3 / 4


def test_retry_after_adds_at_most_a_tenth_of_a_second() -> None:
    pauses = [RetryPolicy(attempts=3).pause(0, 2.0) for _ in range(SAMPLES)]
    numbers = [p for p in pauses if p is not None]
    assert len(numbers) == SAMPLES
    assert all(2.0 <= p <= 2.1 for p in numbers)
    assert max(numbers) > 2.075


@pytest.mark.parametrize("attempts", [2, 3, 5])
def test_every_attempt_but_the_last_is_retried(attempts: int) -> None:
    policy = RetryPolicy(attempts=attempts, base_delay=0, max_delay=0)
    last = attempts - 1
    assert [policy.pause(a, None) for a in range(attempts)] == [0.0] * last + [None]
    assert [policy.pause(a, 1.0) is None for a in range(attempts)] == [False] * last + [True]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 1},
        {"base_delay": 0, "max_delay": 0},
        {"base_delay": 1.5, "max_delay": 1.5},
        {"max_retry_after": 0},
    ],
)
def test_policies_at_the_limits_are_accepted(kwargs: dict[str, float]) -> None:
    RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("0", 0.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("-0.25", 0.0),
        ("86400", 86400.0),
        ("86401", RETRY_AFTER_CEILING),
    ],
)
def test_retry_after_numbers_are_read_exactly(header: str, seconds: float) -> None:
    assert retry_after_seconds(header) == seconds


def test_an_http_date_is_read_against_the_clock_when_no_time_is_given() -> None:
    when = format_datetime(datetime.fromtimestamp(time.time() + 3600, UTC), usegmt=True)
    seconds = retry_after_seconds(when)
    assert seconds is not None and 3500 < seconds <= 3600


def test_a_wait_returns_when_the_hold_is_over() -> None:
    backoff = Backoff()
    backoff.hold(0.3)
    asyncio.run(asyncio.wait_for(backoff.wait(), timeout=60))
    assert backoff.remaining() == 0


def test_a_blocking_wait_returns_when_the_hold_is_over() -> None:
    backoff = Backoff()
    backoff.hold(0.3)
    failures: list[BaseException] = []

    def wait() -> None:
        try:
            backoff.wait_sync()
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    waiter.join(timeout=60)
    assert not waiter.is_alive()
    assert failures == []
    assert backoff.remaining() == 0


def test_a_wait_with_no_hold_returns_at_once() -> None:
    backoff = Backoff()
    backoff.wait_sync()
    asyncio.run(backoff.wait())
    assert backoff.remaining() == 0


def test_each_endpoint_has_one_backoff_of_its_own() -> None:
    backoffs = Backoffs()
    hub = backoffs.for_endpoint("https://registry-1.docker.io")
    assert backoffs.for_endpoint("https://registry-1.docker.io") is hub
    hub.hold(30)
    assert backoffs.for_endpoint("https://registry-1.docker.io").remaining() > 29
    assert backoffs.for_endpoint("https://quay.io").remaining() == 0
