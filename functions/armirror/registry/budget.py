"""Pull budgets: what a registry says remains, and what an image will spend.

Docker Hub counts pulls as manifest GETs: "A pull for a normal image makes one pull for
a single manifest. A pull for a multi-arch image will count as one pull for each
different architecture", and "version checks" (HEADs) do not count
(docs.docker.com/docker-hub/usage/pulls/, "Pull definition").  Its answers carry
``ratelimit-limit: 100;w=21600`` and ``ratelimit-remaining: 76;w=21600``: the allowance
and what is left of it in a window of ``w`` seconds.

So before GETting manifests from an endpoint that reports a remaining allowance, the
copier asks :func:`check` whether the image's GETs fit; if not, the image fails as rate
limited at once, with a retry time from the window, instead of spending what is left
and then burning retries on 429s.  :data:`manifest_gets` counts, per image, the
manifest GETs each endpoint served, for the copy's JSON output.
"""

from __future__ import annotations

import contextvars
import math
import re
import time
from dataclasses import dataclass, field

from armirror.registry.errors import RateLimited

_VALUE = re.compile(r"^\s*(\d+)\s*(?:;.*)?$")
_WINDOW = re.compile(r";\s*w\s*=\s*(\d+)")
#: The shortest retry time a budget refusal asks for.
MIN_RETRY_SECONDS = 60.0
#: The window assumed when a registry gives a remaining count without one (an hour).
DEFAULT_WINDOW_SECONDS = 3600.0


@dataclass
class RateLimit:
    """A registry's ``ratelimit-limit`` / ``ratelimit-remaining``, as last seen."""

    limit: int | None
    remaining: int | None
    window: float | None = None  # seconds, from ``w=``
    observed_at: float = field(default_factory=time.time)

    def seconds_until(self, needed: int) -> float:
        """How long until ``needed`` more pulls are likely allowed.

        Pulls leave a sliding window ``w`` seconds after they were made.  Assuming the
        used ones were spread evenly over it, the missing ones come back after
        ``w * missing / limit``; never sooner than a minute, never later than ``w``.
        """
        window = self.window or DEFAULT_WINDOW_SECONDS
        missing = needed - (self.remaining or 0)
        if missing <= 0:
            return 0.0
        if not self.limit:
            return float(window)
        estimate = window * missing / self.limit
        return float(min(window, max(MIN_RETRY_SECONDS, math.ceil(estimate))))


def parse_value(header: str | None) -> int | None:
    """``100;w=21600`` -> 100; None for anything else."""
    match = _VALUE.match(header or "")
    return int(match.group(1)) if match else None


def parse_window(header: str | None) -> float | None:
    """``100;w=21600`` -> 21600.0; None without a window."""
    match = _WINDOW.search(header or "")
    return float(match.group(1)) if match else None


def observed(limit_header: str | None, remaining_header: str | None) -> RateLimit | None:
    """The rate limit an answer reports, or None when it reports none."""
    remaining = parse_value(remaining_header)
    if remaining is None:
        return None
    window = parse_window(remaining_header) or parse_window(limit_header)
    return RateLimit(parse_value(limit_header), remaining, window)


def check(seen: RateLimit | None, needed: int, what: str, endpoint: str) -> None:
    """Raise :class:`RateLimited` when ``needed`` manifest GETs do not fit in what
    ``endpoint`` last said remains.  Endpoints that say nothing have no budget."""
    if seen is None or seen.remaining is None or needed <= seen.remaining:
        return
    wait = seen.seconds_until(needed)
    raise RateLimited(
        f"{what}: needs {needed} manifest GET(s) at {endpoint}, which allows "
        f"{seen.remaining} more in its {_window_text(seen.window)}; not spending them "
        f"(retry in about {wait / 60:.0f} min)",
        retry_after=wait,
        status=None,
    )


def _window_text(window: float | None) -> str:
    if not window:
        return "current window"
    hours = window / 3600
    return f"{hours:g}-hour window" if hours >= 1 else f"{window:g}-second window"


#: Manifest GETs per endpoint host made on behalf of the image being copied.  Each copy
#: sets a fresh dict; tasks it starts inherit it (asyncio copies the context).
manifest_gets: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar(
    "manifest_gets", default=None
)


def count_manifest_get(host: str) -> None:
    ledger = manifest_gets.get()
    if ledger is not None:
        ledger[host] = ledger.get(host, 0) + 1
