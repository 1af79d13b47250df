"""When to try a registry request again, and for how long a registry asked us to wait.

Retries happen in one layer (issue 13 §6): the request layer retries single requests,
and a whole blob transfer is retried as one unit whose inner requests do not retry
themselves, as go-containerregistry's ``remote/write.go`` does with ``retry.Never``.
A 429, or any answer with ``Retry-After``, holds back every request to that registry
endpoint (:class:`Backoff`), not only the one that received it, as regclient keeps
backoff per host.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

#: Retry-After values beyond this are read as this (a day): nothing waits longer anyway,
#: and a huge number must not overflow the header armirror answers with.
RETRY_AFTER_CEILING = 86_400.0


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter."""

    attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0
    #: A Retry-After longer than this is not waited out: the caller gets RateLimited.
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, got {self.attempts}")
        for name in ("base_delay", "max_delay", "max_retry_after"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"RetryPolicy.{name} must be a finite number >= 0, got {value}")
        if self.max_delay < self.base_delay:
            raise ValueError(
                f"RetryPolicy.max_delay ({self.max_delay}) is below base_delay ({self.base_delay})"
            )

    def delay(self, attempt: int) -> float:
        """The pause before retry number ``attempt + 1`` (attempt counts from 0)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))

    def pause(self, attempt: int, retry_after: float | None) -> float | None:
        """How long to wait before the next attempt, or None to give up now.

        Giving up: the attempts are spent, or the registry asked for a longer wait
        than ``max_retry_after`` (the caller reports it as rate limited instead).
        """
        if attempt + 1 >= self.attempts:
            return None
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return retry_after + random.uniform(0, 0.1)
        return self.delay(attempt)


#: The inner requests of a transfer that is retried as a whole: one attempt each.
NO_RETRY = RetryPolicy(attempts=1)


def retry_after_seconds(header: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: a number or an HTTP date; None if unreadable.

    Negative numbers and dates in the past are 0; values are capped at
    :data:`RETRY_AFTER_CEILING`; ``inf`` and ``nan`` are unreadable.
    """
    if not header:
        return None
    text = header.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result lacked the zone
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), RETRY_AFTER_CEILING)


class Backoff:
    """A registry endpoint's "not before" time, shared by every job that talks to it.

    Safe to use from the event loop and from blob transfer threads at once.
    """

    def __init__(self) -> None:
        self._not_before = 0.0
        self._lock = threading.Lock()

    def hold(self, seconds: float) -> None:
        """Nobody sends to this endpoint for ``seconds`` from now (never shortens a hold)."""
        until = time.monotonic() + seconds
        with self._lock:
            self._not_before = max(self._not_before, until)

    def remaining(self) -> float:
        with self._lock:
            return max(0.0, self._not_before - time.monotonic())

    async def wait(self) -> None:
        while (left := self.remaining()) > 0:
            await asyncio.sleep(left)

    def wait_sync(self) -> None:
        while (left := self.remaining()) > 0:
            time.sleep(left)


class Backoffs:
    """The :class:`Backoff` of each registry endpoint, shared by every client given it.

    A pipeline makes one client per copy job; it hands them all one ``Backoffs`` so
    that a registry's Retry-After holds back the jobs running beside the one that
    received it.
    """

    def __init__(self) -> None:
        self._by_endpoint: dict[str, Backoff] = {}
        self._lock = threading.Lock()

    def for_endpoint(self, endpoint: str) -> Backoff:
        with self._lock:
            return self._by_endpoint.setdefault(endpoint, Backoff())
