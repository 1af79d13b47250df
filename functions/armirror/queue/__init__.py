"""The CopyQueue protocol: one job copies one image, and a job is never queued twice.

Two adapters: :mod:`armirror.queue.cloudtasks` (Cloud Tasks, HTTP target, named tasks
for deduplication) and :mod:`armirror.queue.local` (an in-process worker pool, the
embedded default).  The core only knows this protocol.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class CopyJob:
    """Copy ``source`` to ``destination``; ``digest`` pins a refresh to the upstream it saw."""

    source: str
    destination: str
    reason: str = "manual"  # pull | rate_limited | manual | refresh
    digest: str | None = None

    @property
    def job_id(self) -> str:
        """Deterministic: a hash of source, destination (and a refresh's digest).

        It is a valid Cloud Tasks task ID ([A-Za-z0-9_-], well under 500 characters), so
        a redelivered event or a repeated request names the same task and is refused as
        a duplicate instead of copying twice.
        """
        key = "\n".join([self.source, self.destination, self.digest or ""])
        return "copy-" + hashlib.sha256(key.encode()).hexdigest()[:48]

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, **asdict(self)}

    def body(self) -> bytes:
        """The copy_image request body."""
        return json.dumps({"source": self.source, "destination": self.destination}).encode()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CopyJob:
        return cls(
            source=str(data["source"]),
            destination=str(data["destination"]),
            reason=str(data.get("reason") or "manual"),
            digest=data.get("digest"),
        )


class QueueUnavailable(Exception):
    """The queue cannot take jobs right now; the caller should let its trigger retry."""


class CopyQueue(Protocol):
    """Where copy jobs wait for a worker."""

    def enqueue(self, job: CopyJob) -> bool:
        """Queue a job; False when a job with the same ID is already queued or recently ran.

        Raises :class:`QueueUnavailable` for faults a retry can fix.
        """
        ...

    def close(self) -> None: ...
