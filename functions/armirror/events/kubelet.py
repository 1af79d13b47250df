"""A kubelet event (``k8s_pod`` or ``k8s_cluster`` resource) -> its pull event.

Kubelet messages name the image as the pod spec wrote it; the event keeps that text in
``image`` and the normalised form (``docker.io/library/nginx:latest``) in ``reference``.
Where it happened comes from the resource labels, else from the involved object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from armirror.events.fields import EMPTY, entry_time, normalise, project_from_log_name
from armirror.events.messages import parse_message
from armirror.events.model import ParseResult, PullEvent, Skip, skipped


def parse_kubelet(
    entry: Mapping[str, Any], resource: Mapping[str, Any], fallback_time: Any
) -> ParseResult:
    """One kubelet event entry -> one event, or why none."""
    # The hot path of `armirror pulls`: the lookups of fields.field, .mapping and .text
    # are written out here (a call each costs more than the lookup).
    insert_id = entry.get("insertId")
    if insert_id is None:
        insert_id = entry.get("insertid")
    if not isinstance(insert_id, str) or not 0 < len(insert_id) <= 256:
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
    node = source.get("host") if isinstance(source, dict) else None
    pod = labels.get("pod_name")
    if not (isinstance(pod, str) and pod):
        pod = None
        if involved.get("kind") == "Pod":
            pod = involved.get("name")
            pod = pod if isinstance(pod, str) and pod else None
    project_id = labels.get("project_id")
    if not (isinstance(project_id, str) and project_id):
        project_id = project_from_log_name(entry)
    location = labels.get("location")
    cluster = labels.get("cluster_name")
    namespace = labels.get("namespace_name")
    if not (isinstance(namespace, str) and namespace):
        namespace = involved.get("namespace")
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
        location if isinstance(location, str) and location else None,
        cluster if isinstance(cluster, str) and cluster else None,
        namespace if isinstance(namespace, str) and namespace else None,
        pod,
        node if isinstance(node, str) and node else None,
        None,
        info.image_bytes,
        info.pull_seconds,
        "kubelet",
    )
    return ParseResult(events=[event])
