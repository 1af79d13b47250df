"""Kubelet log entries, Pub/Sub push bodies and CloudEvents in the shapes the cloud
delivers them.

The demo, the end-to-end tests and the load benchmark replay these through the real
``on_pull_event`` endpoint; tests/fixtures/ holds samples captured in the same shapes.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

RATE_LIMIT_ERROR = (
    'Failed to pull image "{image}": failed to pull and unpack image "docker.io/{image}": '
    "failed to copy: httpReadSeeker: failed open: unexpected status code "
    "https://registry-1.docker.io/v2/library/redis/manifests/7.4: 429 Too Many Requests - "
    "Server message: toomanyrequests: You have reached your pull rate limit."
)
MESSAGES = {
    "Pulling": 'Pulling image "{image}"',
    "Pulled": 'Successfully pulled image "{image}" in 2.1s (2.1s including waiting). '
    "Image size: 48213504 bytes.",
    "Present": 'Container image "{image}" already present on machine',
    "Failed": RATE_LIMIT_ERROR,
}


def kubelet_entry(
    insert_id: str,
    when: datetime,
    kind: str,
    image: str,
    *,
    cluster: str = "blue",
    pod: str = "api-1",
    namespace: str = "payments",
) -> dict[str, Any]:
    """A LogEntry for one kubelet event; ``kind`` is Pulling, Pulled, Present or Failed
    (a Docker Hub rate-limit failure)."""
    failed = kind == "Failed"
    return {
        "insertId": insert_id,
        "logName": "projects/example-prod/logs/events",
        "resource": {
            "type": "k8s_pod",
            "labels": {
                "project_id": "example-prod",
                "location": "europe-west1",
                "cluster_name": cluster,
                "namespace_name": namespace,
                "pod_name": pod,
            },
        },
        "timestamp": when.isoformat().replace("+00:00", "Z"),
        "severity": "WARNING" if failed else "INFO",
        "jsonPayload": {
            "kind": "Event",
            "reason": {"Present": "Pulled"}.get(kind, kind),
            "type": "Warning" if failed else "Normal",
            "message": MESSAGES[kind].format(image=image),
            "source": {"component": "kubelet", "host": f"gke-{cluster}-pool-1"},
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": namespace},
        },
    }


def cloud_event(entry: dict[str, Any] | bytes, event_id: str = "1") -> dict[str, Any]:
    """The structured-mode CloudEvent Eventarc delivers for one Pub/Sub message."""
    raw = entry if isinstance(entry, bytes) else json.dumps(entry).encode()
    timestamp = entry.get("timestamp", "") if isinstance(entry, dict) else ""
    return {
        "specversion": "1.0",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/example-prod/topics/armirror-pull-events",
        "id": event_id,
        "datacontenttype": "application/json",
        "data": {
            "message": {
                "data": base64.b64encode(raw).decode(),
                "messageId": event_id,
                "attributes": {"logging.googleapis.com/timestamp": timestamp},
            },
            "subscription": "projects/example-prod/subscriptions/eventarc-armirror",
        },
    }


def push_body(
    entry: dict[str, Any] | bytes,
    message_id: str,
    *,
    publish_time: str = "2026-10-01T08:00:01.5Z",
    subscription: str = "projects/example-prod/subscriptions/armirror-pull-events",
    delivery_attempt: int = 1,
) -> dict[str, Any]:
    """The JSON body a Pub/Sub push subscription POSTs for one message (wrapped delivery).

    As Pub/Sub sends it: the ID and publish time in both spellings, the subscription's
    full name, and ``deliveryAttempt`` (present because the module's subscription has a
    dead-letter policy).  A message with empty data has no ``data`` field at all
    (``entry=b""``), as the JSON form of a protobuf leaves out empty bytes.
    """
    raw = entry if isinstance(entry, bytes) else json.dumps(entry).encode()
    timestamp = entry.get("timestamp", "") if isinstance(entry, dict) else ""
    message: dict[str, Any] = {
        "attributes": {"logging.googleapis.com/timestamp": timestamp},
        "messageId": message_id,
        "message_id": message_id,
        "publishTime": publish_time,
        "publish_time": publish_time,
    }
    if raw:
        message["data"] = base64.b64encode(raw).decode()
    return {"message": message, "subscription": subscription, "deliveryAttempt": delivery_attempt}
