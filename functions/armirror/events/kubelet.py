"""A kubelet event (``k8s_pod`` or ``k8s_cluster`` resource) -> its pull event.

Kubelet messages name the image as the pod spec wrote it; the event keeps that text in
``image`` and the normalised form (``docker.io/library/nginx:latest``) in ``reference``.
Where it happened comes from the resource labels, else from the involved object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from armirror.events.columns import MAX_INSERT_ID_CHARS, MAX_NAME_CHARS, fit_name
from armirror.events.fields import EMPTY, entry_time, normalise, project_from_log_name
from armirror.events.messages import parse_message
from armirror.events.model import ParseResult, PullEvent, Skip, skipped


def parse_kubelet(
    entry: Mapping[str, Any], resource: Mapping[str, Any], fallback_time: Any
) -> ParseResult:
    """One kubelet event entry -> one event, or why none."""
    # The hot path of `armirror pulls`: the lookups of fields.field and .mapping, and
    # the insertId's check, are written out here (a call each costs more than the work).
    insert_id = entry.get("insertId")
    if insert_id is None:
        insert_id = entry.get("insertid")
    if not (  # columns.fit_insert_id, written out
        isinstance(insert_id, str)
        and 0 < len(insert_id) <= MAX_INSERT_ID_CHARS
        and insert_id.isprintable()
    ):
        return ParseResult(skipped=[Skip("missing_field", "insertId")])
    payload = entry.get("jsonPayload")
    if payload is None:
        payload = entry.get("jsonpayload")
    if not isinstance(payload, dict):
        payload = EMPTY
    message = payload.get("message")
    if not isinstance(message, str):
        return skipped("missing_field", "jsonPayload.message", insert_id)
    kubelet_reason = payload.get("reason")
    info = parse_message(message, kubelet_reason if isinstance(kubelet_reason, str) else "")
    if isinstance(info, Skip):
        return ParseResult(skipped=[Skip(info.code, info.detail, insert_id)])
    when = entry_time(entry, fallback_time)
    if isinstance(when, Skip):
        return ParseResult(skipped=[Skip(when.code, when.detail, insert_id)])
    image = info.image
    normalised = normalise(image)
    if isinstance(normalised, str):
        return skipped("invalid_reference", f"{image[:120]}: {normalised}", insert_id)

    labels = resource.get("labels")
    if not isinstance(labels, dict):
        labels = EMPTY
    involved = payload.get("involvedObject")
    if involved is None:
        involved = payload.get("involvedobject")
    if not isinstance(involved, dict):
        involved = EMPTY
    source = payload.get("source")
    names: tuple[Any, ...] = (
        labels.get("project_id"),
        labels.get("location"),
        labels.get("cluster_name"),
        labels.get("namespace_name"),
        labels.get("pod_name"),
        source.get("host") if isinstance(source, dict) else None,
    )
    if not _all_fit(names):  # each name that does not fit its column is None
        names = tuple(map(fit_name, names))
    project_id, location, cluster, namespace, pod, node = names
    # A label that is missing or does not fit is as good as missing: the log name and
    # the involved object stand in where they can.
    if project_id is None:
        project_id = project_from_log_name(entry)
    if namespace is None:
        namespace = fit_name(involved.get("namespace"))
    if pod is None and involved.get("kind") == "Pod":
        pod = fit_name(involved.get("name"))
    # Positional, in field order: PullEvent(insert_id, event_time, reason, image,
    # reference, registry, repository, registry_class, third_party, project_id, location,
    # cluster, namespace, pod, node, service, image_bytes, pull_seconds, source).
    event = PullEvent(
        insert_id,
        when,
        info.reason,
        image,
        *normalised,
        project_id,
        location,
        cluster,
        namespace,
        pod,
        node,
        None,
        info.image_bytes,
        info.pull_seconds,
        "kubelet",
    )
    return ParseResult(events=[event])


def _all_fit(names: tuple[Any, ...]) -> bool:
    """Whether every name fits its column (:func:`fit_name`), checked at once: the
    usual entry has six short printable names, and one scan of them all costs less
    than six calls.  False sends the names through fit_name one by one."""
    if None in names or "" in names:
        return False
    try:
        joined = "".join(names)
    except TypeError:  # not all strings
        return False
    return len(joined) <= MAX_NAME_CHARS and joined.isprintable()
