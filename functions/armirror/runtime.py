"""Assemble a Pipeline from settings, and run one per process for the Cloud Functions.

The one place that turns ``ARMIRROR_STORE`` and ``ARMIRROR_QUEUE`` into adapters, so the
Cloud Functions, ``armirror serve`` and the tests wire things the same way.  The
module-level entry points at the end adapt framework requests (Flask requests,
CloudEvents) to a process-wide Pipeline; functions/main.py and ``armirror serve`` call
them.  This module imports :mod:`armirror.pipeline`, never the other way round.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from armirror.config import Settings, load
from armirror.http_input import MAX_REQUEST_BYTES, BodyTooLarge, read_body
from armirror.pipeline import Pipeline, Response, run_job
from armirror.queue import CopyJob
from armirror.queue.local import Attempt, JobJournal, LocalQueue
from armirror.store import open_store

log = logging.getLogger(__name__)


def build_pipeline(settings: Settings, *, local_concurrency: int = 4) -> Pipeline:
    """A pipeline over the configured store and queue (local queue: workers start now)."""
    # A cloud deployment (Cloud Tasks queue) never creates tables: Terraform does, and the
    # functions' accounts hold no right to.
    store = open_store(settings.store, create=settings.queue == "local")

    if settings.queue == "local":

        def work(job: CopyJob) -> Attempt:
            result = run_job(pipeline, job)
            log.info(
                "copy job %s %s -> %s: %s%s",
                job.job_id,
                job.source,
                job.destination,
                result.status,
                f" ({result.error})" if result.error else "",
            )
            if result.status == "failed" and result.retryable:
                return Attempt(done=False, retry_after=result.retry_after)
            return Attempt(done=True)

        journal = store if isinstance(store, JobJournal) else None
        local = LocalQueue(work, journal=journal, concurrency=local_concurrency)
        pipeline = Pipeline(settings, store, local)
        local.start()
        return pipeline

    from armirror.queue.cloudtasks import CloudTasksQueue

    if not settings.copy_url:
        raise ValueError("ARMIRROR_COPY_URL is required with a Cloud Tasks queue")
    queue = CloudTasksQueue(
        settings.queue,
        settings.copy_url,
        service_account=settings.tasks_service_account,
        emulator_host=settings.tasks_emulator_host,
    )
    return Pipeline(settings, store, queue)


def pipeline_from_environment() -> Pipeline:
    return build_pipeline(load())


# -- process-wide pipeline for the Cloud Functions and `armirror serve` ------------------

#: The entry points log as the pipeline, as they did when they lived there.
entry_log = logging.getLogger("armirror.pipeline")
_pipeline: Pipeline | None = None
_pipeline_lock = threading.Lock()


def install(pipeline: Pipeline | None) -> None:
    """Use ``pipeline`` for the module-level entry points (``armirror serve``, tests)."""
    global _pipeline
    _pipeline = pipeline


def current() -> Pipeline:
    """The pipeline configured from the environment, built on first use."""
    global _pipeline
    with _pipeline_lock:
        if _pipeline is None:
            _pipeline = pipeline_from_environment()
        return _pipeline


def on_pull_event(event: Any) -> None:
    """CloudEvent entry point: garbage is acknowledged, transient faults raise."""
    outcome = current().on_pull_event(event)
    entry_log.info(
        "on_pull_event id=%s recorded=%d enqueued=%d skipped=%s",
        _event_id(event),
        outcome.recorded,
        len(outcome.enqueued),
        outcome.skipped,
    )


def push_as_cloud_event(body: bytes) -> dict[str, Any] | None:
    """A Pub/Sub push body as the dict form of its messagePublished CloudEvent, or None
    when the body is not one (the push body is the CloudEvent's data)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("subscription"), str):
        return None
    message = data.get("message")
    if not isinstance(message, dict):
        return None
    return {
        "id": str(message.get("messageId") or "?")[:100],
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "data": data,
    }


def _event_id(event: Any) -> str:
    try:
        return str(event["id"])
    except (KeyError, TypeError):
        return "?"


def copy_image(request: Any) -> Response:
    try:
        body = read_body(request, MAX_REQUEST_BYTES)
    except BodyTooLarge as exc:
        return _too_large(exc)
    return current().copy_image(body, dict(request.headers))


def request_copy(request: Any) -> Response:
    try:
        body = read_body(request, MAX_REQUEST_BYTES)
    except BodyTooLarge as exc:  # declared or chunked, refused before it is all read
        return _too_large(exc)
    return current().request_copy(body)


def _too_large(exc: BodyTooLarge) -> Response:
    return json.dumps({"error": str(exc)}), 413, {"Content-Type": "application/json"}


def refresh(request: Any) -> Response:
    return json.dumps(current().refresh(), default=str), 200, {"Content-Type": "application/json"}
