"""The four Cloud Functions in cloud mode, end to end, as terraform/modules/armirror deploys them.

Four functions-framework processes serve functions/main.py on 127.0.0.1, each started the
way the platform starts a 2nd gen function (FUNCTION_TARGET, PORT, the source folder as
working directory, FUNCTION_SIGNATURE_TYPE=http since none has an event trigger) with the
environment Terraform gives it (DEPLOYED_ENV, held against the module below).  Only where
the cloud services are differs: the store is the local BigQuery emulator, provisioned as
Terraform provisions it (from infra/bigquery, before any function starts: in the cloud
the functions only check that the tables exist), and the queue is the Cloud Tasks
emulator, which dispatches each task to copy_image.  The registries are real
docker-registry servers: one plays Docker Hub, one Artifact Registry.

on_pull_event gets what the module's push subscription POSTs (the wrapped Pub/Sub body),
and functions-framework must turn it into the CloudEvent on_pull_event takes.  The
emulators start slowly on a small machine, so one set of services serves the module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import waiting
from armirror.store.tables import LAYOUT
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from registry_checks import ROOT, head_manifest, unique
from standins import images
from standins.bigquery import EmulatorUnavailable, start_bigquery
from standins.cloudtasks import CloudTasksEmulator, start_cloud_tasks_emulator
from standins.logentries import kubelet_entry, push_body
from standins.ports import wait_for_ports
from standins.processes import stop_process
from standins.registry import Registry, start_registry

sys.path.insert(0, str(ROOT / "tests" / "infra"))

from tfmodel import FUNCTIONS, block, locals_, resolve_env, resource, unquote

pytestmark = pytest.mark.timeout(600)

PROJECT = "armirror-e2e"
DATASET = "armirror"
QUEUE = f"projects/{PROJECT}/locations/europe-west1/queues/armirror-copy"
TASKS_ACCOUNT = f"armirror-tasks@{PROJECT}.iam.gserviceaccount.com"
SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/armirror-pull-events"
WHEN = datetime(2026, 10, 1, 8, 0, 1, tzinfo=UTC)
WAIT = 60.0  # seconds for anything asynchronous: a task's dispatch and copy, a start

#: The environment each function gets from terraform/modules/armirror: local.common_env
#: for all four, local.registry_env (with DOCKER_CONFIG, the mounted credentials secret)
#: for the two that pull from third-party registries.
#: test_the_functions_get_the_environment_terraform_sets holds this against the module.
COMMON_ENV = frozenset(
    {
        "ARMIRROR_DESTINATION",
        "ARMIRROR_STORE",
        "ARMIRROR_QUEUE",
        "ARMIRROR_COPY_URL",
        "ARMIRROR_TASKS_SERVICE_ACCOUNT",
        "ARMIRROR_ALLOW",
        "ARMIRROR_DENY",
        "ARMIRROR_MIRROR_THRESHOLD",
        "ARMIRROR_UPSTREAMS",
    }
)
DEPLOYED_ENV: dict[str, frozenset[str]] = {
    "on_pull_event": COMMON_ENV,
    "copy_image": COMMON_ENV | {"DOCKER_CONFIG", "ARMIRROR_COPY_DEADLINE"},
    "request_copy": COMMON_ENV,
    "refresh": COMMON_ENV | {"DOCKER_CONFIG"},
}
#: What the test adds: where the emulators listen (the clients' own endpoint settings).
EMULATOR_ENV = frozenset({"BIGQUERY_EMULATOR_HOST", "ARMIRROR_TASKS_EMULATOR_HOST"})


#: Everything asynchronous here is given WAIT seconds.
wait_for = partial(waiting.wait_for, timeout=WAIT)


# -- the services ----------------------------------------------------------------------------


def provision(client: bigquery.Client) -> None:
    """The dataset, tables and views as bigquery.tf makes them from infra/bigquery."""
    folder = ROOT / "infra" / "bigquery"
    client.create_dataset(bigquery.Dataset(f"{PROJECT}.{DATASET}"))
    for schema in sorted(folder.glob("*.json")):
        fields = json.loads(schema.read_text())
        table = bigquery.Table(
            f"{PROJECT}.{DATASET}.{schema.stem}",
            schema=[bigquery.SchemaField.from_api_repr(f) for f in fields],
        )
        layout = LAYOUT.get(schema.stem)  # bigquery.tf's table_layout (a test compares)
        if layout:
            table.time_partitioning = bigquery.TimePartitioning(
                type_="DAY", field=layout["partition_field"]
            )
            table.clustering_fields = layout["clustering"]
        client.create_table(table)
    for sql in sorted(folder.glob("*.sql")):  # templatefile(each.value, {project, dataset})
        view = bigquery.Table(f"{PROJECT}.{DATASET}.{sql.stem}")
        query = sql.read_text().replace("${project}", PROJECT).replace("${dataset}", DATASET)
        view.view_query = query
        client.create_table(view)


@dataclass
class Function:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def entries(self) -> list[dict[str, Any]]:
        """The structured log lines (Cloud Logging's JSON form) the function wrote."""
        found = []
        for line in self.log().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and "severity" in entry and "message" in entry:
                found.append(entry)
        return found

    def stop(self) -> None:
        stop_process(self.process, timeout=15)


def start_function(name: str, env: dict[str, str], workdir: Path) -> Function:
    """functions-framework as the platform runs it: the entry point from FUNCTION_TARGET,
    main.py from the working directory (the uploaded functions/ folder), HTTP signature
    (no event trigger) unless the code's decorator says otherwise, port 0 here."""
    assert set(env) == DEPLOYED_ENV[name] | EMULATOR_ENV, name
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ARMIRROR_", "FUNCTION_", "GOOGLE_", "CLOUDSDK_"))
        and k not in EMULATOR_ENV | {"DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "PORT", "HOST"}
    }
    platform = {
        "FUNCTION_TARGET": name,
        "FUNCTION_SIGNATURE_TYPE": "http",
        "K_SERVICE": f"armirror-{name.replace('_', '-')}",
        "PORT": "0",
        "HOST": "127.0.0.1",
    }
    log_path = workdir / f"{name}.log"
    binary = Path(sys.executable).with_name("functions-framework")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(binary)],
            cwd=ROOT / "functions",
            env={**base, **platform, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    function = Function(name, process, log_path)
    try:
        (port,) = wait_for_ports(
            process.pid, 1, alive=lambda: process.poll() is None, timeout=WAIT, what=name
        )
    except RuntimeError as exc:
        function.stop()
        raise AssertionError(f"{exc}:\n{function.log()[-3000:]}") from None
    function.url = f"http://127.0.0.1:{port}"
    return function


@dataclass
class Deployment:
    functions: dict[str, Function]
    bigquery: bigquery.Client
    tasks: CloudTasksEmulator
    destination: str  # ARMIRROR_DESTINATION
    source: Registry
    dest: Registry

    def post(self, name: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.functions[name].url, timeout=WAIT, **kwargs)

    def push(self, body: dict[str, Any]) -> httpx.Response:
        """One push delivery, as the module's subscription makes it."""
        return self.post(
            "on_pull_event",
            content=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "User-Agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
            },
        )

    def rows(self, sql: str) -> list[dict[str, Any]]:
        query = sql.replace("{dataset}", f"`{PROJECT}.{DATASET}`")
        return [dict(row.items()) for row in self.bigquery.query_and_wait(query)]

    def count(self, table: str, where: str = "TRUE") -> int:
        (row,) = self.rows(f"SELECT COUNT(*) AS n FROM {{dataset}}.{table} WHERE {where}")
        return int(row["n"])

    def mirrored_digest(self, repository: str, tag: str) -> str | None:
        path = self.destination.split("/", 1)[1]
        return head_manifest(self.dest.url, f"{path}/docker.io/{repository}", tag)

    def outcomes(self, message_id: str) -> list[str]:
        """on_pull_event's account of each delivery of a message: its CloudEvent's id is
        the Pub/Sub messageId when functions-framework converted the push body."""
        prefix = f"on_pull_event id={message_id} "
        return [
            entry["message"].removeprefix(prefix)
            for entry in self.functions["on_pull_event"].entries()
            if entry["message"].startswith(prefix)
        ]

    def outcome(self, message_id: str, delivery: int = 1) -> str:
        """What on_pull_event said it did with the message's ``delivery``-th delivery."""
        outcomes = self.outcomes(message_id)
        assert len(outcomes) >= delivery, (
            f"no outcome for delivery {delivery} of {message_id}:\n{self.logs()}"
        )
        return outcomes[delivery - 1]

    def logs(self) -> str:
        return "\n".join(f"== {f.name}\n{f.log()[-4000:]}" for f in self.functions.values())


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, source_registry: Registry, dest_registry: Registry
) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("cloud-mode")
    with ExitStack() as stack:
        try:
            emulator = stack.enter_context(start_bigquery(workdir / "bigquery"))
        except EmulatorUnavailable as exc:
            pytest.fail(f"the BigQuery emulator is needed and could not start: {exc}")
        hub_mirror = stack.enter_context(start_registry(workdir / "hub-mirror"))
        # Task names stay taken about an hour after a task ran, as in Cloud Tasks.
        tasks = stack.enter_context(
            start_cloud_tasks_emulator(
                queues=[QUEUE], max_retries=20, dedup_window=3600, log_path=workdir / "tasks.log"
            )
        )
        client = bigquery.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": emulator.url},
        )
        stack.callback(client.close)
        provision(client)

        docker_config = workdir / "docker"  # the secret's first version: no credentials
        docker_config.mkdir()
        (docker_config / "config.json").write_text(json.dumps({"auths": {}}))
        destination = f"{dest_registry.host}/{PROJECT}/{unique('armirror')}"
        common = {
            "ARMIRROR_DESTINATION": destination,
            "ARMIRROR_STORE": f"bigquery://{PROJECT}/{DATASET}",
            "ARMIRROR_QUEUE": f"cloudtasks://{QUEUE}",
            "ARMIRROR_TASKS_SERVICE_ACCOUNT": TASKS_ACCOUNT,
            "ARMIRROR_ALLOW": "docker.io/library/cloud-*",
            "ARMIRROR_DENY": "docker.io/library/*:latest",
            "ARMIRROR_MIRROR_THRESHOLD": "1",
            # As the module sets it: Docker Hub's pull-through mirror first, then Docker
            # Hub.  This "mirror" holds nothing, so every image falls through.
            "ARMIRROR_UPSTREAMS": f"docker.io={hub_mirror.url},{source_registry.url}",
            "BIGQUERY_EMULATOR_HOST": emulator.url,
            "ARMIRROR_TASKS_EMULATOR_HOST": tasks.endpoint,
        }
        credentials = {"DOCKER_CONFIG": str(docker_config)}

        def start(name: str, env: dict[str, str]) -> Function:
            if "DOCKER_CONFIG" in DEPLOYED_ENV[name]:
                env = {**env, **credentials}
            function = start_function(name, env, workdir)
            stack.callback(function.stop)
            return function

        # copy_image first: the others need its URL.  Terraform knows that URL before the
        # function exists; port 0 does not, and copy_image enqueues nothing, so its own
        # ARMIRROR_COPY_URL is the one value here that is not the real thing.
        functions = {
            "copy_image": start(
                "copy_image",
                {
                    **common,
                    "ARMIRROR_COPY_URL": "http://127.0.0.1:9/",
                    "ARMIRROR_COPY_DEADLINE": "1800",
                },
            )
        }
        common["ARMIRROR_COPY_URL"] = functions["copy_image"].url
        for name in ("on_pull_event", "request_copy", "refresh"):
            functions[name] = start(name, common)
        # functions-framework imports main.py (which checks the configuration) before it
        # binds, so a function that listens is ready to serve.
        yield Deployment(functions, client, tasks, destination, source_registry, dest_registry)


def log_entry(image: str) -> dict[str, Any]:
    return kubelet_entry(unique("insert"), WHEN, "Pulling", image, cluster="blue")


# -- the drift check -------------------------------------------------------------------------


def test_the_functions_get_the_environment_terraform_sets() -> None:
    """DEPLOYED_ENV is what the module sets: a variable added or dropped there shows here."""
    common = locals_()["common_env"]
    assert set(common) == COMMON_ENV
    for name in FUNCTIONS:
        function = resource("google_cloudfunctions2_function", name)
        service = block(function.body["service_config"])
        env = resolve_env(unquote(service["environment_variables"]))
        assert set(env) == DEPLOYED_ENV[name], name
        assert unquote(block(function.body["build_config"])["entry_point"]) == name
        assert "event_trigger" not in function.body, f"{name} is reached over HTTP only"


# -- the pipeline ----------------------------------------------------------------------------


def test_a_pushed_pull_event_is_counted_once_and_mirrored_once(deployment: Deployment) -> None:
    image = images.multi_arch_image(unique("library/cloud-push"), "1.0", seed=1401)
    digest = images.push(deployment.source.url, image)
    entry = log_entry(f"{image.repository.removeprefix('library/')}:1.0")
    source = f"docker.io/{image.repository}:1.0"
    message_id = unique("msg")
    body = push_body(entry, message_id, subscription=SUBSCRIPTION)

    response = deployment.push(body)
    assert response.status_code == 200, response.text
    # The CloudEvent functions-framework made of the push body has the messageId as id.
    outcome = deployment.outcome(message_id)
    assert outcome.startswith("recorded=1 enqueued=1 "), outcome

    insert_id = entry["insertId"]
    (row,) = deployment.rows(
        f"SELECT * FROM {{dataset}}.pull_events WHERE insert_id = '{insert_id}'"
    )
    assert row["reference"] == source and row["reason"] == "pulling"
    assert (row["cluster"], row["namespace"], row["pod"]) == ("blue", "payments", "api-1")
    assert row["event_time"] == WHEN
    try:
        wait_for(
            lambda: deployment.mirrored_digest(image.repository, "1.0") == digest,
            "the image at the destination",
        )
        wait_for(
            lambda: deployment.count("copies", f"source = '{source}'") == 1, "the copy's record"
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{deployment.logs()}") from None
    (copy,) = deployment.rows(f"SELECT * FROM {{dataset}}.copies WHERE source = '{source}'")
    assert (copy["status"], copy["digest"]) == ("copied", digest)

    # Pub/Sub delivers the message again (an answer lost, a retry), and a publisher's
    # retry publishes it again under a new ID: on_pull_event answers only after it has
    # recorded and queued, so what it says it did is all it did.
    again = deployment.push({**body, "deliveryAttempt": 2})
    republished_id = unique("msg")
    republished = deployment.push(push_body(entry, republished_id, subscription=SUBSCRIPTION))
    assert (again.status_code, republished.status_code) == (200, 200)
    for outcome in [deployment.outcome(message_id, 2), deployment.outcome(republished_id)]:
        assert "enqueued=0 " in outcome and source in outcome, outcome
    (pulls,) = deployment.rows(
        f"SELECT COUNT(*) AS n FROM {{dataset}}.pulls WHERE insert_id = '{insert_id}'"
    )
    assert pulls["n"] == 1
    assert deployment.count("copies", f"source = '{source}'") == 1


def test_request_copy_queues_and_the_image_is_mirrored(deployment: Deployment) -> None:
    image = images.single_image(unique("library/cloud-request"), "3.1", seed=1402)
    digest = images.push(deployment.source.url, image)
    source = f"docker.io/{image.repository}:3.1"

    response = deployment.post("request_copy", json={"images": [source]})
    assert response.status_code == 202, response.text
    (job,) = response.json()["jobs"]
    assert (job["source"], job["queued"]) == (source, True)
    wait_for(
        lambda: deployment.mirrored_digest(image.repository, "3.1") == digest,
        "the requested image at the destination",
    )
    wait_for(lambda: deployment.count("copies", f"source = '{source}'") == 1, "its record")

    # Asked again within the hour, Cloud Tasks keeps the task name: nothing is queued.
    again = deployment.post("request_copy", json={"images": [source]})
    assert again.status_code == 202 and again.json()["jobs"][0]["queued"] is False
    # Refused before anything is queued: a private host, and a source outside ARMIRROR_ALLOW.
    refused = deployment.post(
        "request_copy", json={"images": ["10.0.0.1:5000/team/app:1", "docker.io/library/redis:7"]}
    )
    assert refused.status_code == 400, refused.text
    assert len(refused.json()["errors"]) == 2


def test_refresh_requeues_a_moved_tag_and_the_mirror_follows(deployment: Deployment) -> None:
    repository = unique("library/cloud-refresh")
    first = images.push(deployment.source.url, images.single_image(repository, "2", seed=1403))
    source = f"docker.io/{repository}:2"
    assert deployment.post("request_copy", json={"images": [source]}).status_code == 202
    wait_for(lambda: deployment.mirrored_digest(repository, "2") == first, "the first copy")
    wait_for(lambda: deployment.count("copies", f"source = '{source}'") == 1, "its record")

    moved = images.push(deployment.source.url, images.single_image(repository, "2", seed=1404))
    assert moved != first
    # What Cloud Scheduler sends (scheduler.tf): POST, JSON, body {}.
    response = deployment.post(
        "refresh", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert {"source": source, "from": first, "to": moved} in report["changed"], report
    try:
        wait_for(lambda: deployment.mirrored_digest(repository, "2") == moved, "the re-copy")
        wait_for(
            lambda: deployment.count("copies", f"source = '{source}' AND digest = '{moved}'") == 1,
            "the re-copy's record",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{deployment.logs()}") from None

    # Nothing moved since: a second refresh queues nothing.
    second = deployment.post("refresh", content=b"{}", headers={"Content-Type": "application/json"})
    assert second.status_code == 200
    assert all(change["source"] != source for change in second.json()["changed"])


def test_a_malformed_push_is_acknowledged_and_nothing_is_recorded(
    deployment: Deployment,
) -> None:
    before = deployment.count("pull_events")
    bad_base64 = push_body(b"x", unique("msg"))
    bad_base64["message"]["data"] = "%%% not base64 %%%"
    pod_started = kubelet_entry(unique("i"), WHEN, "Pulling", "cloud-x:1")
    pod_started["jsonPayload"].update(reason="Started", message="Started container api")
    bodies = {  # what each is, and the skip on_pull_event names
        "bad_base64": bad_base64,
        "bad_json": push_body(b"{not json", unique("msg")),
        "not_a_log_entry": push_body(b"[1, 2, 3]", unique("msg")),
        "not_an_image_event": push_body(pod_started, unique("msg")),
        "too_large": push_body(log_entry("cloud-" + "x" * 600_000 + ":1"), unique("msg")),
        # Pub/Sub leaves out empty data; functions-framework alone would answer 400.
        "not_a_cloud_event": push_body(b"", unique("msg")),
    }
    for code, body in bodies.items():
        response = deployment.push(body)
        assert 200 <= response.status_code < 300, (code, response.status_code, response.text[:300])
        outcome = deployment.outcome(body["message"]["messageId"])
        assert outcome.startswith(f"recorded=0 enqueued=0 skipped=['{code}"), outcome
    assert deployment.count("pull_events") == before
    # What Pub/Sub never sends is the sender's mistake, not a message to acknowledge.
    for body in (b"hello", b'{"message": {"data": "eA=="}}'):
        refused = deployment.post(
            "on_pull_event", content=body, headers={"Content-Type": "application/json"}
        )
        assert refused.status_code == 400, body
    logged = "\n".join(f["message"] for f in deployment.functions["on_pull_event"].entries())
    assert "Traceback" not in logged


@pytest.mark.parametrize(
    ("name", "body", "status"),
    [
        ("copy_image", b"[" * 5000 + b"]" * 5000, 400),  # once a 500 from the parser
        ("request_copy", b"[" * 5000 + b"]" * 5000, 400),
        ("copy_image", b"not json", 400),
        ("copy_image", b'{"source": "' + b"a" * 70_000 + b'"}', 413),
    ],
)
def test_the_deployed_handlers_refuse_deep_and_large_bodies(
    deployment: Deployment, name: str, body: bytes, status: int
) -> None:
    """Issue 12 §7, through functions-framework as deployed (serve: test_hostile.py)."""
    response = deployment.post(name, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text


def test_the_deployed_copy_image_refuses_a_chunked_oversize_body_and_a_forged_destination(
    deployment: Deployment,
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"source": "'
        for _ in range(80):
            yield b"a" * 1024
        yield b'"}'

    assert deployment.post("copy_image", content=chunks()).status_code == 413
    source = f"docker.io/{unique('library/forged')}:1"
    forged = f"{deployment.destination}/{source}".replace(":1", ":9.9")
    reply = deployment.post("copy_image", json={"source": source, "destination": forged})
    assert reply.status_code == 200 and "its own mapping" in reply.json()["error"]
