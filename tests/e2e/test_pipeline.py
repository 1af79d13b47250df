"""The serverless pipeline end to end with real processes.

`armirror serve` (the four functions in one process, embedded DuckDB store, local queue)
against real registries: a stand-in Docker Hub behind a fault-injecting proxy, and a
stand-in Artifact Registry.  Events arrive as Pub/Sub CloudEvents over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from armirror.store import open_store
from faultproxy import FaultProxy
from registry_checks import head_manifest, unique
from serve_process import Serve
from standins import images
from standins.logentries import cloud_event, kubelet_entry
from standins.registry import Registry
from waiting import wait_for

WHEN = datetime(2026, 10, 1, 8, 0, 1, tzinfo=UTC)


def log_entry(insert_id: str, image: str, reason: str = "Pulling") -> dict[str, Any]:
    return kubelet_entry(insert_id, WHEN, reason, image)


@pytest.fixture
def serve_factory(tmp_path: Path, hub: FaultProxy, dest_registry: Registry) -> Iterator[Any]:
    started: list[Serve] = []
    prefix = f"{dest_registry.host}/{unique('mirror')}"

    def start(*args: str, **env: str) -> Serve:
        settings = {"ARMIRROR_DESTINATION": prefix, "ARMIRROR_UPSTREAMS": f"docker.io={hub.url}"}
        serve = Serve(tmp_path / f"serve{len(started)}", {**settings, **env}, args)
        serve.prefix = prefix  # type: ignore[attr-defined]
        started.append(serve)
        return serve

    yield start
    for serve in started:
        serve.stop()


def mirrored_digest(dest: Registry, prefix: str, repository: str, tag: str) -> str | None:
    """The digest the mirror's tag names; None while absent, or while the copy job is
    rewriting it: docker-registry's filesystem driver rewrites a tag's link file in place,
    and a HEAD that reads it half written is answered 500 (seen under load)."""
    try:
        return head_manifest(dest.url, f"{prefix.split('/', 1)[1]}/docker.io/{repository}", tag)
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 500:
            return None
        raise


def test_a_pull_event_ends_with_the_image_mirrored_and_one_row(
    serve_factory: Any, source_registry: Registry, dest_registry: Registry
) -> None:
    image = images.multi_arch_image(unique("library/ingest"), "1.0", seed=1201)
    images.push(source_registry.url, image)
    serve = serve_factory()
    name = f"{image.repository.removeprefix('library/')}:1.0"
    response = serve.event(log_entry(unique("id"), name))
    assert response.status_code == 204, response.text
    wait_for(
        lambda: (
            mirrored_digest(dest_registry, serve.prefix, image.repository, "1.0") == image.digest
        )
    )
    log = serve.stop()
    assert f"docker.io/{image.repository}:1.0 -> " in log and ": copied" in log  # one per copy
    with open_store(f"duckdb:///{serve.store_path}") as store:  # type: ignore[attr-defined]
        assert store.count_rows("pull_events") == 1
        assert store.mirrored(f"docker.io/{image.repository}:1.0") is not None


def test_duplicate_and_concurrent_deliveries_count_once_and_copy_once(
    serve_factory: Any, source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    image = images.single_image(unique("library/dupe"), "2", seed=1202)
    images.push(source_registry.url, image)
    serve = serve_factory()
    name = f"docker.io/{image.repository}:2"
    entries = [log_entry(f"{unique('dup')}-{n}", name) for n in range(5)]
    deliveries = [entry for entry in entries for _ in range(4)]  # each delivered 4 times
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda e: serve.event(e).status_code, deliveries))
    # Binary mode too, as Eventarc may deliver it.
    ce = cloud_event(entries[0])
    binary = serve.post(
        "on_pull_event",
        json=ce["data"],
        headers={"ce-specversion": "1.0", "ce-type": ce["type"], "ce-source": ce["source"],
                 "ce-id": "binary-1", "Content-Type": "application/json"},
    )  # fmt: skip
    assert set(statuses) == {204} and binary.status_code == 204
    wait_for(
        lambda: mirrored_digest(dest_registry, serve.prefix, image.repository, "2") == image.digest
    )
    # Stopping lets a running job finish; a duplicate would then be in the copies table
    # (it ran) or in the queue's journal (it waits), so no sleep is needed to see one.
    serve.stop()
    assert hub.count("GET", f"/v2/{image.repository}/manifests/") == 1, "copied more than once"
    with open_store(f"duckdb:///{serve.store_path}") as store:  # type: ignore[attr-defined]
        assert store.pending_jobs() == []
        assert store.count_rows("copies") == 1
        assert store.count_rows("pull_events") == 5
        assert store.pull_count(name) == 5


def test_poison_messages_are_acknowledged(serve_factory: Any) -> None:
    serve = serve_factory()
    bad_base64 = cloud_event(b"")
    bad_base64["data"]["message"]["data"] = "%%%not base64%%%"
    poison = [
        bad_base64,
        cloud_event(b"{not json"),
        cloud_event(b"[1, 2, 3]"),
        cloud_event({"insertId": "x", "jsonPayload": {"message": "Started container"}}),
        cloud_event(
            {"insertId": "y", "jsonPayload": {"reason": "Pulling", "message": "x" * 300_000}}
        ),
        cloud_event(
            {"insertId": "z", "jsonPayload": {"reason": "Failed", "message": "Error: ErrImagePull"}}
        ),
    ]
    for event in poison:
        response = serve.post(
            "on_pull_event", json=event, headers={"Content-Type": "application/cloudevents+json"}
        )
        assert response.status_code == 204, response.text
    # Not a CloudEvent at all is the sender's mistake, not a message to acknowledge.
    assert serve.post("on_pull_event", content=b"hello").status_code == 400
    assert "Traceback" not in serve.stop()


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"images": ["nginx", "NGINX!!"]}, 400, "invalid image reference"),
        # Host-guard cases: each parses as a reference, so the guard is what refuses it,
        # and the reason says so (issue 18: a capitalised path once made the parser
        # refuse the metadata case before the guard saw it).
        ({"images": ["127.0.0.1:5000/evil:1"]}, 400, "is a loopback address"),
        ({"images": ["169.254.169.254/computemetadata/v1:x"]}, 400, "link-local (metadata)"),
        ({"images": ["169.254.169.254:80/computemetadata/v1:x"]}, 400, "link-local (metadata)"),
        ({"images": ["100.64.0.1/x:1"]}, 400, "shared (carrier-grade NAT)"),
        ({"images": ["metadata.google.internal/x:1"]}, 400, "metadata server"),
        ({"images": ["METADATA.Google.Internal/x:1"]}, 400, "metadata server"),
        ({"images": ["localhost:5000/x:1"]}, 400, "loopback"),
        ({"images": [42]}, 400, "must be a string"),
        ({"images": []}, 400, None),
        ({"wrong": []}, 400, None),
        ({"images": [f"img{n}:1" for n in range(101)]}, 413, None),
        ({"images": ["a" * 70_000]}, 413, None),
    ],
)
def test_request_copy_refuses_bad_input(
    serve_factory: Any,
    body: dict[str, Any],
    status: int,
    reason: str | None,
    request: pytest.FixtureRequest,
) -> None:
    serve = request.getfixturevalue("shared_serve")
    response = serve.post("request_copy", json=body)
    assert response.status_code == status, response.text
    if reason is not None:
        (error,) = response.json()["errors"]
        assert reason in error["error"], error


@pytest.fixture
def shared_serve(serve_factory: Any) -> Serve:
    return serve_factory()  # type: ignore[no-any-return]


def test_request_copy_rejects_non_json_and_queues_valid_images(
    serve_factory: Any, source_registry: Registry, dest_registry: Registry
) -> None:
    serve = serve_factory()
    assert serve.post("request_copy", content=b"not json").status_code == 400
    image = images.single_image(unique("library/manual"), "3", seed=1203)
    images.push(source_registry.url, image)
    response = serve.post("request_copy", json={"images": [f"{image.repository}:3"]})
    assert response.status_code == 202, response.text
    job = response.json()["jobs"][0]
    assert job["destination"].startswith(serve.prefix) and job["queued"] is True
    wait_for(
        lambda: mirrored_digest(dest_registry, serve.prefix, image.repository, "3") == image.digest
    )
    again = serve.post("request_copy", json={"images": [f"{image.repository}:3"]})
    assert again.status_code == 202 and again.json()["jobs"][0]["queued"] is False


def test_copy_image_maps_failures_to_status_codes(
    serve_factory: Any, source_registry: Registry, hub: FaultProxy
) -> None:
    serve = serve_factory()
    image = images.single_image(unique("library/status"), "4", seed=1204)
    images.push(source_registry.url, image)
    source = f"docker.io/{image.repository}:4"

    ok = serve.post("copy_image", json={"source": source}, headers={"X-CloudTasks-TaskName": "t1"})
    assert ok.status_code == 200 and ok.json()["status"] == "copied"
    assert serve.post("copy_image", json={"source": source}).json()["status"] == "up-to-date"

    missing = serve.post("copy_image", json={"source": f"docker.io/{unique('library/nope')}:1"})
    assert missing.status_code == 200 and missing.json()["status"] == "failed"

    invalid = serve.post("copy_image", json={"source": "NOT A REF"})
    assert invalid.status_code == 200 and invalid.json()["status"] == "failed"

    other = serve.post("copy_image", json={"source": source, "destination": "evil.example/x/y:4"})
    assert other.status_code == 200 and "its own mapping" in other.json()["error"]

    # A rate limit that names no time is still a rate limit, not an outage.
    quiet = images.single_image(unique("library/quiet"), "5", seed=1215)
    images.push(source_registry.url, quiet)
    hub.add("HEAD", f"/v2/{quiet.repository}/manifests/", "429", times=50)
    limited_quietly = serve.post("copy_image", json={"source": f"docker.io/{quiet.repository}:5"})
    assert limited_quietly.status_code == 429 and "Retry-After" not in limited_quietly.headers
    assert limited_quietly.json()["rate_limited"] is True

    broken = images.single_image(unique("library/broken"), "6", seed=1206)
    images.push(source_registry.url, broken)
    hub.add("HEAD", f"/v2/{broken.repository}/manifests/", "503", times=50)
    unavailable = serve.post("copy_image", json={"source": f"docker.io/{broken.repository}:6"})
    assert unavailable.status_code == 503

    # Last, as it holds back the whole registry: a long Retry-After is answered as 429
    # with that time, and the next image from there gets the time left, unasked.
    limited = images.single_image(unique("library/limited"), "5", seed=1205)
    images.push(source_registry.url, limited)
    hub.add("HEAD", f"/v2/{limited.repository}/manifests/", "429", times=50, retry_after="3600")
    rate = serve.post("copy_image", json={"source": f"docker.io/{limited.repository}:5"})
    assert rate.status_code == 429 and rate.headers["Retry-After"] == "3600"
    after = serve.post("copy_image", json={"source": f"docker.io/{broken.repository}:6"})
    assert after.status_code == 429 and 3500 < int(after.headers["Retry-After"]) <= 3600
    log = serve.stop()
    assert "task=" in log and "t1" in log  # X-CloudTasks-* headers are logged


def test_refresh_recopies_a_moved_tag_and_leaves_the_other(
    serve_factory: Any, source_registry: Registry, dest_registry: Registry
) -> None:
    serve = serve_factory()
    moving = images.single_image(unique("library/moving"), "7", seed=1207)
    steady = images.single_image(unique("library/steady"), "7", seed=1208)
    for image in (moving, steady):
        images.push(source_registry.url, image)
        reply = serve.post("copy_image", json={"source": f"docker.io/{image.repository}:7"})
        assert reply.json()["status"] == "copied"
    moved = images.single_image(moving.repository, "7", seed=1217)
    images.push(source_registry.url, moved)

    report = serve.post("refresh").json()
    changed = {row["source"] for row in report["changed"]}
    assert changed == {f"docker.io/{moving.repository}:7"}
    assert report["checked"] == 2 and report["unchanged"] == 1
    wait_for(
        lambda: mirrored_digest(dest_registry, serve.prefix, moving.repository, "7") == moved.digest
    )
    assert mirrored_digest(dest_registry, serve.prefix, steady.repository, "7") == steady.digest
    again = serve.post("refresh").json()
    assert again["changed"] == []


def test_a_retry_after_on_one_copy_job_holds_back_the_next(
    serve_factory: Any, source_registry: Registry, hub: FaultProxy
) -> None:
    """copy_image A meets a 429 with Retry-After: 2 and waits it out; copy_image B, sent
    to the same process meanwhile, asks that registry nothing until the wait is over."""
    serve = serve_factory("--verbose")  # logs the retry, which the test waits for
    first = images.single_image(unique("library/held-a"), "1", seed=1231)
    second = images.single_image(unique("library/held-b"), "1", seed=1232)
    for image in (first, second):
        images.push(source_registry.url, image)
    hub.add("HEAD", rf"/{first.repository}/manifests/1$", "429", times=1, retry_after="2")
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(serve.post, "copy_image", json={"source": f"{first.repository}:1"})
        wait_for(lambda: hub.count("HEAD", rf"/{first.repository}/manifests/1$", "429") == 1)
        wait_for(lambda: "retrying in" in serve.log.read_text())  # serve heard the 429
        b = pool.submit(serve.post, "copy_image", json={"source": f"{second.repository}:1"})
        assert a.result().json()["status"] == "copied"
        assert b.result().json()["status"] == "copied"
    refused = hub.arrived("HEAD", rf"/{first.repository}/manifests/1$")[0]
    second_first = min(t for m in ("HEAD", "GET") for t in hub.arrived(m, second.repository))
    assert second_first - refused >= 2.0, second_first - refused
