"""The pipeline's policy decisions as tables: which references may be mirrored, which
registry hosts a caller may name, and how a caller's text is cut before it is echoed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from armirror.config import Settings
from armirror.pipeline import Pipeline, _bounded, _json_response
from armirror.queue.local import Attempt, LocalQueue
from armirror.reference import parse
from armirror.store import open_store

LOOPBACK_127_1 = "registry host '127.1:5000' resolves to a loopback address (127.0.0.1)"


@pytest.fixture
def pipeline_with() -> Iterator[Any]:
    made: list[Pipeline] = []

    def make(**settings: Any) -> Pipeline:
        settings.setdefault("destination", "mirror.example/project/repo")
        store = open_store("duckdb:///:memory:")
        made.append(Pipeline(Settings(**settings), store, LocalQueue(lambda j: Attempt(True))))
        return made[-1]

    yield make
    for pipeline in made:
        pipeline.queue.close()
        pipeline.store.close()


@pytest.mark.parametrize(("allow", "deny", "image", "why"), [
    ((), (), "nginx:1", None),
    ((), (), "quay.io/team/app:1", None),
    ((), (), "gcr.io/project/app:1", "not a third-party registry"),
    ((), (), "us-docker.pkg.dev/p/r/app:1", "not a third-party registry"),
    ((), ("docker.io/team/*",), "team/app:1", "denied by ARMIRROR_DENY"),
    ((), ("docker.io/team/*",), "nginx:1", None),  # a deny list that does not match
    (("docker.io/team/*",), (), "team/app:1", None),
    (("docker.io/team/*",), (), "nginx:1", "not in ARMIRROR_ALLOW"),
    (("docker.io/team/*",), ("docker.io/team/secret",), "team/secret:1", "denied by ARMIRROR_DENY"),
    (("quay.io",), (), "quay.io/team/app:1", None),
])  # fmt: skip
def test_allowed(
    pipeline_with: Any, allow: tuple[str, ...], deny: tuple[str, ...], image: str, why: str | None
) -> None:
    pipeline = pipeline_with(allow=allow, deny=deny)
    assert pipeline.allowed(parse(image)) == why


@pytest.mark.parametrize(("settings", "registry", "resolve", "why"), [
    ({}, "127.1:5000", True, LOOPBACK_127_1),  # a name that resolves to loopback
    ({}, "127.1:5000", False, None),  # judged by name alone: the client's guard resolves
    ({}, "10.1:5000", True,
     "registry host '10.1:5000' resolves to a private address (10.0.0.1)"),
    ({}, "127.0.0.1:5000", False, "registry host '127.0.0.1:5000' is a loopback address"),
    ({}, "metadata.google.internal", False,
     "registry host 'metadata.google.internal' is the metadata server or an internal name"),
    ({"allow_private_hosts": True}, "127.1:5000", True, None),
    ({"allow_private_hosts": True}, "127.0.0.1:5000", True, None),
    ({"allow_private_hosts": True}, "169.254.169.254", True,
     "registry host '169.254.169.254' is a link-local (metadata) address"),
    # the operator's own upstream mappings are trusted, however they are spelled
    ({"upstreams": {"127.0.0.1:5000": "http://127.0.0.1:5000"}}, "127.0.0.1:5000", True, None),
    ({"upstreams": {"registry.internal": "http://10.0.0.9"}}, "registry.internal", True, None),
])  # fmt: skip
def test_host_refused(
    pipeline_with: Any, settings: dict[str, Any], registry: str, resolve: bool, why: str | None
) -> None:
    pipeline = pipeline_with(**settings)
    assert pipeline.host_refused(parse(f"{registry}/team/app:1"), resolve=resolve) == why


def test_host_refused_resolves_unless_told_not_to(pipeline_with: Any) -> None:
    assert pipeline_with().host_refused(parse("127.1:5000/team/app:1")) == LOOPBACK_127_1


@pytest.mark.parametrize("destination", [None, ""])
def test_a_pipeline_needs_a_destination(destination: str | None) -> None:
    store = open_store("duckdb:///:memory:")
    try:
        with pytest.raises(ValueError) as raised:
            Pipeline(Settings(destination=destination), store, LocalQueue(lambda j: Attempt(True)))
        assert str(raised.value) == "ARMIRROR_DESTINATION is required to run the pipeline"
    finally:
        store.close()


@pytest.mark.parametrize(("text", "bounded"), [
    ("short", "short"),
    ("a\n  multi-line\ttext ", "a multi-line text"),  # one line, for the log
    ("x" * 300, "x" * 300),  # at the limit: whole
    ("x" * 301, "x" * 299 + "…"),  # over it: cut to the limit, the cut marked
    ("x" * 5000, "x" * 299 + "…"),
])  # fmt: skip
def test_bounded(text: str, bounded: str) -> None:
    assert _bounded(ValueError(text)) == bounded
    assert len(_bounded(ValueError(text))) <= 300


def test_a_json_response_writes_what_json_cannot_as_text() -> None:
    when = datetime(2026, 10, 1, 8, 0, 1, tzinfo=UTC)
    text, status, headers = _json_response({"at": when}, 202, {"Retry-After": "5"})
    assert json.loads(text) == {"at": "2026-10-01 08:00:01+00:00"}
    assert (status, headers) == (202, {"Content-Type": "application/json", "Retry-After": "5"})
