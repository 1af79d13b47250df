"""request_copy and copy_image called in process, as the Cloud Functions call them.

Real parts throughout: a DuckDB store in tmp_path, the local queue (not started, so every
job it accepted waits in the store's journal where the test reads it), docker-registry
stand-ins for Docker Hub and the destination, and the fault proxy where Docker Hub must
misbehave.  Each test asserts what a caller, the queue, the store or an operator reading
the log sees: the status, the exact JSON body, the recorded rows, the log line.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from armirror.config import Settings
from armirror.http_input import MAX_REQUEST_BYTES
from armirror.pipeline import MAX_REQUEST_IMAGES, Pipeline, run_job
from armirror.queue import CopyJob
from armirror.queue.local import Attempt, LocalQueue
from armirror.reference import parse
from armirror.registry.proxies import ProxyConfigError
from armirror.store.duckdb import DuckDBStore
from faultproxy import FaultProxy
from registry_checks import head_manifest, unique
from standins import images
from standins.registry import Registry
from waiting import wait_for

EXPECTED_IMAGES = 'expected {"images": ["REF", ...]}'
MAPPING = "a source is only ever copied to its own mapping, tag and digest included"
LOOPBACK_127_1 = "registry host '127.1:5000' resolves to a loopback address (127.0.0.1)"


class Destination(NamedTuple):
    url: str
    host: str


class Handlers:
    """A pipeline over a fresh store and an unstarted local queue, with its own prefix."""

    def __init__(self, tmp_path: Path, upstream: str, dest: Destination, **settings: Any) -> None:
        self.dest = dest
        self.prefix = f"{dest.host}/{unique('handlers')}"
        self.settings = Settings(
            destination=self.prefix, upstreams={"docker.io": upstream}, **settings
        )
        self.store = DuckDBStore(tmp_path / f"{unique('armirror')}.duckdb")
        self.queue = LocalQueue(lambda job: Attempt(done=True), journal=self.store)
        try:
            self.pipeline = Pipeline(self.settings, self.store, self.queue)
        except Exception:
            self.close()
            raise

    def request(self, body: Any) -> tuple[int, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        text, status, headers = self.pipeline.request_copy(raw)
        assert headers == {"Content-Type": "application/json"}
        return status, json.loads(text)

    def copy(
        self, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        text, status, answer_headers = self.pipeline.copy_image(raw, headers or {})
        return status, json.loads(text), answer_headers

    def copies(self) -> list[tuple[str, str, str, str | None]]:
        """(source, destination, status, error) of every recorded copy."""
        rows = self.store._rows("SELECT source, destination, status, error FROM copies")
        return sorted((r["source"], r["destination"], r["status"], r["error"]) for r in rows)

    def mirror_of(self, source: str) -> str:
        """The destination a source maps to, written out (prefix + the source's full name)."""
        return f"{self.prefix}/{source}"

    def dest_digest(self, source: str) -> str | None:
        repository, tag = self.mirror_of(source).split("/", 1)[1].rsplit(":", 1)
        return head_manifest(self.dest.url, repository, tag)

    def close(self) -> None:
        self.queue.close()
        self.store.close()


@pytest.fixture(autouse=True)
def _no_proxy_or_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))


@pytest.fixture
def handlers(
    tmp_path: Path, source_registry: Registry, dest_registry: Registry
) -> Iterator[Callable[..., Handlers]]:
    made: list[Handlers] = []

    def make(upstream: str | None = None, **settings: Any) -> Handlers:
        dest = Destination(dest_registry.url, dest_registry.host)
        made.append(Handlers(tmp_path, upstream or source_registry.url, dest, **settings))
        return made[-1]

    yield make
    for h in made:
        h.close()


def _pushed(registry_url: str, stem: str, seed: int) -> tuple[str, str]:
    """Push a small image to Docker Hub's stand-in: (its docker.io name, its digest)."""
    image = images.single_image(unique(f"team/{stem}"), "1", seed=seed, layer_sizes=(512,))
    images.push(registry_url, image)
    return f"docker.io/{image.repository}:1", image.digest


def _job(source: str, destination: str, queued: bool) -> dict[str, Any]:
    job = CopyJob(source, destination, "manual")
    return {
        "job_id": job.job_id,
        "source": source,
        "destination": destination,
        "reason": "manual",
        "digest": None,
        "queued": queued,
    }


# -- request_copy ----------------------------------------------------------------------------


def test_request_copy_queues_one_manual_job_per_image_once(handlers: Any) -> None:
    h = handlers()
    nginx, app = "docker.io/library/nginx:1.27", "docker.io/team/app:2"
    body = {"images": ["nginx:1.27", "team/app:2", "docker.io/library/nginx:1.27"]}
    status, answer = h.request(body)
    assert status == 202
    assert answer == {
        "jobs": [_job(nginx, h.mirror_of(nginx), True), _job(app, h.mirror_of(app), True)]
    }
    pending = h.store.pending_jobs()
    assert sorted((j["source"], j["destination"], j["reason"]) for j in pending) == [
        (nginx, h.mirror_of(nginx), "manual"),
        (app, h.mirror_of(app), "manual"),
    ]
    # Asked again: the same jobs, refused by the queue as duplicates, nothing new queued.
    status, again = h.request(body)
    assert status == 202
    assert again == {
        "jobs": [_job(nginx, h.mirror_of(nginx), False), _job(app, h.mirror_of(app), False)]
    }
    assert len(h.store.pending_jobs()) == 2


def test_request_copy_refuses_the_whole_batch_naming_each_bad_image(handlers: Any) -> None:
    h = handlers()
    status, answer = h.request(
        {"images": ["nginx:1", 5, None, "NGINX", "gcr.io/p/x:1", "127.1:5000/team/app:1"]}
    )
    assert status == 400
    assert answer == {
        "errors": [
            {"image": 5, "error": "each image must be a string"},
            {"image": None, "error": "each image must be a string"},
            {
                "image": "NGINX",
                "error": "invalid image reference 'NGINX': repository name must be lowercase",
            },
            {"image": "gcr.io/p/x:1", "error": "not a third-party registry"},
            {"image": "127.1:5000/team/app:1", "error": LOOPBACK_127_1},
        ]
    }
    assert h.store.pending_jobs() == []  # not even the good one


def test_request_copy_applies_allow_and_deny(handlers: Any) -> None:
    h = handlers(allow=("docker.io/team/*",), deny=("docker.io/team/secret*",))
    status, answer = h.request({"images": ["team/app:1", "team/secret:1", "nginx:1"]})
    assert status == 400
    assert answer == {
        "errors": [
            {"image": "team/secret:1", "error": "denied by ARMIRROR_DENY"},
            {"image": "nginx:1", "error": "not in ARMIRROR_ALLOW"},
        ]
    }
    status, answer = h.request({"images": ["team/app:1"]})
    assert status == 202
    source = "docker.io/team/app:1"
    assert answer == {"jobs": [_job(source, h.mirror_of(source), True)]}


def test_request_copy_takes_private_hosts_only_where_they_are_allowed(handlers: Any) -> None:
    strict = handlers()
    status, answer = strict.request({"images": ["127.0.0.1:5000/team/app:1"]})
    assert (status, answer) == (400, {"errors": [{
        "image": "127.0.0.1:5000/team/app:1",
        "error": "registry host '127.0.0.1:5000' is a loopback address",
    }]})  # fmt: skip
    local = handlers(allow_private_hosts=True)
    status, answer = local.request({"images": ["127.1:5000/team/app:1"]})
    assert status == 202
    source = "127.1:5000/team/app:1"
    assert answer == {"jobs": [_job(source, f"{local.prefix}/127.1_5000/team/app:1", True)]}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", EXPECTED_IMAGES),  # an empty body reads as null
        (b"null", EXPECTED_IMAGES),
        (b'{"images": []}', EXPECTED_IMAGES),
        (b'{"images": "nginx:1"}', EXPECTED_IMAGES),
        (b'{"image": ["nginx:1"]}', EXPECTED_IMAGES),
        (b'["nginx:1"]', EXPECTED_IMAGES),
        (b"{", "body is not JSON: Expecting property name enclosed in double quotes: "
               "line 1 column 2 (char 1)"),
        (b"\xff", "body is not JSON: 'utf-8' codec can't decode byte 0xff in position 0: "
                  "invalid start byte"),
    ],
)  # fmt: skip
def test_request_copy_says_what_a_body_should_be(handlers: Any, body: bytes, error: str) -> None:
    h = handlers()
    assert h.request(body) == (400, {"error": error})
    assert h.store.pending_jobs() == []


def test_request_copy_size_limits_are_inclusive(handlers: Any) -> None:
    h = handlers()
    start = b'{"images": ["nginx:1"]'
    exact = start + b" " * (MAX_REQUEST_BYTES - len(start) - 1) + b"}"
    assert len(exact) == MAX_REQUEST_BYTES
    status, answer = h.request(exact)
    assert status == 202 and len(answer["jobs"]) == 1
    over = exact[:-1] + b" }"
    assert h.request(over) == (413, {"error": f"request larger than {MAX_REQUEST_BYTES} bytes"})

    most = [f"team/many:{n}" for n in range(MAX_REQUEST_IMAGES)]
    status, answer = h.request({"images": most})
    assert status == 202
    assert [j["source"] for j in answer["jobs"]] == [f"docker.io/{m}" for m in most]
    assert h.request({"images": [*most, "team/many:x"]}) == (
        413,
        {"error": f"at most {MAX_REQUEST_IMAGES} images a request"},
    )
    assert len(h.store.pending_jobs()) == 1 + MAX_REQUEST_IMAGES


# -- copy_image ------------------------------------------------------------------------------


def test_copy_image_copies_records_and_logs_the_task(
    handlers: Any, source_registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    h = handlers()
    source, digest = _pushed(source_registry.url, "copied", 5101)
    task = {"X-CloudTasks-TaskName": "copy-abc", "X-CloudTasks-TaskRetryCount": "0"}
    with caplog.at_level(logging.INFO, logger="armirror.pipeline"):
        status, answer, headers = h.copy({"source": source}, {**task, "Authorization": "x"})
    assert status == 200
    assert headers == {"Content-Type": "application/json"}
    destination = h.mirror_of(source)
    assert (answer["source"], answer["destination"]) == (source, destination)
    assert (answer["status"], answer["digest"], answer["error"]) == ("copied", digest, None)
    assert h.dest_digest(source) == digest
    assert h.copies() == [(source, destination, "copied", None)]
    assert f"copy_image {source} -> {destination}: copied task={task}" in caplog.messages


def test_copy_image_takes_the_destination_the_task_names_when_it_is_the_mapping(
    handlers: Any, source_registry: Registry
) -> None:
    h = handlers()
    source, digest = _pushed(source_registry.url, "named", 5102)
    status, answer, _ = h.copy({"source": source, "destination": h.mirror_of(source)})
    assert (status, answer["status"], answer["digest"]) == (200, "copied", digest)
    assert h.dest_digest(source) == digest


def test_copy_image_refuses_a_destination_other_than_the_mapping(
    handlers: Any, source_registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    h = handlers()
    source, _ = _pushed(source_registry.url, "elsewhere", 5103)
    wanted = h.mirror_of(source).rsplit(":", 1)[0] + ":latest"
    task = {"x-cloudtasks-taskname": "t-1"}
    with caplog.at_level(logging.ERROR, logger="armirror.pipeline"):
        status, answer, headers = h.copy({"source": source, "destination": wanted}, task)
    problem = f"destination {wanted} is not {h.mirror_of(source)}: {MAPPING}"
    assert (status, headers) == (200, {"Content-Type": "application/json"})  # never retried
    assert (answer["source"], answer["destination"]) == (source, wanted)
    assert (answer["status"], answer["error"], answer["retryable"]) == ("failed", problem, False)
    assert h.copies() == [(source, wanted, "failed", problem)]
    assert h.dest_digest(source) is None
    assert head_manifest(h.dest.url, wanted.split("/", 1)[1].rsplit(":", 1)[0], "latest") is None
    assert caplog.messages == [f"copy_image {source}: refused: {problem} task={task}"]


def test_copy_image_refuses_a_source_on_an_internal_host(
    handlers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    h = handlers()
    source = "127.1:5000/team/app:1"
    with caplog.at_level(logging.ERROR, logger="armirror.pipeline"):
        status, answer, _ = h.copy({"source": source})
    destination = f"{h.prefix}/127.1_5000/team/app:1"
    assert status == 200
    assert (answer["source"], answer["destination"]) == (source, destination)
    assert (answer["status"], answer["error"]) == ("failed", LOOPBACK_127_1)
    assert h.copies() == [(source, destination, "failed", LOOPBACK_127_1)]
    assert caplog.messages == [f"copy_image {source}: refused: {LOOPBACK_127_1} task={{}}"]


def test_copy_image_answers_400_to_a_body_that_is_not_json_and_logs_the_task(
    handlers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    h = handlers()
    headers = {
        "X-CloudTasks-TaskName": "n" * 300,  # cut: a header is anyone's to write
        "x-cloudtasks-queuename": "copies",
        "Authorization": "Bearer not-for-the-log",
    }
    with caplog.at_level(logging.ERROR, logger="armirror.pipeline"):
        status, answer, _ = h.copy(b"{", headers)
    error = (
        "body is not JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)"
    )
    assert (status, answer) == (400, {"status": "failed", "error": f"invalid request: {error}"})
    task = {"X-CloudTasks-TaskName": "n" * 200, "x-cloudtasks-queuename": "copies"}
    assert caplog.messages == [f"copy_image: refused task {task}: {error}"]
    assert "not-for-the-log" not in caplog.text
    assert h.copies() == []


@pytest.mark.parametrize(
    ("task", "error"),
    [
        ({"destination": "x"}, "invalid request: 'source'"),
        ({"source": "NGINX"},
         "invalid request: invalid image reference 'NGINX': repository name must be lowercase"),
        ({"source": "nginx:1", "destination": "Bad Name"},
         "invalid request: invalid image reference 'Bad Name': contains whitespace"),
        ({"source": "a" * 400},
         "invalid request: invalid image reference '" + "a" * 274 + "…"),
    ],
)  # fmt: skip
def test_copy_image_answers_200_to_a_task_it_cannot_read(
    handlers: Any, caplog: pytest.LogCaptureFixture, task: dict[str, str], error: str
) -> None:
    """Retrying would not make it readable: failed, not retried, and bounded."""
    h = handlers()
    with caplog.at_level(logging.ERROR, logger="armirror.pipeline"):
        status, answer, _ = h.copy(task, {"X-CloudTasks-TaskName": "t-9"})
    assert (status, answer) == (200, {"status": "failed", "error": error})
    assert caplog.messages == [
        f"copy_image: refused task {{'X-CloudTasks-TaskName': 't-9'}}: {error}"
    ]
    assert h.copies() == []


def test_copy_image_answers_200_and_records_a_permanent_failure(
    handlers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    h = handlers()
    source = f"docker.io/{unique('team/absent')}:1"
    with caplog.at_level(logging.INFO, logger="armirror.pipeline"):
        status, answer, headers = h.copy({"source": source})
    assert (status, headers) == (200, {"Content-Type": "application/json"})
    assert not answer["retryable"] and not answer["rate_limited"]
    assert answer["status"] == "failed"
    error = answer["error"]
    assert error.startswith(f"{source}: not found at ")
    destination = h.mirror_of(source)
    assert h.copies() == [(source, destination, "failed", error)]
    assert f"copy_image {source} -> {destination}: failed ({error}) task={{}}" in caplog.messages


def test_a_registry_s_long_retry_after_holds_back_every_copy_of_the_pipeline(
    handlers: Any, hub: FaultProxy
) -> None:
    """One copy meets a 429 with Retry-After: 3600; it is answered 429 with that wait and
    not recorded (Cloud Tasks retries it).  The next copy from the same registry is held
    back without asking the registry at all: the pipeline's clients share one backoff."""
    h = handlers(upstream=hub.url)
    first, _ = _pushed(hub.upstream, "limited", 5104)
    second, _ = _pushed(hub.upstream, "held", 5105)
    hub.add("HEAD", r"/manifests/", "429", retry_after="3600", times=1)
    status, answer, headers = h.copy({"source": first})
    assert (status, headers["Retry-After"]) == (429, "3600")
    assert (answer["status"], answer["retryable"], answer["rate_limited"]) == ("failed", True, True)
    assert answer["retry_after"] == 3600.0
    second_repository = parse(second).repository
    status, answer, headers = h.copy({"source": second})
    assert status == 429
    assert 3590 <= int(headers["Retry-After"]) <= 3600
    assert answer["rate_limited"] is True
    assert "asked armirror to wait" in answer["error"]
    assert not [p for _, p, _ in hub.log if second_repository in p]  # never asked
    assert h.copies() == []  # both will be retried: nothing recorded yet


def test_a_copy_forgets_the_cached_mirror_check(handlers: Any, source_registry: Registry) -> None:
    h = handlers()
    source, _ = _pushed(source_registry.url, "cached", 5106)
    destination = parse(h.mirror_of(source))
    assert h.pipeline.is_mirrored(destination) is False  # and cached as such
    status, answer, _ = h.copy({"source": source})
    assert (status, answer["status"]) == (200, "copied")
    assert h.pipeline.is_mirrored(destination) is True


def test_the_local_queue_worker_copies_the_job_it_is_given(
    handlers: Any, source_registry: Registry
) -> None:
    h = handlers()
    source, digest = _pushed(source_registry.url, "worker", 5107)
    result = run_job(h.pipeline, CopyJob(source, h.mirror_of(source), "pull"))
    assert (result.source, result.destination) == (source, h.mirror_of(source))
    assert (result.status, result.digest) == ("copied", digest)
    assert h.dest_digest(source) == digest
    assert h.copies() == [(source, h.mirror_of(source), "copied", None)]


def test_proxy_variables_are_read_once_when_the_pipeline_starts(
    handlers: Any, source_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy.example:1080")
    with pytest.raises(ProxyConfigError, match=r"HTTPS_PROXY=socks5://proxy\.example:1080"):
        handlers()
    monkeypatch.delenv("HTTPS_PROXY")
    h = handlers()
    source, digest = _pushed(source_registry.url, "proxied", 5108)
    # Set after the start: the pipeline keeps the routes it read, and copies.
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy.example:1080")
    status, answer, _ = h.copy({"source": source})
    assert (status, answer["status"], answer["digest"]) == (200, "copied", digest)


class UploadGate(FaultProxy):
    """A registry behind a gate that holds every blob upload start until the test opens
    it, counting how many wait at once: a copy's transfers in flight."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream, rewrite_location=True)  # uploads continue through it
        self.opened = threading.Event()
        self.waiting = self.peak = 0
        self._count = threading.Lock()

    def _take(self, method: str, path: str) -> Any:
        if method == "POST" and "/blobs/uploads/" in path:
            with self._count:
                self.waiting += 1
                self.peak = max(self.peak, self.waiting)
            self.opened.wait(60)
            with self._count:
                self.waiting -= 1
        return super()._take(method, path)


def test_a_copy_moves_at_most_four_blobs_at_once(
    tmp_path: Path, source_registry: Registry, dest_registry: Registry
) -> None:
    """One copy_image keeps four transfers in flight, however many layers the image has:
    the bound on a function instance's connections and memory.  The gate holds the
    uploads until four wait; a fifth would have to start beside them."""
    image = images.single_image(unique("team/wide"), "1", seed=5109, layer_sizes=(256,) * 7)
    images.push(source_registry.url, image)
    source = f"docker.io/{image.repository}:1"
    answers: list[tuple[int, dict[str, Any], dict[str, str]]] = []
    with UploadGate(dest_registry.url) as gate:
        dest = Destination(gate.url, gate.url.removeprefix("http://"))
        h = Handlers(tmp_path, source_registry.url, dest)
        copying = threading.Thread(target=lambda: answers.append(h.copy({"source": source})))
        copying.start()
        try:
            wait_for(lambda: gate.waiting >= 4, "four blob uploads waiting at the gate")
        finally:
            gate.opened.set()
            copying.join(120)
            h.close()
        ((status, answer, _),) = answers
        assert answer["error"] is None
        assert (status, answer["status"], answer["digest"]) == (200, "copied", image.digest)
        assert gate.count("POST", r"/blobs/uploads/") == 8  # every blob was uploaded
        assert gate.peak == 4
