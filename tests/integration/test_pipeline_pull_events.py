"""What on_pull_event reports, queues and logs for each kind of message, and how its
"already mirrored" check caches, fails and runs, called in the test process.

The parts are real (tests/pipeline_support.py): a DuckDB store, the local queue's journal,
docker-registry as upstream and destination, and the fault proxy where the destination
must misbehave.  ``outcome.skipped`` is what the function's log line reports for each
message (armirror.runtime), so its texts are asserted whole.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from armirror import pipeline as pipeline_module
from armirror.pipeline import MIRRORED_CACHE_SECONDS, MirrorCheckRefused, Pipeline
from armirror.reference import parse
from armirror.store.duckdb import DuckDBStore
from faultproxy import FaultProxy
from pipeline_support import Harness
from standins import images
from standins.logentries import cloud_event
from standins.registry import Registry

CLOUD_RUN = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "cloudrun-audit-replace-service.json")
    .read_text()
)  # fmt: skip

MakeHarness = Callable[..., Harness]


def deploy(insert_id: str, *images_: str) -> dict[str, Any]:
    """A Cloud Run ReplaceService audit entry whose service runs ``images_``: one
    ``deployed`` event each, ``insert_id#N`` for the N-th."""
    entry = copy.deepcopy(CLOUD_RUN)
    entry["insertId"] = insert_id
    spec = entry["protoPayload"]["request"]["service"]["spec"]["template"]["spec"]
    spec["containers"] = [{"image": image} for image in images_]
    return entry


def messages(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "armirror.pipeline" and r.levelno == level
    ]


@pytest.fixture
def destination_proxy(dest_registry: Registry) -> Iterator[FaultProxy]:
    """The destination registry behind the fault proxy, which counts its HEADs."""
    with FaultProxy(dest_registry.url) as proxy:
        yield proxy


def heads(proxy: FaultProxy, path: str) -> int:
    """HEADs that reached the proxy (counted on arrival, before the answer is sent)."""
    return len(proxy.arrived("HEAD", path))


def host_of(proxy: FaultProxy) -> str:
    return proxy.url.removeprefix("http://")


def push_mirror(h: Harness, registry: Registry, source: str, *, seed: int) -> None:
    """Put an image where ``source`` (``docker.io/REPOSITORY:TAG``) is mirrored."""
    repository, tag = source.split(":")
    path = f"{h.prefix.split('/', 1)[1]}/{repository}"
    images.push(registry.url, images.single_image(path, tag, seed=seed, layer_sizes=(256,)))


# -- what a message leads to -------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (base64.b64encode(b"[1]").decode(), "not_a_log_entry: list"),
        ("%%% not base64", "bad_base64: Only base64 data is allowed"),
    ],
)
def test_a_message_without_pull_events_is_acknowledged_and_its_reason_logged(
    harness: MakeHarness, caplog: pytest.LogCaptureFixture, data: str, reason: str
) -> None:
    h = harness()
    event = cloud_event({"insertId": "x"})
    event["data"]["message"]["data"] = data
    with caplog.at_level(logging.INFO, logger="armirror.pipeline"):
        outcome = h.pipeline.on_pull_event(event)
    assert (outcome.recorded, outcome.enqueued, outcome.skipped) == (0, [], [reason])
    assert messages(caplog) == [f"skipped message: {reason}"]
    assert h.store.count_rows("pull_events") == 0 and h.jobs() == []


@pytest.mark.parametrize(("kind", "reason"), [("Pulling", "pull"), ("Failed", "rate_limited")])
def test_a_queued_copy_is_reported_by_its_job_id_and_logged_with_its_reason(
    harness: MakeHarness, caplog: pytest.LogCaptureFixture, kind: str, reason: str
) -> None:
    h = harness()
    with caplog.at_level(logging.INFO, logger="armirror.pipeline"):
        outcome = h.event("q-1", kind, "team/app:1")
    (job,) = h.jobs()
    destination = f"{h.prefix}/docker.io/team/app:1"
    assert (job["source"], job["destination"], job["reason"]) == (
        "docker.io/team/app:1",
        destination,
        reason,
    )
    assert (outcome.recorded, outcome.enqueued, outcome.skipped) == (1, [job["job_id"]], [])
    assert messages(caplog) == [f"queued docker.io/team/app:1 -> {destination} ({reason})"]

    # Another node pulls it before the copy ran: counted, and not queued twice.
    again = h.event("q-2", kind, "team/app:1")
    assert (again.recorded, again.enqueued) == (1, [])
    assert again.skipped == ["docker.io/team/app:1: already queued"]
    assert len(h.jobs()) == 1


def test_only_demand_for_a_third_party_image_is_considered(harness: MakeHarness) -> None:
    """An Artifact Registry image is counted but never judged (no skip reason to read
    past in the function's log); an image already present on a node is no demand."""
    h = harness()
    deployed = h.message(
        deploy(
            "run-1", "nginxinc/nginx-unprivileged:1.27-alpine", "europe-docker.pkg.dev/p/app/api:4"
        )
    )
    assert deployed.recorded == 2
    assert deployed.skipped == []
    assert [j["source"] for j in h.jobs()] == ["docker.io/nginxinc/nginx-unprivileged:1.27-alpine"]
    assert deployed.enqueued == [h.jobs()[0]["job_id"]]

    present = h.event("k-1", "Present", "team/cached:2")
    assert (present.recorded, present.enqueued, present.skipped) == (1, [], [])
    assert len(h.jobs()) == 1


@pytest.mark.parametrize(
    ("settings", "refused", "why"),
    [
        ({"deny": ("docker.io/team/secret",)}, "team/secret:1", "denied by ARMIRROR_DENY"),
        ({"allow": ("docker.io/team/ok",)}, "team/other:1", "not in ARMIRROR_ALLOW"),
        (
            {},
            "metadata.google.internal/team/x:1",
            "registry host 'metadata.google.internal' is the metadata server or an internal name",
        ),
        (
            {},
            "169.254.169.254:5000/team/x:1",
            "registry host '169.254.169.254:5000' is a link-local (metadata) address",
        ),
    ],
)
def test_a_refused_image_is_skipped_with_its_reason_and_the_next_image_is_still_queued(
    harness: MakeHarness, settings: dict[str, Any], refused: str, why: str
) -> None:
    h = harness(**settings)
    outcome = h.message(deploy("run-2", refused, "team/ok:1"))
    source = str(parse(refused))
    assert outcome.skipped == [f"{source}: {why}"]
    assert [j["source"] for j in h.jobs()] == ["docker.io/team/ok:1"]
    assert outcome.enqueued == [h.jobs()[0]["job_id"]]


def test_an_image_whose_mirror_name_is_too_long_is_skipped_and_the_next_is_queued(
    harness: MakeHarness,
) -> None:
    h = harness()
    repository = "team/" + "a" * 235  # a valid name upstream; too long under the prefix
    outcome = h.message(deploy("run-3", f"{repository}:1", "team/ok:1"))
    assert outcome.skipped == [
        f"docker.io/{repository}:1: no mirror name: destination name longer than 255 characters"
    ]
    assert [j["source"] for j in h.jobs()] == ["docker.io/team/ok:1"]


class CountingStore(DuckDBStore):
    """The real store, counting pull_count queries (on BigQuery each is a billed query
    of about a second, made while the Pub/Sub message waits)."""

    asked: list[str]

    def pull_count(self, reference: str, since: Any = None) -> int:
        self.asked = [*getattr(self, "asked", []), reference]
        return super().pull_count(reference, since)


def test_pulls_in_the_message_itself_that_reach_the_threshold_need_no_count_query(
    harness: MakeHarness,
) -> None:
    """One Cloud Run deploy runs the same image in two containers: two deployments, two
    insertIds, which meet a threshold of 2 without asking the store."""
    h = harness(2, store=CountingStore)
    outcome = h.message(deploy("run-4", "team/sidecar:3", "team/sidecar:3"))
    assert outcome.recorded == 2 and len(outcome.enqueued) == 1
    assert getattr(h.store, "asked", []) == []
    # One more deploy of one container: below the threshold alone, so the store counts.
    other = h.message(deploy("run-5", "team/single:1"))
    assert other.skipped == ["docker.io/team/single:1: 1 pull(s), below the threshold of 2"]
    assert h.store.asked == ["docker.io/team/single:1"]


def test_a_pull_event_looks_up_no_registry_name_in_dns(
    harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hot path judges a registry by its name and literal only; copy_image's check
    and the client's connection guard resolve it.  This machine's DNS is the one seam:
    registry.corp.test resolves to a private address here, and every lookup is seen."""
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(str(host))
        if host == "registry.corp.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("10.1.2.3", 0))]
        return real(host, *args, **kwargs)

    h = harness()
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    outcome = h.event("dns-1", "Pulling", "registry.corp.test:5000/team/app:1")
    assert "registry.corp.test" not in looked_up
    assert outcome.skipped == []
    assert [j["source"] for j in h.jobs()] == ["registry.corp.test:5000/team/app:1"]
    # The same name, judged with DNS (as copy_image and request_copy do), is refused.
    assert h.pipeline.host_refused(parse("registry.corp.test:5000/team/app:1")) == (
        "registry host 'registry.corp.test:5000' resolves to a private address (10.1.2.3)"
    )


# -- the "already mirrored" check ----------------------------------------------------------


def test_a_mirror_check_is_answered_from_the_cache_until_it_expires(
    harness: MakeHarness,
    dest_registry: Registry,
    destination_proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each check is a HEAD at the destination; the answer is trusted for
    MIRRORED_CACHE_SECONDS (the pipeline's own clock, set by the test)."""
    clock = [1000.0]
    monkeypatch.setattr(pipeline_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    h = harness(destination=host_of(destination_proxy))
    push_mirror(h, dest_registry, "docker.io/team/present:3", seed=4301)
    present = parse(f"{h.prefix}/docker.io/team/present:3")
    absent = parse(f"{h.prefix}/docker.io/team/absent:3")

    assert h.pipeline.is_mirrored(present) is True
    assert h.pipeline.is_mirrored(absent) is False
    clock[0] += MIRRORED_CACHE_SECONDS - 0.5
    assert h.pipeline.is_mirrored(present) is True
    assert h.pipeline.is_mirrored(absent) is False
    assert heads(destination_proxy, "/manifests/") == 2  # one each

    clock[0] = 1000.0 + MIRRORED_CACHE_SECONDS  # as old as the cache trusts: asked again
    assert h.pipeline.is_mirrored(present) is True
    assert heads(destination_proxy, "/team/present/manifests/") == 2


def test_the_checks_run_on_one_daemon_thread_with_one_client(
    harness: MakeHarness,
) -> None:
    """Every request thread's check goes to one event loop thread, which owns one
    client; a daemon, so a CLI or function process that checked can still exit."""
    h = harness()
    made_on: list[threading.Thread] = []

    def recording_factory() -> Any:
        made_on.append(threading.current_thread())
        return h.pipeline.client_factory()

    pipeline = Pipeline(h.settings, h.store, h.queue, recording_factory)
    results: list[bool] = []
    threads = [
        threading.Thread(
            target=lambda n=n: results.append(
                pipeline.is_mirrored(parse(f"{h.prefix}/docker.io/team/t{n}:1"))
            )
        )
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [False] * 4
    (thread,) = made_on
    assert thread.name == "armirror-head-checks"
    assert thread.daemon is True
    assert thread is not threading.main_thread() and thread.is_alive()


def test_a_check_the_destination_forbids_is_a_configuration_error_logged_whole(
    harness: MakeHarness, destination_proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """403 is a refusal like 401 (an account without roles/artifactregistry.reader on
    Artifact Registry gets 403): never "not mirrored", never cached."""
    destination_proxy.add("HEAD", "/manifests/", "serve", status=403, times=2)
    h = harness(destination=host_of(destination_proxy))
    destination = f"{h.prefix}/docker.io/team/app:1"
    with caplog.at_level(logging.INFO, logger="armirror.pipeline"):
        with pytest.raises(MirrorCheckRefused) as refused:
            h.pipeline.is_mirrored(parse(destination))
        outcome = h.event("f-1", "Pulling", "team/app:1")
    assert str(refused.value) == (
        f"cannot tell whether {destination} is mirrored: the destination refused the "
        "check (HTTP 403, configuration error)"
    )
    host = host_of(destination_proxy)
    path = f"/v2/{h.prefix.split('/', 1)[1]}/docker.io/team/app/manifests/1"
    # The registry client's own text follows, with what it answered and to what.
    told = (
        "configuration error: the destination refused the 'already mirrored' check of "
        f"{destination} (HTTP 403): grant this function's account "
        f"roles/artifactregistry.reader on the repository: HEAD {destination}: "
    )
    errors = messages(caplog, logging.ERROR)
    assert len(errors) == 2
    for error in errors:
        assert error.startswith(told) and f"{host} answered 403 to HEAD {path}" in error, error
    assert outcome.skipped == [f"docker.io/team/app:1: {refused.value}"]
    assert h.jobs() == []
    assert heads(destination_proxy, "/manifests/") == 2


def test_a_check_that_fails_otherwise_counts_as_not_mirrored_and_is_logged(
    harness: MakeHarness, destination_proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """A destination that keeps failing must not stop copies: a copy of an image that
    is present turns out up-to-date.  The warning is the operator's signal."""
    destination_proxy.add("HEAD", "/manifests/", "serve", status=500, times=100)
    h = harness(destination=host_of(destination_proxy))
    destination = f"{h.prefix}/docker.io/team/app:1"
    with caplog.at_level(logging.INFO, logger="armirror.pipeline"):
        outcome = h.event("f-2", "Pulling", "team/app:1")
    host = host_of(destination_proxy)
    path = f"/v2/{h.prefix.split('/', 1)[1]}/docker.io/team/app/manifests/1"
    assert messages(caplog, logging.WARNING) == [
        f"cannot check {destination}: HEAD {destination}: {host} answered 500 to HEAD {path}"
    ]
    assert [j["source"] for j in h.jobs()] == ["docker.io/team/app:1"]
    assert outcome.skipped == []
    # Not cached: the next pull asks again.
    before = heads(destination_proxy, "/manifests/")
    assert h.pipeline.is_mirrored(parse(destination)) is False
    assert heads(destination_proxy, "/manifests/") > before
