"""A Pipeline over real parts, for tests that call its methods in the test process.

The store is a DuckDB file; the queue is the local queue, never started, so every job it
accepted waits in the store's journal where a test reads it (reason and digest
included); the registry client is the one the functions build from their settings, with
quick retries and no credentials of the user's.  The destination is a real
docker-registry (or a fault proxy in front of one), so "already mirrored" is a real HEAD.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from armirror.config import Settings
from armirror.pipeline import IngestOutcome, Pipeline
from armirror.queue.local import Attempt, LocalQueue
from armirror.registry import CopyResult
from armirror.registry.factory import client_from_settings
from armirror.store.duckdb import DuckDBStore
from registry_checks import credentials, fast_retry
from standins.logentries import cloud_event, kubelet_entry

WHEN = datetime(2026, 10, 1, 8, 0, 1, tzinfo=UTC)


class Harness:
    """One pipeline, its store and its queue; ``destination`` is the registry host the
    mirror prefix lives on."""

    def __init__(
        self,
        tmp_path: Path,
        upstream: str,
        destination: str,
        threshold: int = 1,
        store: type[DuckDBStore] = DuckDBStore,
        **settings: Any,
    ) -> None:
        self.prefix = f"{destination}/mirror-{uuid.uuid4().hex[:12]}"
        self.settings = Settings(
            destination=self.prefix,
            upstreams={"docker.io": upstream},
            mirror_threshold=threshold,
            **settings,
        )
        self.store = store(tmp_path / f"armirror-{uuid.uuid4().hex[:8]}.duckdb")
        self.queue = LocalQueue(lambda job: Attempt(done=True), journal=self.store)  # not started
        self.pipeline = Pipeline(
            self.settings,
            self.store,
            self.queue,
            lambda: client_from_settings(
                self.settings, credentials=credentials(), retry=fast_retry()
            ),
        )

    def message(self, entry: dict[str, Any]) -> IngestOutcome:
        """Deliver one log entry as the Pub/Sub CloudEvent Eventarc sends."""
        return self.pipeline.on_pull_event(cloud_event(entry))

    def event(self, insert_id: str, kind: str, image: str) -> IngestOutcome:
        """Deliver one kubelet event (Pulling, Pulled, Present or a rate-limited Failed)."""
        return self.message(kubelet_entry(insert_id, WHEN, kind, image))

    def jobs(self) -> list[dict[str, Any]]:
        """The jobs the queue accepted, as its journal holds them."""
        return self.store.pending_jobs()

    def mirrored(self, source: str, digest: str) -> None:
        """Record a finished copy of ``source`` at ``digest``, as copy_image does, so
        refresh has a tag to check."""
        destination = f"{self.prefix}/{source}"
        self.store.record_copy(CopyResult(source, destination, "copied", digest=digest))

    def close(self) -> None:
        self.queue.close()
        self.store.close()
