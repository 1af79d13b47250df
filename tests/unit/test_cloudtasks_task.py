"""The Cloud Tasks adapter's requests, checked as built.

The emulator ignores OIDC tokens and deadlines, so the task name, the token and the
deadline are checked here, on the Task the adapter sends; how the adapter reads each gRPC
status is checked with a client that fails on demand.  (Refusing a duplicate task name,
which the stand-in adds to the emulator, is tested against it in
tests/integration/test_cloudtasks_emulator.py.)
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from armirror.queue import CopyJob, QueueUnavailable
from armirror.queue.cloudtasks import (
    CloudTasksQueue,
    QueueMisconfigured,
    build_task,
    parse_queue_url,
)
from google.api_core import exceptions as gexc
from google.cloud import tasks_v2

QUEUE = "projects/platform-prod/locations/europe-west1/queues/armirror-copy"
URL = f"cloudtasks://{QUEUE}"
TARGET = "https://europe-west1-platform-prod.cloudfunctions.net/copy_image"
SA = "armirror-tasks@platform-prod.iam.gserviceaccount.com"
JOB = CopyJob(
    "docker.io/library/nginx:1.14.2",
    "europe-docker.pkg.dev/platform-prod/mirror/docker.io/library/nginx:1.14.2",
    reason="pull",
)


def test_task_is_named_for_the_job_and_posts_its_body_to_copy_image() -> None:
    task = CloudTasksQueue(URL, TARGET).build_task(JOB)
    assert task.name == f"{QUEUE}/tasks/{JOB.job_id}"
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,500}", task.name.rsplit("/", 1)[1])
    request = task.http_request
    assert request.http_method == tasks_v2.HttpMethod.POST
    assert request.url == TARGET
    assert dict(request.headers) == {"Content-Type": "application/json"}
    assert request.body == JOB.body()
    assert json.loads(request.body) == {"source": JOB.source, "destination": JOB.destination}


def test_same_job_same_name_other_job_other_name() -> None:
    queue = CloudTasksQueue(URL, TARGET)
    again = CopyJob(JOB.source, JOB.destination, reason="manual")
    assert queue.build_task(again).name == queue.build_task(JOB).name
    moved = CopyJob(JOB.source, JOB.destination, reason="refresh", digest="sha256:" + "a" * 64)
    assert queue.build_task(moved).name != queue.build_task(JOB).name


def test_no_service_account_no_token() -> None:
    task = CloudTasksQueue(URL, TARGET).build_task(JOB)
    assert "oidc_token" not in task.http_request
    assert "oauth_token" not in task.http_request


def test_oidc_token_for_the_service_account_with_the_target_as_audience() -> None:
    task = CloudTasksQueue(URL, TARGET, service_account=SA).build_task(JOB)
    token = task.http_request.oidc_token
    assert token.service_account_email == SA
    assert token.audience == TARGET


def test_audience_can_be_set() -> None:
    audience = "https://copy-image-abc123-ew.a.run.app"
    queue = CloudTasksQueue(URL, TARGET, service_account=SA, audience=audience)
    assert queue.build_task(JOB).http_request.oidc_token.audience == audience


def test_dispatch_deadline_defaults_to_the_30_minute_maximum() -> None:
    task = CloudTasksQueue(URL, TARGET).build_task(JOB)
    assert task.dispatch_deadline.total_seconds() == 1800


@pytest.mark.parametrize("seconds", [15, 600, 1800])
def test_dispatch_deadline_within_bounds(seconds: int) -> None:
    task = CloudTasksQueue(URL, TARGET, dispatch_deadline=seconds).build_task(JOB)
    assert task.dispatch_deadline.total_seconds() == seconds


@pytest.mark.parametrize("seconds", [0, 14, 1801, 3600, 30.5])
def test_dispatch_deadline_out_of_bounds_is_refused(seconds: Any) -> None:
    with pytest.raises(ValueError, match="dispatch deadline"):
        CloudTasksQueue(URL, TARGET, dispatch_deadline=seconds)


def test_build_task_function_stands_alone() -> None:
    task = build_task(JOB, queue_path=QUEUE, url=TARGET, service_account=SA)
    assert task == CloudTasksQueue(URL, TARGET, service_account=SA).build_task(JOB)


def test_queue_url_is_parsed() -> None:
    path = parse_queue_url(URL)
    assert (path.project, path.location, path.queue) == (
        "platform-prod",
        "europe-west1",
        "armirror-copy",
    )
    assert str(path) == QUEUE
    assert path.parent == "projects/platform-prod/locations/europe-west1"
    assert parse_queue_url(URL + "/") == path
    assert parse_queue_url("cloudtasks://projects/example.com:proj-1/locations/us/queues/q").project


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("local", "cloudtasks://"),
        ("https://cloudtasks.googleapis.com/" + QUEUE, "cloudtasks://"),
        ("cloudtasks://" + QUEUE.replace("/queues/", "/queue/"), "projects/P/locations/L"),
        ("cloudtasks://projects/p/locations/l", "projects/P/locations/L"),
        ("cloudtasks://" + QUEUE + "/tasks/x", "projects/P/locations/L"),
        ("cloudtasks://projects//locations/europe-west1/queues/q", "project ''"),
        ("cloudtasks://projects/Platform_Prod/locations/europe-west1/queues/q", "project "),
        ("cloudtasks://projects/platform-prod/locations/Europe West/queues/q", "location "),
        ("cloudtasks://projects/platform-prod/locations/europe-west1/queues/my_queue", "queue "),
        ("cloudtasks://projects/platform-prod/locations/europe-west1/queues/" + "q" * 101, "queue"),
    ],
)
def test_bad_queue_urls_name_the_bad_part(url: str, names: str) -> None:
    with pytest.raises(ValueError, match=re.escape(names)):
        CloudTasksQueue(url, TARGET)


@pytest.mark.parametrize("target", ["", "copy_image", "ftp://host/copy", "https:///copy"])
def test_bad_target_url_is_refused(target: str) -> None:
    with pytest.raises(ValueError, match="copy URL"):
        CloudTasksQueue(URL, target)


def test_service_account_must_be_an_email() -> None:
    with pytest.raises(ValueError, match="service account"):
        CloudTasksQueue(URL, TARGET, service_account="armirror-tasks")


class FakeClient:
    """Answers create_task with the next outcome: a Task, or an exception to raise."""

    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[dict[str, Any]] = []
        self.transport = self

    def create_task(self, **kwargs: Any) -> tasks_v2.Task:
        self.calls.append(kwargs)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        return kwargs["task"]

    def close(self) -> None:
        raise AssertionError("an injected client is closed by its owner")


def test_already_exists_is_a_duplicate() -> None:
    client = FakeClient(gexc.AlreadyExists("Requested entity already exists"))
    assert CloudTasksQueue(URL, TARGET, client=client).enqueue(JOB) is False


@pytest.mark.parametrize(
    "error",
    [
        gexc.ServiceUnavailable("connection refused"),
        gexc.DeadlineExceeded("deadline"),
        gexc.InternalServerError("internal"),
        gexc.ResourceExhausted("quota"),
        gexc.TooManyRequests("slow down"),
        gexc.Aborted("aborted"),
        gexc.RetryError("retries exhausted", gexc.ServiceUnavailable("down")),
    ],
)
def test_transient_faults_are_queue_unavailable(error: Exception) -> None:
    queue = CloudTasksQueue(URL, TARGET, client=FakeClient(error))
    with pytest.raises(QueueUnavailable, match=re.escape(QUEUE)):
        queue.enqueue(JOB)


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (gexc.PermissionDenied("denied"), "roles/cloudtasks.enqueuer"),
        (gexc.Unauthenticated("who"), "roles/cloudtasks.enqueuer"),
        (gexc.NotFound("no queue"), "does not exist"),
        (gexc.InvalidArgument("bad task"), "invalid"),
        (gexc.FailedPrecondition("disabled"), "cannot take tasks"),
    ],
)
def test_permanent_faults_are_queue_misconfigured(error: Exception, hint: str) -> None:
    queue = CloudTasksQueue(URL, TARGET, client=FakeClient(error))
    with pytest.raises(QueueMisconfigured, match=hint) as raised:
        queue.enqueue(JOB)
    assert not isinstance(raised.value, QueueUnavailable)
    assert QUEUE in str(raised.value)


def test_permission_hint_names_the_service_account_to_act_as() -> None:
    client = FakeClient(gexc.PermissionDenied("denied"))
    queue = CloudTasksQueue(URL, TARGET, service_account=SA, client=client)
    with pytest.raises(QueueMisconfigured, match=re.escape(f"serviceAccountUser on {SA}")):
        queue.enqueue(JOB)
