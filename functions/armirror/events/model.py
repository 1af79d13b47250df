"""What the parsers give: a :class:`PullEvent`, or a :class:`Skip` that says why not.

Skip codes are stable strings (:data:`SKIP_CODES`): dashboards and logs count them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

from armirror.events.timestamps import parse_timestamp

Reason = Literal["pulling", "pulled", "present", "failed", "rate_limited", "backoff", "deployed"]
REASONS: tuple[str, ...] = (
    "pulling",
    "pulled",
    "present",
    "failed",
    "rate_limited",
    "backoff",
    "deployed",
)

#: Why an entry gave no event.  Stable strings: dashboards and logs count them.
SKIP_CODES: dict[str, str] = {
    "bad_base64": "the Pub/Sub message data is not base64",
    "bad_json": "not a JSON document",
    "not_a_log_entry": "JSON, but not a LogEntry object",
    "not_a_cloud_event": "not a Pub/Sub CloudEvent (no data.message.data)",
    "too_large": "larger than the size armirror reads",
    "missing_field": "a field the entry needs is missing or has the wrong type",
    "bad_timestamp": "the entry's timestamp cannot be read",
    "unsupported_resource": "neither a GKE pod/cluster event nor a Cloud Run audit entry",
    "not_an_image_event": "a kubelet event that is not about pulling an image",
    "no_image": "an image pull error that does not name the image (Error: ErrImagePull)",
    "container_backoff": "a BackOff that restarts a crashing container, not a pull",
    "invalid_reference": "the image is not a valid reference",
    "no_images": "a Cloud Run entry whose request names no container image",
    "request_failed": "a Cloud Run request that failed, so nothing was deployed",
}

#: How much of an error's text a skip quotes: enough to tell one parse error from another.
MAX_ERROR_CHARS = 80

#: Entries larger than this (bytes of JSON) are skipped whole; Cloud Logging's own limit
#: is 256 KiB an entry.
MAX_ENTRY_BYTES = 512 * 1024


class PullEvent(NamedTuple):
    """One thing that happened to one image, with where it happened.

    ``insert_id`` identifies the event: the LogEntry's insertId (suffixed ``#N`` for the
    N-th container image of a Cloud Run entry), so recording it twice counts it once.
    ``repository`` (``library/nginx``) and ``registry`` are what the tables cluster on.

    A named tuple, so immutable (``_replace`` makes a changed copy): building one costs
    a tenth of a frozen dataclass, whose 19 ``object.__setattr__`` calls were a quarter
    of the time `armirror pulls` spent parsing an entry (bench/RESULTS.md, Pulls).
    """

    insert_id: str
    event_time: datetime
    reason: str
    image: str
    reference: str
    registry: str
    repository: str
    registry_class: str
    third_party: bool
    project_id: str | None = None
    location: str | None = None
    cluster: str | None = None
    namespace: str | None = None
    pod: str | None = None
    node: str | None = None
    service: str | None = None
    image_bytes: int | None = None
    pull_seconds: float | None = None
    source: str = "kubelet"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``event_time`` as an RFC 3339 string)."""
        values = self._asdict()
        values["event_time"] = self.event_time.isoformat()
        return values

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PullEvent:
        values = dict(data)
        values["event_time"] = parse_timestamp(values["event_time"])  # text or datetime
        return cls(**values)


def first_by_insert_id(events: Iterable[PullEvent]) -> list[PullEvent]:
    """One event per insert_id, the first of each, in order.  Every store and worker
    keeps the first, as a store keeps the row it already has, so which of two different
    entries with one insertId wins never depends on how the input was split."""
    unique: dict[str, PullEvent] = {}
    for event in events:
        unique.setdefault(event.insert_id, event)
    return list(unique.values())


@dataclass(frozen=True, slots=True)
class Skip:
    """Why one entry gave no event: a code from :data:`SKIP_CODES` and a short detail."""

    code: str
    detail: str = ""
    insert_id: str | None = None

    def __str__(self) -> str:
        """``code: detail``, with the detail's control characters escaped: it quotes
        the entry, and a log line must not be forged by a newline in a message."""
        if not self.detail:
            return self.code
        detail = self.detail if self.detail.isprintable() else repr(self.detail)[1:-1]
        return f"{self.code}: {detail}"


@dataclass
class ParseResult:
    """The events an input gave, and the reasons for what it did not give."""

    events: list[PullEvent] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    @property
    def skip_reason(self) -> str | None:
        """The first skip as text (a message usually holds one entry), or None."""
        return str(self.skipped[0]) if self.skipped else None


def skipped(code: str, detail: str, insert_id: str | None = None) -> ParseResult:
    """A result with no event and one skip."""
    return ParseResult(skipped=[Skip(code, detail, insert_id)])


def error_text(exc: BaseException) -> str:
    """The start of an exception's text, for a skip's detail."""
    return str(exc)[:MAX_ERROR_CHARS]
