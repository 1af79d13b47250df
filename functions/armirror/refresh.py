"""Refresh: find the mirrored tags whose upstream moved, many at a time, within budget.

A refresh HEADs every mirrored tag at its upstream (a HEAD is a "version check", which
Docker Hub does not count as a pull; a registry with several endpoints is asked at
each, and the first that has the tag answers) and hands each tag that now names another
digest to a callback, which queues its re-copy.  The checks run ``concurrency`` at a time: at
50 ms a round trip, 5,000 tags one after another are four minutes of function time, 32
at a time about eight seconds.

The re-copies are what costs pulls.  Where the endpoint that answered reports
``ratelimit-remaining``, each queued re-copy claims the manifest GETs it will make (its
top manifest, and one per platform for an index), and the refresh queues no more once
the claims would take that endpoint below ``floor``; a registry whose endpoints are all
below it is not checked any further.  The
skipped tags are found again by the next refresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from armirror.reference import InvalidReference, Reference, parse
from armirror.registry import RegistryClient, RegistryError
from armirror.registry.manifest import INDEX_TYPES, Descriptor

#: refresh stops before a registry's remaining allowance falls below this.
RATELIMIT_FLOOR = 10
DEFAULT_CONCURRENCY = 32


@dataclass
class RefreshReport:
    """What a refresh found; ``to_json`` is the refresh function's answer."""

    checked: int = 0
    unchanged: int = 0
    changed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def stopped_early(self) -> bool:
        """Whether a rate-limit budget left tags unchecked or moved tags unqueued."""
        return any(s["reason"].startswith("ratelimit") for s in self.skipped)

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "stopped_early": self.stopped_early,
        }


class PullBudget:
    """Manifest GETs that queued re-copies will make at each endpoint, against what the
    endpoint last said remains.  Endpoints that send no ``ratelimit-remaining`` header
    have no budget to keep."""

    def __init__(self, client: RegistryClient, floor: int = RATELIMIT_FLOOR) -> None:
        self.client = client
        self.floor = floor
        self.claimed: dict[str, int] = {}

    def _left(self, endpoint: str) -> int | None:
        remaining = self.client.ratelimit_remaining(endpoint)
        if remaining is None:
            return None
        return remaining - self.claimed.get(endpoint, 0)

    def exhausted(self, registry: str) -> str | None:
        """Why ``registry`` must not be checked further (none of its endpoints could
        serve even one more GET), or None."""
        lefts = [self._left(e) for e in self.client.candidates(registry)]
        if all(left is not None and left <= self.floor for left in lefts):
            shown = min(left for left in lefts if left is not None)
            return f"ratelimit-remaining {shown} after queued re-copies (floor {self.floor})"
        return None

    def claim(self, endpoint: str, gets: int) -> str | None:
        """Reserve ``gets`` manifest GETs; the reason when that would cross the floor."""
        left = self._left(endpoint)
        if left is not None and left - gets < self.floor:
            return (
                f"ratelimit budget: the re-copy needs up to {gets} manifest GET(s), "
                f"{left} remain after queued re-copies (floor {self.floor})"
            )
        self.claimed[endpoint] = self.claimed.get(endpoint, 0) + gets
        return None


async def _gets_for(client: RegistryClient, head: Descriptor, destination: Reference) -> int:
    """Manifest GETs a re-copy may make: 1 for an image; for an index 1 plus one per
    platform of the mirror's current copy (a GET at the destination, which has no pull
    limit), or 2 when that cannot be read."""
    if head.media_type not in INDEX_TYPES:
        return 1
    try:
        mirrored = await client.get_manifest(destination)
        return 1 + max(1, len(mirrored.children()))
    except RegistryError:
        return 2


async def find_moved(
    client: RegistryClient,
    tags: Iterable[tuple[str, str]],
    *,
    destination_of: Callable[[Reference], Reference],
    on_moved: Callable[[Reference, Reference, str], Awaitable[None]],
    concurrency: int = DEFAULT_CONCURRENCY,
    floor: int = RATELIMIT_FLOOR,
) -> RefreshReport:
    """HEAD each ``(source, mirrored digest)`` upstream, ``concurrency`` at a time; call
    ``on_moved(source, destination, new digest)`` for each that moved, within budget."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    report = RefreshReport()
    budget = PullBudget(client, floor)
    slots = asyncio.Semaphore(concurrency)

    async def check(source_text: str, digest: str) -> None:
        try:
            source = parse(source_text)
        except InvalidReference as exc:
            report.skipped.append({"source": source_text, "reason": str(exc)})
            return
        exhausted = budget.exhausted(source.registry)
        if exhausted:
            report.skipped.append({"source": source_text, "reason": exhausted})
            return
        try:
            resolved = await client.resolve(source)
        except RegistryError as exc:
            report.skipped.append({"source": source_text, "reason": str(exc)})
            return
        report.checked += 1
        if resolved is None or resolved.descriptor.digest in ("", digest):
            report.unchanged += 1
            return
        head = resolved.descriptor
        destination = destination_of(source)
        refused = budget.claim(resolved.endpoint, await _gets_for(client, head, destination))
        if refused:
            report.skipped.append({"source": source_text, "reason": refused})
            return
        await on_moved(source, destination, head.digest)
        report.changed.append({"source": source_text, "from": digest, "to": head.digest})

    async def bounded(source_text: str, digest: str) -> None:
        async with slots:
            await check(source_text, digest)

    # Tasks are started in bounded batches so that 100,000 tags are not 100,000 pending
    # coroutines at once.
    pending: set[asyncio.Task[None]] = set()
    for source_text, digest in tags:
        if len(pending) >= 4 * concurrency:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a queue fault ends the refresh, so its trigger retries
        pending.add(asyncio.ensure_future(bounded(source_text, digest)))
    if pending:
        await asyncio.gather(*pending)
    return report
