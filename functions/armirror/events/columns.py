"""The bounds of the pull_events columns, and the checks that keep every value inside.

Anyone who can write a log entry writes what these parsers read.  A value that does not
fit its column is dropped (None) and the event kept: one odd field must not cost the
entry, nor make the store refuse the row, which made on_pull_event answer 503 and Pub/Sub
redeliver the message for a week (issue 12 §5: ``Image size: 99999999999999999999
bytes.``).  The required columns are the parsers' to check: an entry whose insertId,
image or timestamp cannot be stored is a skip.

The schema (infra/bigquery/pull_events.json) gives the types; the bounds are armirror's:

- text is printable (no control characters, no lone surrogates, which are not UTF-8
  and which neither store can take) and no longer than any real value;
- INTEGER is BigQuery's INT64 and DuckDB's BIGINT, and a size is never negative;
- FLOAT is finite (BigQuery's JSON API takes no NaN or Infinity), and a pull duration
  is at most a week.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from armirror.events.model import PullEvent

#: A LogEntry's insertId; Cloud Logging's own are about 30 characters.
MAX_INSERT_ID_CHARS = 256
#: The image as written, which the kubelet message quotes; a reference's name is at most
#: 255 characters and its tag 128, so only a hostile digest comes near this.
MAX_IMAGE_CHARS = 1024
#: Project, location, cluster, namespace, pod, node and service names: the longest of
#: them, a Kubernetes pod or node name, is a DNS subdomain of at most 253 characters.
MAX_NAME_CHARS = 253
#: Container images in one Cloud Run request, each an event: Cloud Run allows 10
#: containers an instance, so the rest of a longer list is not read.
MAX_CLOUD_RUN_IMAGES = 16
INT64_MAX = 2**63 - 1
#: Longer than any pull; past it the figure is noise that would swamp every sum.
MAX_PULL_SECONDS = 7 * 24 * 3600.0

#: The nullable text columns of pull_events.
NAME_COLUMNS = ("project_id", "location", "cluster", "namespace", "pod", "node", "service")


def fit_name(value: Any) -> str | None:
    """A name column's value, or None when it is not one that can be stored."""
    if isinstance(value, str) and 0 < len(value) <= MAX_NAME_CHARS and value.isprintable():
        return value
    return None


def fit_bytes(value: Any) -> int | None:
    """An image size in bytes, or None outside 0 … INT64_MAX."""
    if type(value) is int and 0 <= value <= INT64_MAX:
        return value
    return None


def fit_seconds(value: Any) -> float | None:
    """A pull duration in seconds, or None when it is not finite or absurd."""
    if type(value) is float and 0.0 <= value <= MAX_PULL_SECONDS:  # NaN compares False
        return value
    return None


def fit_insert_id(value: Any) -> str | None:
    """A LogEntry insertId that can identify a row, or None."""
    if isinstance(value, str) and 0 < len(value) <= MAX_INSERT_ID_CHARS and value.isprintable():
        return value
    return None


def fit_event(event: PullEvent) -> PullEvent:
    """``event`` with every nullable value that does not fit its column set to None
    (the same object when all fit).  Raises ``ValueError`` when a required value does
    not fit: the parsers never make such an event, so it is a caller's mistake."""
    problem = _required_problem(event)
    if problem:
        raise ValueError(f"pull event {str(event.insert_id)[:80]!r}: {problem}")
    changes: dict[str, Any] = {
        name: None
        for name in NAME_COLUMNS
        if getattr(event, name) is not None and fit_name(getattr(event, name)) is None
    }
    if event.image_bytes is not None and fit_bytes(event.image_bytes) is None:
        changes["image_bytes"] = None
    if event.pull_seconds is not None and fit_seconds(event.pull_seconds) is None:
        changes["pull_seconds"] = None
    return event._replace(**changes) if changes else event


def _required_problem(event: PullEvent) -> str | None:
    """What keeps a required value out of its column: a type the column cannot take,
    or text that is empty, too long or unprintable.  (Which reasons and classes exist
    is the parsers' business, not the store's.)"""
    insert_id = event.insert_id
    if isinstance(insert_id, str) and event.source == "cloud_run":
        insert_id = insert_id.rpartition("#")[0]  # the N-th image's "#N"
    if fit_insert_id(insert_id) is None:
        return "insert_id does not fit"
    when = event.event_time
    if not (isinstance(when, datetime) and when.utcoffset() is not None):
        return "event_time is not an aware datetime"
    for name in ("reason", "image", "reference", "registry", "repository", "registry_class"):
        value = getattr(event, name)
        if not (
            isinstance(value, str)
            and 0 < len(value) <= MAX_IMAGE_CHARS + 32  # the reference adds docker.io/…
            and value.isprintable()
        ):
            return f"{name} does not fit"
    if type(event.third_party) is not bool:
        return "third_party is not a boolean"
    if fit_name(event.source) is None:
        return "source does not fit"
    return None
