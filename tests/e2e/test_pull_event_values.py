"""No content is retried forever (issue 12 §5), through `armirror serve` and its real
DuckDB store: a message is answered 5xx only for a fault of the store or the queue, so
Pub/Sub never redelivers for a week what no retry can fix."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from armirror.store import open_store
from serve_process import Serve
from standins.logentries import cloud_event, kubelet_entry

WHEN = datetime(2026, 10, 1, 8, 0, 1, tzinfo=UTC)
CLOUD_EVENT = {"Content-Type": "application/cloudevents+json"}


@pytest.fixture
def serve_settings() -> dict[str, str]:
    return {"ARMIRROR_MIRROR_THRESHOLD": "1000"}  # record only: nothing here is to be copied


def stored(server: Serve, insert_id: str) -> list[dict[str, Any]]:
    server.stop()  # the store is one process's file
    with open_store(f"duckdb:///{server.store_path}") as store:
        return store._rows(  # type: ignore[attr-defined, no-any-return]
            "SELECT insert_id, reference, image_bytes, pull_seconds, pod FROM pull_events "
            f"WHERE insert_id = '{insert_id}'"
        )


def test_an_image_size_no_column_can_hold_is_recorded_as_null_and_answered_204(
    serve: Serve,
) -> None:
    entry = kubelet_entry("huge-size", WHEN, "Pulled", "redis:7")
    entry["jsonPayload"]["message"] = (
        'Successfully pulled image "redis:7" in 1.5s. Image size: 99999999999999999999 bytes.'
    )
    entry["resource"]["labels"]["pod_name"] = "p" * 100_000
    entry["jsonPayload"]["involvedObject"]["name"] = "p" * 100_000
    response = serve.event(entry)
    assert response.status_code == 204, response.text
    assert stored(serve, "huge-size") == [
        {
            "insert_id": "huge-size",
            "reference": "docker.io/library/redis:7",
            "image_bytes": None,
            "pull_seconds": 1.5,
            "pod": None,
        }
    ]


def test_an_image_whose_mirror_name_would_be_too_long_is_recorded_and_acknowledged(
    serve: Serve,
) -> None:
    repository = "org/" + "a" * (255 - len("docker.io/org/"))  # the longest valid name
    entry = kubelet_entry("long-name", WHEN, "Pulling", f"{repository}:1")
    response = serve.event(entry)
    assert response.status_code == 204, response.text
    assert [row["reference"] for row in stored(serve, "long-name")] == [f"docker.io/{repository}:1"]


def test_json_too_deep_in_a_message_is_acknowledged(serve: Serve) -> None:
    deep = b'{"insertId": "deep", "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    response = serve.event(deep)
    assert response.status_code == 204, response.text


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_a_cloud_event_body_too_deep_is_refused_not_retried(serve: Serve, mode: str) -> None:
    body = cloud_event(kubelet_entry("deep-body", WHEN, "Pulling", "nginx:1"))
    nested = "[" * 50_000 + "1" + "]" * 50_000
    if mode == "structured":
        text = json.dumps(body)[:-1] + f', "deep": {nested}}}'
        response = serve.post("on_pull_event", content=text, headers=CLOUD_EVENT)
    else:
        data = json.dumps(body["data"])[:-1] + f', "deep": {nested}}}'
        headers = {
            "ce-specversion": "1.0",
            "ce-type": body["type"],
            "ce-source": body["source"],
            "ce-id": "deep-1",
            "Content-Type": "application/json",
        }
        response = serve.post("on_pull_event", content=data, headers=headers)
    assert response.status_code < 500, response.text


def test_base64_of_garbage_bytes_is_acknowledged(serve: Serve) -> None:
    body = cloud_event(b"")
    body["data"]["message"]["data"] = base64.b64encode(b"\xff\xfe\x00" * 100).decode()
    response = serve.post("on_pull_event", json=body, headers=CLOUD_EVENT)
    assert response.status_code == 204, response.text
