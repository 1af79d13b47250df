"""Layers that outlast a task (issue 13 §5), against real docker-registry servers.

A 300 MB layer comes from a source slowed down by the latency relay's bandwidth cap, and
``copy_image`` gets a deadline of a few seconds: each attempt stops cleanly before its
deadline, answers 503, and the next goes on from what the destination holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from armirror.config import Settings
from armirror.pipeline import Pipeline
from armirror.queue.local import Attempt, LocalQueue
from armirror.reference import destination_for, parse
from armirror.registry import Copier, RegistryClient
from armirror.registry.resumable import MemoryUploadSessions
from armirror.store.duckdb import DuckDBStore
from faultproxy import FaultProxy
from registry_checks import credentials, fast_retry, unique, verify_image
from standins import images
from standins.registry import Registry, start_registry
from standins.relay import LatencyRelay

LAYER = 300_000_000
RATE = 40e6  # bytes a second from the "slow upstream": about 7.5 s for the layer
DEADLINE = 3.0  # seconds per copy_image call
MAX_ATTEMPTS = 40


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, images.Image]]:
    with start_registry(tmp_path_factory.mktemp("big-source")) as registry:
        image = images.single_image(
            "library/bigml", "1", seed=13501, layer_sizes=(LAYER,), oci=True
        )
        images.push(registry.url, image)
        yield registry, image


@pytest.mark.slow
def test_a_300_mb_layer_copies_over_several_deadlines_moving_only_new_bytes(
    tmp_path: Path, big_source: tuple[Registry, images.Image], dest_registry: Registry
) -> None:
    source, image = big_source
    layer = next(b for b in image.blobs if b.size == LAYER)
    with (
        LatencyRelay(source.host, delay=0.0, rate=RATE) as slow,
        LatencyRelay(dest_registry.host, delay=0.0) as counted,
    ):
        prefix = f"{dest_registry.host}/{unique('mirror')}"
        settings = Settings(
            destination=prefix,
            upstreams={
                "docker.io": (slow.url_for(source.host),),
                dest_registry.host: (counted.url_for(dest_registry.host),),
            },
            copy_deadline=DEADLINE,
        )
        store = DuckDBStore(tmp_path / "store.duckdb")
        pipeline = Pipeline(settings, store, LocalQueue(lambda job: Attempt(done=True)))
        session_key = f"{counted.url_for(dest_registry.host)}/{prefix.split('/', 1)[1]}/docker.io/{image.repository}"
        body = json.dumps({"source": f"docker.io/{image.repository}:1"}).encode()
        answers: list[int] = []
        offsets: list[int] = []
        uploaded: list[int] = []
        try:
            for _ in range(MAX_ATTEMPTS):  # bounded: every attempt must make progress
                before = counted.stats(dest_registry.host).upstream_bytes
                reply, status, _ = pipeline.copy_image(body, {})
                uploaded.append(counted.stats(dest_registry.host).upstream_bytes - before)
                answers.append(status)
                if status == 200:
                    break
                assert status == 503, reply
                assert "deadline" in json.loads(reply)["error"]
                session = store.upload_session(session_key, layer.digest)
                assert session is not None, "no progress recorded"
                offsets.append(session[1])
        finally:
            store.close()
        downloaded = slow.stats(source.host).downstream_bytes

    assert answers[-1] == 200 and json.loads(reply)["status"] == "copied"
    assert len(answers) >= 3, answers  # several attempts, not one long one
    # Each attempt went on from where the last one stopped, and got further.
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets), offsets
    assert 0 < offsets[0] < LAYER
    # Only new bytes moved: what reached the destination is the layer once, plus
    # headers and the small blobs; nothing was sent twice.
    assert LAYER <= sum(uploaded) < LAYER + 2_000_000, uploaded
    # Reading the source stops a little past each attempt's last chunk (what the
    # sockets had buffered), never from the start again.
    assert downloaded < LAYER + len(answers) * 16_000_000, downloaded
    repository = f"{prefix.split('/', 1)[1]}/docker.io/{image.repository}"
    assert verify_image(dest_registry.url, repository, image.digest)  # digest-exact


def test_a_registry_that_refuses_chunks_gets_the_blob_whole_and_the_log_says_so(
    source_registry: Registry, dest_registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    image = images.single_image(unique("library/nochunks"), "1", seed=13502, layer_sizes=(300_000,))
    images.push(source_registry.url, image)
    with FaultProxy(dest_registry.url, rewrite_location=True) as refusing:
        refusing.add("PATCH", r"/blobs/uploads/", "serve", status=405, times=100)
        prefix = f"{dest_registry.host}/{unique('mirror')}"
        source = parse(f"docker.io/{image.repository}:1")
        sessions = MemoryUploadSessions()

        async def main() -> object:
            async with RegistryClient(
                upstreams={"docker.io": source_registry.url, dest_registry.host: refusing.url},
                credentials=credentials(),
                retry=fast_retry(),
                allow_private_hosts=True,
                resumable_min_size=1,  # every blob would go up in chunks
            ) as client:
                copier = Copier(client, sessions=sessions)
                return await copier.copy(source, destination_for(source, prefix))

        with caplog.at_level(logging.WARNING, logger="armirror"):
            result = asyncio.run(asyncio.wait_for(main(), timeout=60))
        patches = refusing.count("PATCH", r"/blobs/uploads/")
    assert result.status == "copied", result.error  # type: ignore[attr-defined]
    # Each blob asked at most once (they start together); a refusal is not retried.
    assert 1 <= patches <= len(image.all_blobs())
    assert any("refused a chunked upload (405)" in r.getMessage() for r in caplog.records)
    repository = f"{prefix.split('/', 1)[1]}/docker.io/{image.repository}"
    verify_image(dest_registry.url, repository, image.digest)


def test_a_resumed_upload_that_the_registry_lost_starts_over(
    source_registry: Registry, dest_registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    """A recorded session the registry no longer knows (purged, or another registry's)
    is forgotten and the blob uploaded afresh."""
    image = images.single_image(unique("library/lost"), "1", seed=13503, layer_sizes=(200_000,))
    images.push(source_registry.url, image)
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    source = parse(f"docker.io/{image.repository}:1")
    destination = destination_for(source, prefix)
    layer = next(b for b in image.blobs if b.size == 200_000)
    sessions = MemoryUploadSessions()
    key = f"{dest_registry.url}/{destination.repository}"
    sessions.save_upload_session(
        key, layer.digest, f"/v2/{destination.repository}/blobs/uploads/nope?_state=x", 4096
    )

    async def main() -> object:
        async with RegistryClient(
            upstreams={"docker.io": source_registry.url},
            credentials=credentials(),
            retry=fast_retry(),
            allow_private_hosts=True,
            resumable_min_size=100_000,
        ) as client:
            return await Copier(client, sessions=sessions).copy(source, destination)

    with caplog.at_level(logging.INFO, logger="armirror"):
        result = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert result.status == "copied", result.error  # type: ignore[attr-defined]
    assert sessions.upload_session(key, layer.digest) is None  # finished and forgotten
    said = f"upload of {layer.digest} to {destination.name} cannot resume (404); starting over"
    assert said in [r.getMessage() for r in caplog.records]
    verify_image(dest_registry.url, destination.repository, image.digest)
