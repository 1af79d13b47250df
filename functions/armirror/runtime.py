"""Assemble a Pipeline from settings: which store, which queue, which registry client.

The one place that turns ``ARMIRROR_STORE`` and ``ARMIRROR_QUEUE`` into adapters, so the
Cloud Functions, ``armirror serve`` and the tests wire things the same way.
"""

from __future__ import annotations

import logging

from armirror.config import Settings, load
from armirror.pipeline import Pipeline, run_job
from armirror.queue import CopyJob
from armirror.queue.local import Attempt, JobJournal, LocalQueue
from armirror.registry import RegistryClient
from armirror.store import open_store

log = logging.getLogger(__name__)


def build_pipeline(settings: Settings, *, local_concurrency: int = 4) -> Pipeline:
    """A pipeline over the configured store and queue (local queue: workers start now)."""
    store = open_store(settings.store)

    def client() -> RegistryClient:
        return RegistryClient(upstreams=settings.upstreams)

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
        pipeline = Pipeline(settings, store, local, client)
        local.start()
        return pipeline

    from armirror.queue.cloudtasks import CloudTasksQueue

    if not settings.copy_url:
        raise ValueError("ARMIRROR_COPY_URL is required with a Cloud Tasks queue")
    queue = CloudTasksQueue(
        settings.queue, settings.copy_url, service_account=settings.tasks_service_account
    )
    return Pipeline(settings, store, queue, client)


def pipeline_from_environment() -> Pipeline:
    return build_pipeline(load())
