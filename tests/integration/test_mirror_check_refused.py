"""on_pull_event's "already mirrored" HEAD against a destination that refuses it.

The destination is a real docker-registry with htpasswd auth and the pipeline has no
credentials for it, so the HEAD gets a real 401: the configuration error a function
account without roles/artifactregistry.reader meets in the cloud.  It must be logged as
a configuration error and must never count as "not mirrored" (which would queue a copy
of every pulled image again and again).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from armirror.config import Settings
from armirror.pipeline import MirrorCheckRefused, Pipeline
from armirror.queue.local import Attempt, LocalQueue
from armirror.reference import parse
from armirror.store.duckdb import DuckDBStore
from standins.logentries import cloud_event, kubelet_entry
from standins.registry import Registry

WHEN = datetime(2026, 10, 1, 8, 0, 1, tzinfo=UTC)


def test_a_refused_mirror_check_is_a_configuration_error_not_a_copy(
    tmp_path: Path,
    source_registry: Registry,
    htpasswd_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))  # no credentials
    prefix = f"{htpasswd_registry.host}/refused-{uuid.uuid4().hex[:8]}"
    settings = Settings(destination=prefix, upstreams={"docker.io": source_registry.url})
    store = DuckDBStore(tmp_path / "armirror.duckdb")
    queue = LocalQueue(lambda job: Attempt(done=True), journal=store)  # not started
    pipeline = Pipeline(settings, store, queue)
    try:
        destination = parse(f"{prefix}/docker.io/team/app:1")
        with pytest.raises(MirrorCheckRefused, match="HTTP 401"):
            pipeline.is_mirrored(destination)

        with caplog.at_level(logging.ERROR, logger="armirror.pipeline"):
            outcome = pipeline.on_pull_event(
                cloud_event(kubelet_entry("r-1", WHEN, "Pulling", "team/app:1"))
            )
        assert outcome.recorded == 1  # the pull still counts
        assert outcome.enqueued == [] and store.pending_jobs() == []
        (skipped,) = outcome.skipped
        assert "refused the check (HTTP 401, configuration error)" in skipped
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any(
            "configuration error" in m and "roles/artifactregistry.reader" in m for m in errors
        ), errors

        # Not cached: every event asks again, so granting the role takes effect at once.
        again = pipeline.on_pull_event(
            cloud_event(kubelet_entry("r-2", WHEN, "Pulling", "team/app:1"))
        )
        assert again.enqueued == [] and "configuration error" in again.skipped[0]
    finally:
        queue.close()
        store.close()
