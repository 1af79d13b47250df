"""Pull budgets: how long a refused image is told to wait, and what the refusal says.

Docker Hub reports ``ratelimit-remaining: 76;w=21600`` (docs.docker.com/docker-hub/usage/
pulls/).  When an image needs more manifest GETs than remain, ``check`` refuses it with a
retry time; the copier turns that into the job's next attempt, so the arithmetic decides
when a job runs again.
"""

from __future__ import annotations

import contextvars
import time

import pytest
from armirror.registry.budget import (
    RateLimit,
    check,
    count_manifest_get,
    manifest_gets,
    observed,
    parse_value,
    parse_window,
)
from armirror.registry.errors import RateLimited, is_retryable

HUB_WINDOW = 21600.0  # Docker Hub's six hours


@pytest.mark.parametrize(
    ("limit", "remaining", "window", "needed", "wait"),
    [
        # Enough left: no wait at all.
        (100, 5, HUB_WINDOW, 5, 0.0),
        (100, 5, HUB_WINDOW, 3, 0.0),
        (None, 2, None, 2, 0.0),
        # 10 missing of 100 per 6 h: a tenth of the window comes back in 36 min.
        (100, 0, HUB_WINDOW, 10, 2160.0),
        # 1 missing of 100: 216 s.
        (100, 4, HUB_WINDOW, 5, 216.0),
        # Never sooner than a minute: 1 of 1000 per hour would be 3.6 s.
        (1000, 0, 3600.0, 1, 60.0),
        # Never later than the window, however many are missing.
        (10, 0, 600.0, 50, 600.0),
        # An estimate with a fraction is rounded up: 7 * 3600 / 400 = 63 s exactly,
        # 1 * 3601 / 59 = 61.03 -> 62.
        (400, 0, 3600.0, 7, 63.0),
        (59, 0, 3601.0, 1, 62.0),
        # No limit reported: the whole window; no window either: an hour.
        (None, 0, HUB_WINDOW, 1, HUB_WINDOW),
        (0, 0, HUB_WINDOW, 1, HUB_WINDOW),
        (None, 0, None, 1, 3600.0),
        (100, 0, None, 10, 360.0),
    ],
)
def test_seconds_until(
    limit: int | None, remaining: int | None, window: float | None, needed: int, wait: float
) -> None:
    got = RateLimit(limit, remaining, window).seconds_until(needed)
    assert got == wait
    assert isinstance(got, float)


@pytest.mark.parametrize(
    ("remaining_header", "limit_header", "needed", "message", "wait"),
    [
        (
            "1;w=21600",
            "100;w=21600",
            3,
            "needs 3 manifest GET(s) at registry-1.docker.io, which allows 1 more in its "
            "6-hour window; not spending them (retry in about 7 min)",
            432.0,
        ),
        (
            "0;w=3600",
            "100",
            2,
            "which allows 0 more in its 1-hour window; not spending them (retry in about 1 min)",
            72.0,
        ),
        (
            "0;w=5400",
            "10",
            1,
            "which allows 0 more in its 1.5-hour window; not spending them (retry in about 9 min)",
            540.0,
        ),
        (
            "0;w=1800",
            "10",
            1,
            "which allows 0 more in its 1800-second window; not spending them "
            "(retry in about 3 min)",
            180.0,
        ),
        (
            "0;w=3599",
            "10",
            1,
            "which allows 0 more in its 3599-second window",
            360.0,
        ),
        (
            "2",
            "100",
            5,
            "which allows 2 more in its current window; not spending them (retry in about 2 min)",
            108.0,
        ),
    ],
)
def test_a_refusal_names_the_budget_and_the_window(
    remaining_header: str, limit_header: str, needed: int, message: str, wait: float
) -> None:
    seen = observed(limit_header, remaining_header)
    with pytest.raises(RateLimited) as refused:
        check(seen, needed, "docker.io/library/nginx:1", "registry-1.docker.io")
    assert str(refused.value).startswith("docker.io/library/nginx:1: needs ")
    assert message in str(refused.value)
    assert refused.value.retry_after == wait
    assert refused.value.status is None  # no answer was a 429: armirror refused itself
    assert is_retryable(refused.value)


@pytest.mark.parametrize(
    ("seen", "needed"),
    [
        (None, 10),
        (RateLimit(100, None, HUB_WINDOW), 10),
        (RateLimit(100, 3, HUB_WINDOW), 3),
        (RateLimit(100, 0, HUB_WINDOW), 0),
    ],
)
def test_what_fits_or_is_unknown_is_never_refused(seen: RateLimit | None, needed: int) -> None:
    check(seen, needed, "quay.io/a/b:1", "quay.io")


@pytest.mark.parametrize(
    ("header", "value", "window"),
    [
        ("100;w=21600", 100, 21600.0),
        ("76;w=21600", 76, 21600.0),
        ("  76 ;w=21600", 76, 21600.0),
        ("0", 0, None),
        ("5; w = 60", 5, 60.0),
        ("5;comment;w=60", 5, 60.0),
        ("", None, None),
        (None, None, None),
        ("many", None, None),
        ("-1;w=60", None, 60.0),
        ("7 8", None, None),
        ("w=60", None, None),
        ("3;window=60", 3, None),
    ],
)
def test_parse_rate_limit_headers(
    header: str | None, value: int | None, window: float | None
) -> None:
    assert parse_value(header) == value
    assert parse_window(header) == window


def test_observed_reads_the_window_from_either_header() -> None:
    assert observed("100;w=21600", "76;w=21600") == RateLimit(
        100, 76, 21600.0, observed_at=pytest.approx(time.time(), abs=60)
    )
    seen = observed("100;w=3600", "9")
    assert seen is not None and (seen.limit, seen.remaining, seen.window) == (100, 9, 3600.0)
    seen = observed("100;w=3600", "9;w=60")  # the remaining count's own window first
    assert seen is not None and seen.window == 60.0
    seen = observed(None, "9")
    assert seen is not None and (seen.limit, seen.remaining, seen.window) == (None, 9, None)
    # Without a remaining count there is no budget to keep, whatever the limit says.
    assert observed("100;w=21600", None) is None
    assert observed("100;w=21600", "unknown") is None


def test_manifest_gets_are_counted_per_endpoint_only_inside_a_copy() -> None:
    count_manifest_get("registry-1.docker.io")  # outside a copy: nowhere to count, no error
    assert manifest_gets.get() is None

    def one_copy() -> dict[str, int] | None:
        manifest_gets.set({})
        count_manifest_get("registry-1.docker.io")
        count_manifest_get("registry-1.docker.io")
        count_manifest_get("mirror.gcr.io")
        return manifest_gets.get()

    assert contextvars.copy_context().run(one_copy) == {
        "registry-1.docker.io": 2,
        "mirror.gcr.io": 1,
    }
    assert manifest_gets.get() is None
