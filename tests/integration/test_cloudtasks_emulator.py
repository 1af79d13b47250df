"""The Cloud Tasks adapter against the real Cloud Tasks emulator (gcloud-tasks-emulator).

The adapter talks to the emulator through the real google-cloud-tasks client over gRPC,
and the emulator really dispatches: first to a small recording HTTP server, then to
copy_image served by functions-framework, which copies an image between two real local
registries.  The emulator ignores OIDC, so tokens are tested on the built requests
(tests/unit/test_cloudtasks_task.py), not here; the stand-in adds Cloud Tasks' refusal of
a task name that is queued or recently ran, and the adapter is held to it here.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from armirror.queue import CopyJob, QueueUnavailable
from armirror.queue.cloudtasks import CloudTasksQueue, QueueMisconfigured
from armirror.reference import destination_for, parse
from google.cloud import tasks_v2
from standins import images
from standins.cloudtasks import CloudTasksEmulator, start_cloud_tasks_emulator
from standins.ports import listening_sockets, wait_for_ports
from standins.processes import stop_process
from standins.registry import Registry
from waiting import wait_for

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
LOCATION = "projects/armirror-test/locations/europe-west1"
WAIT = 30.0  # seconds for a dispatched task to reach its target


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudTasksEmulator]:
    log = tmp_path_factory.mktemp("cloudtasks") / "emulator.log"
    # Bounded redelivery: a target that keeps failing is retried ~every 0.1 s otherwise.
    with start_cloud_tasks_emulator(log_path=log, max_retries=50) as running:
        yield running


@pytest.fixture(scope="session")
def tasks_client(emulator: CloudTasksEmulator) -> Iterator[Any]:
    client = emulator.client()
    yield client
    client.transport.close()


@pytest.fixture
def queue_path(tasks_client: Any) -> str:
    """A fresh queue for each test (the emulator needs queues created first)."""
    name = f"{LOCATION}/queues/copy-{uuid.uuid4().hex[:12]}"
    tasks_client.create_queue(parent=LOCATION, queue=tasks_v2.Queue(name=name))
    return name


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Recorder:
    """An HTTP target on 127.0.0.1 that records every request and answers 200."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                recorder.requests.append(
                    Received("POST", self.path, dict(self.headers), self.rfile.read(length))
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    target = Recorder()
    yield target
    target.stop()


def _listening_addresses(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net shows them) of sockets listening on ``port``."""
    return [address for address, listening, _ in listening_sockets() if listening == port]


def test_emulator_listens_on_loopback_only(emulator: CloudTasksEmulator) -> None:
    addresses = _listening_addresses(emulator.port)
    # 127.0.0.1, as an IPv4 socket or a dual-stack one bound to ::ffff:127.0.0.1; not [::].
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}
    assert addresses, "nothing listens on the emulator's port"
    assert set(addresses) <= loopback, addresses
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=2):
        pass


def test_enqueue_dispatches_a_post_with_the_job_to_the_target(
    emulator: CloudTasksEmulator, tasks_client: Any, queue_path: str, recorder: Recorder
) -> None:
    queue = CloudTasksQueue(
        f"cloudtasks://{queue_path}",
        f"{recorder.url}/copy_image",
        service_account="armirror-tasks@armirror-test.iam.gserviceaccount.com",
        client=tasks_client,
        timeout=10,
    )
    job = CopyJob(
        "docker.io/library/nginx:1.14.2", "127.0.0.1:5000/m/docker.io/library/nginx:1.14.2"
    )
    assert queue.enqueue(job) is True

    (request,) = wait_for(lambda: recorder.requests, what="the task to reach the target")
    assert request.method == "POST"
    assert request.path == "/copy_image"
    assert json.loads(request.body) == {"source": job.source, "destination": job.destination}
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["content-type"] == "application/json"
    # Cloud Tasks sends the queue ID; the emulator sends the full queue name.
    assert headers["x-cloudtasks-queuename"].rsplit("/", 1)[-1] == queue_path.rsplit("/", 1)[-1]
    assert headers["x-cloudtasks-taskname"] == job.job_id
    assert headers["x-cloudtasks-taskretrycount"] == "0"
    queue.close()


def test_the_task_the_api_holds_is_named_for_the_job_with_token_and_deadline(
    tasks_client: Any, queue_path: str
) -> None:
    """What reaches the Cloud Tasks API, read back from it (the queue is paused, so the
    task stays put): the name that deduplicates, the OIDC identity and audience, the
    deadline.  The emulator keeps these fields though it does not act on them."""
    tasks_client.pause_queue(name=queue_path)
    sa = "armirror-tasks@armirror-test.iam.gserviceaccount.com"
    target = "https://copy-image-abc123-ew.a.run.app/copy_image"
    queue = CloudTasksQueue(
        f"cloudtasks://{queue_path}", target, service_account=sa, client=tasks_client
    )
    job = CopyJob("docker.io/library/nginx:1.27", "r.example/p/m/docker.io/library/nginx:1.27")
    assert queue.enqueue(job) is True
    (task,) = tasks_client.list_tasks(parent=queue_path)
    assert task.name == f"{queue_path}/tasks/{job.job_id}"
    request = task.http_request
    assert request.url == target
    assert request.http_method == tasks_v2.HttpMethod.POST
    assert json.loads(request.body) == {"source": job.source, "destination": job.destination}
    assert request.headers["Content-Type"] == "application/json"
    assert (request.oidc_token.service_account_email, request.oidc_token.audience) == (sa, target)
    assert task.dispatch_deadline.total_seconds() == 1800


def test_several_jobs_each_reach_the_target_once(
    tasks_client: Any, queue_path: str, recorder: Recorder
) -> None:
    queue = CloudTasksQueue(f"cloudtasks://{queue_path}", recorder.url + "/", client=tasks_client)
    jobs = [CopyJob(f"docker.io/library/img{n}:1", f"r.example/m/img{n}:1") for n in range(5)]
    assert all(queue.enqueue(job) for job in jobs)
    wait_for(lambda: len(recorder.requests) >= len(jobs), what="five tasks")
    # The emulator takes a task off the queue to dispatch it and puts it back only when
    # the target failed: an empty queue means no task is left to be delivered again.
    wait_for(lambda: not list(tasks_client.list_tasks(parent=queue_path)), what="an empty queue")
    names = sorted(
        {k.lower(): v for k, v in r.headers.items()}["x-cloudtasks-taskname"]
        for r in recorder.requests
    )
    assert names == sorted(job.job_id for job in jobs)


def test_a_job_queued_again_is_refused_as_a_duplicate_and_runs_once(
    tasks_client: Any, queue_path: str, recorder: Recorder
) -> None:
    queue = CloudTasksQueue(f"cloudtasks://{queue_path}", recorder.url, client=tasks_client)
    job = CopyJob("docker.io/library/nginx:1.27", "r.example/m/nginx:1.27")
    assert queue.enqueue(job) is True
    assert queue.enqueue(job) is False  # while it waits or runs
    wait_for(lambda: recorder.requests, what="the task to reach the target")
    wait_for(lambda: not list(tasks_client.list_tasks(parent=queue_path)), what="an empty queue")
    assert queue.enqueue(job) is False  # after it ran: Cloud Tasks keeps the name ~1 hour
    # Another job (a refresh pins the digest it saw) is another task.
    moved = CopyJob(job.source, job.destination, "refresh", "sha256:" + "1" * 64)
    assert queue.enqueue(moved) is True
    wait_for(lambda: len(recorder.requests) == 2, what="the second job's task")
    names = [{k.lower(): v for k, v in r.headers.items()}["x-cloudtasks-taskname"]
             for r in recorder.requests]  # fmt: skip
    assert names == [job.job_id, moved.job_id]


def test_the_stand_in_can_leave_names_free_as_the_bare_emulator_does(tmp_path: Path) -> None:
    with start_cloud_tasks_emulator(
        log_path=tmp_path / "log", dedup_window=0, max_retries=0
    ) as running:
        client = running.client()
        try:
            name = f"{LOCATION}/queues/nodedup"
            client.create_queue(parent=LOCATION, queue=tasks_v2.Queue(name=name))
            queue = CloudTasksQueue(f"cloudtasks://{name}", "http://127.0.0.1:9/c", client=client)
            job = CopyJob("docker.io/library/nginx:1", "r.example/m/nginx:1")
            assert queue.enqueue(job) is True
            assert queue.enqueue(job) is True
        finally:
            client.transport.close()


def test_a_queue_that_does_not_exist_is_misconfigured(tasks_client: Any) -> None:
    queue = CloudTasksQueue(
        f"cloudtasks://{LOCATION}/queues/never-created",
        "http://127.0.0.1:9/copy_image",
        client=tasks_client,
        timeout=5,
    )
    with pytest.raises(QueueMisconfigured, match="never-created"):
        queue.enqueue(CopyJob("docker.io/library/nginx:1", "r.example/m/nginx:1"))


def test_a_stopped_emulator_is_queue_unavailable_without_hanging(
    tmp_path: Path,
) -> None:
    running = start_cloud_tasks_emulator(log_path=tmp_path / "emulator.log")
    client = running.client()
    try:
        name = f"{LOCATION}/queues/stopping"
        client.create_queue(parent=LOCATION, queue=tasks_v2.Queue(name=name))
        queue = CloudTasksQueue(
            f"cloudtasks://{name}", "http://127.0.0.1:9/copy_image", client=client, timeout=2
        )
        running.stop()
        # "Without hanging" is the adapter's own 2 s deadline; the test's timeout backs it.
        with pytest.raises(QueueUnavailable, match="UNAVAILABLE"):
            queue.enqueue(CopyJob("docker.io/library/nginx:1", "r.example/m/nginx:1"))
    finally:
        running.stop()
        client.transport.close()


def test_nothing_listening_is_queue_unavailable_without_hanging() -> None:
    import grpc
    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

    # A port bound but not listening refuses connections, and nobody else can take it.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
        queue = CloudTasksQueue(
            f"cloudtasks://{LOCATION}/queues/q", "http://127.0.0.1:9/c", client=client, timeout=2
        )
        with pytest.raises(QueueUnavailable):
            queue.enqueue(CopyJob("docker.io/library/nginx:1", "r.example/m/nginx:1"))
        client.transport.close()


# -- real dispatch to copy_image -------------------------------------------------------------


@pytest.fixture
def copy_image_function(
    tmp_path: Path, queue_path: str, source_registry: Registry, dest_registry: Registry
) -> Iterator[tuple[str, str]]:
    """functions-framework serving copy_image on 127.0.0.1; yields (URL, destination prefix).

    Configured as in the cloud: the Cloud Tasks queue and copy_image's own URL (copy_image
    enqueues nothing, and the adapter makes its client only on first use).
    """
    # copy_image's own URL is only needed by functions that enqueue; it is not known
    # before functions-framework binds port 0, and copy_image enqueues nothing.
    prefix = f"{dest_registry.host}/ct-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "ARMIRROR_DESTINATION": prefix,
        "ARMIRROR_STORE": f"duckdb:///{tmp_path / 'pulls.duckdb'}",
        "ARMIRROR_QUEUE": f"cloudtasks://{queue_path}",
        "ARMIRROR_COPY_URL": "http://127.0.0.1:9/copy_image",
        "ARMIRROR_UPSTREAMS": f"docker.io={source_registry.url}",
    }
    binary = Path(sys.executable).with_name("functions-framework")
    log_path = tmp_path / "functions-framework.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                str(binary),
                "--target=copy_image",
                f"--source={ROOT / 'functions' / 'main.py'}",
                "--signature-type=http",
                "--host=127.0.0.1",
                "--port=0",
            ],
            cwd=ROOT / "functions",
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    (port,) = wait_for_ports(
        process.pid,
        1,
        alive=lambda: process.poll() is None,
        timeout=WAIT,
        what="functions-framework",
    )
    url = f"http://127.0.0.1:{port}"

    def serving() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"functions-framework exited:\n{log_path.read_text()[-3000:]}")
        try:
            httpx.get(url, timeout=1)
            return True
        except httpx.TransportError:
            return False

    try:
        wait_for(serving, what="functions-framework to serve copy_image")
        yield url, prefix
    finally:
        stop_process(process, timeout=10)


def test_task_dispatched_to_copy_image_copies_the_image(
    tmp_path: Path,
    tasks_client: Any,
    queue_path: str,
    source_registry: Registry,
    dest_registry: Registry,
    copy_image_function: tuple[str, str],
) -> None:
    url, prefix = copy_image_function
    repository = f"library/ct-{uuid.uuid4().hex[:8]}"
    image = images.single_image(repository, "1.0", seed=7101)
    digest = images.push(source_registry.url, image)
    source = parse(f"docker.io/{repository}:1.0")
    destination = destination_for(source, prefix)
    job = CopyJob(str(source), str(destination), reason="pull")

    queue = CloudTasksQueue(f"cloudtasks://{queue_path}", url, client=tasks_client)
    assert queue.enqueue(job) is True

    dest_repo = f"{prefix.split('/', 1)[1]}/docker.io/{repository}"
    accept = ", ".join(
        [
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
        ]
    )

    def copied() -> str | None:
        response = httpx.head(
            f"{dest_registry.url}/v2/{dest_repo}/manifests/1.0",
            headers={"Accept": accept},
            timeout=5,
        )
        return (
            response.headers.get("Docker-Content-Digest") if response.status_code == 200 else None
        )

    try:
        assert wait_for(copied, timeout=60, what="copy_image to copy the image") == digest
    except AssertionError as exc:
        log = (tmp_path / "functions-framework.log").read_text(errors="replace")
        raise AssertionError(f"{exc}\nfunctions-framework log:\n{log[-3000:]}") from None


def test_the_emulator_setting_points_a_deployed_configuration_at_the_emulator(
    emulator: CloudTasksEmulator, queue_path: str, recorder: Recorder
) -> None:
    """ARMIRROR_TASKS_EMULATOR_HOST, read by config and wired by runtime exactly as in the
    cloud: the queue makes its own client, no client is injected."""
    from armirror.config import load
    from armirror.runtime import build_pipeline

    settings = load(
        {
            "ARMIRROR_DESTINATION": "europe-docker.pkg.dev/armirror-test/armirror",
            "ARMIRROR_STORE": "duckdb:///:memory:",
            "ARMIRROR_QUEUE": f"cloudtasks://{queue_path}",
            "ARMIRROR_COPY_URL": f"{recorder.url}/copy_image",
            "ARMIRROR_TASKS_SERVICE_ACCOUNT": "armirror-tasks@armirror-test.iam.gserviceaccount.com",
            "ARMIRROR_TASKS_EMULATOR_HOST": emulator.endpoint,
        }
    )
    assert settings.tasks_emulator_host == emulator.endpoint
    pipeline = build_pipeline(settings)
    try:
        queue = pipeline.queue
        assert isinstance(queue, CloudTasksQueue) and queue.emulator_host == emulator.endpoint
        job = CopyJob("docker.io/library/nginx:1.27", "europe-docker.pkg.dev/x/y/nginx:1.27")
        assert queue.enqueue(job) is True
        (request,) = wait_for(lambda: recorder.requests, what="the task to reach the target")
        assert json.loads(request.body)["source"] == job.source
    finally:
        pipeline.queue.close()
        pipeline.store.close()


def test_a_malformed_emulator_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        CloudTasksQueue(
            f"cloudtasks://{LOCATION}/queues/q", "http://127.0.0.1:9/c", emulator_host="nope"
        )
