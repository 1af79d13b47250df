"""A LogEntry (a dict) -> its events: kubelet events and Cloud Run audit entries each go
to their own parser; anything else is a counted skip."""

from __future__ import annotations

from typing import Any

from armirror.events.cloudrun import parse_cloud_run
from armirror.events.fields import mapping
from armirror.events.kubelet import parse_kubelet
from armirror.events.model import ParseResult, error_text, skipped


def parse_log_entry(entry: Any, *, fallback_time: Any = None) -> ParseResult:
    """One LogEntry (a dict) -> its events, or the reason it has none.  Never raises.

    ``fallback_time`` is used when the entry has no timestamp (e.g. the Pub/Sub
    message's ``logging.googleapis.com/timestamp`` attribute).
    """
    try:
        return _parse_log_entry(entry, fallback_time)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        # The parsers check types as they go; this is the net under them, so that no
        # entry, however odd, makes Pub/Sub redeliver a message for a day.
        return skipped("missing_field", f"{type(exc).__name__}: {error_text(exc)}")


def _parse_log_entry(entry: Any, fallback_time: Any) -> ParseResult:
    if not isinstance(entry, dict):
        return skipped("not_a_log_entry", type(entry).__name__)
    resource = mapping(entry, "resource")
    resource_type = resource.get("type")
    if resource_type in ("k8s_pod", "k8s_cluster"):
        return parse_kubelet(entry, resource, fallback_time)
    if mapping(entry, "protoPayload").get("serviceName") == "run.googleapis.com" or (
        resource_type == "cloud_run_revision"
    ):
        return parse_cloud_run(entry, resource, fallback_time)
    if resource_type is None:
        return skipped("missing_field", "resource.type")
    return skipped("unsupported_resource", str(resource_type)[:64])
