"""Hostile request bodies, driven by Hypothesis, through the pipeline's entry points.

Whatever JSON (or not) a caller posts to request_copy or copy_image, the answer is a
JSON document with a status from a small set: never an exception (a 500), never a
write outside the mapping of the source.  The registry is a MockTransport here; the
same bodies go through `armirror serve` in tests/e2e/test_hostile.py.
"""

from __future__ import annotations

import json

import httpx
from armirror.config import Settings
from armirror.http_input import BadJson, depth, parse_json
from armirror.pipeline import Pipeline
from armirror.queue import CopyJob
from armirror.registry import RegistryClient, RetryPolicy
from armirror.store import open_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_checks import credentials

PREFIX = "mirror.example/project/repo"
written: list[str] = []


class ListQueue:
    def __init__(self) -> None:
        self.jobs: list[CopyJob] = []

    def enqueue(self, job: CopyJob) -> bool:
        self.jobs.append(job)
        return True

    def close(self) -> None:
        pass


def registry(request: httpx.Request) -> httpx.Response:
    """Nothing exists upstream; any write is recorded (and must never happen)."""
    if request.method in {"PUT", "POST", "PATCH"}:
        written.append(str(request.url))
    return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN", "message": "no"}]})


def pipeline() -> Pipeline:
    settings_ = Settings(
        destination=PREFIX,
        upstreams={"docker.io": "https://hub.example"},
        allow_private_hosts=False,
    )
    return Pipeline(
        settings_,
        open_store("duckdb:///:memory:"),
        ListQueue(),
        lambda: RegistryClient(
            upstreams=settings_.upstreams,
            credentials=credentials(),
            retry=RetryPolicy(attempts=1),
            transport=httpx.MockTransport(registry),
            trusted_registries=["mirror.example"],
        ),
    )


PIPELINE = pipeline()

REFERENCE_PARTS = st.sampled_from(
    ["nginx", "library/nginx", "docker.io/", "quay.io/", "127.0.0.1:5000/", "169.254.169.254/",
     "metadata.google.internal/", "DOCKER.IO/", ":1", ":latest", "@sha256:" + "a" * 64,
     "/", "..", "%2e", "\\u0000", " ", "x" * 300, PREFIX + "/"]
)  # fmt: skip
REFERENCES = st.lists(REFERENCE_PARTS, min_size=1, max_size=5).map("".join)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | REFERENCES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["images", "source", "destination", "x"]), children)
    ),
    max_leaves=20,
)
BODIES = st.one_of(
    JSON.map(lambda v: json.dumps(v).encode()),
    st.builds(lambda refs: json.dumps({"images": refs}).encode(), st.lists(REFERENCES, max_size=5)),
    st.builds(
        lambda s, d: json.dumps({"source": s, "destination": d}).encode(), REFERENCES, REFERENCES
    ),
    st.binary(max_size=200),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES)
def test_request_copy_answers_every_body(body: bytes) -> None:
    text, status, headers = PIPELINE.request_copy(body)
    assert status in {202, 400, 413}
    assert headers["Content-Type"] == "application/json"
    json.loads(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES)
def test_copy_image_answers_every_body_and_writes_nothing(body: bytes) -> None:
    text, status, _ = PIPELINE.copy_image(body, {})
    assert status in {200, 400}  # nothing here is worth a retry
    answer = json.loads(text)
    assert answer["status"] == "failed"
    assert written == []


@given(st.binary(max_size=300))
def test_parse_json_takes_any_bytes(body: bytes) -> None:
    try:
        value = parse_json(body)
    except BadJson:
        return
    assert depth(value, 32) <= 32
