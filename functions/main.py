"""Cloud Functions entry points: each adapts its request to one armirror.runtime call.

The configuration is validated when this module is imported, before functions-framework
serves anything: a bad or missing value stops the process with one line naming the
variable (exit status 2), so a bad deployment fails to start and says why, instead of
starting, looking healthy and answering every request with a 500.  Then armirror's log
goes to Cloud Logging as structured lines (armirror.cloudlog).
"""

from __future__ import annotations

import sys
from typing import Any

import functions_framework


def _check_configuration() -> None:
    """Everything a deployed function needs from its environment, without a network call."""
    from urllib.parse import urlsplit

    from armirror.config import ConfigError, load

    try:
        settings = load()
        settings.require_cloud()
        store = urlsplit(settings.store or "")
        if store.scheme == "bigquery" and (
            not store.netloc or not store.path.strip("/") or "/" in store.path.strip("/")
        ):
            raise ConfigError(
                f"ARMIRROR_STORE: expected bigquery://PROJECT/DATASET, got {settings.store!r}"
            )
        if settings.queue != "local":
            from armirror.queue.cloudtasks import CloudTasksQueue

            try:  # parses the queue path, the copy URL and the OIDC account; no client yet
                CloudTasksQueue(
                    settings.queue,
                    settings.copy_url or "",
                    service_account=settings.tasks_service_account,
                    emulator_host=settings.tasks_emulator_host,
                )
            except ValueError as exc:
                raise ConfigError(f"ARMIRROR_QUEUE / ARMIRROR_COPY_URL: {exc}") from None
    except ConfigError as exc:
        print(f"armirror: configuration error, not starting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _configure_logging() -> None:
    from armirror import cloudlog

    cloudlog.configure()


_check_configuration()
_configure_logging()


@functions_framework.cloud_event
def on_pull_event(event: Any) -> None:
    """Pub/Sub push (the module's subscription): a log entry from the organisation sink.

    functions-framework turns the push body into the messagePublished CloudEvent.
    """
    from armirror import runtime

    runtime.on_pull_event(event)


@functions_framework.errorhandler(400)
def _push_it_could_not_convert(error: Any) -> Any:
    """functions-framework converts a push body only when its message has data, and
    answers 400 to a message with attributes only (valid in Pub/Sub, which leaves the
    empty data out), so Pub/Sub would retry it until it dead-lettered it.  Such a message
    holds no log entry: on_pull_event takes it as the CloudEvent it stands for, and logs
    and acknowledges it like any other message without a pull in it."""
    import os

    import flask
    from armirror import runtime

    if os.environ.get("FUNCTION_TARGET") == "on_pull_event":
        event = runtime.push_as_cloud_event(flask.request.get_data())
        if event is not None:
            runtime.on_pull_event(event)
            return "", 204
    return error


@functions_framework.http
def copy_image(request: Any) -> Any:
    """Cloud Tasks target: copy one image to Artifact Registry."""
    from armirror import runtime

    return runtime.copy_image(request)


@functions_framework.http
def request_copy(request: Any) -> Any:
    """Manual HTTP request to mirror a reference."""
    from armirror import runtime

    return runtime.request_copy(request)


@functions_framework.http
def refresh(request: Any) -> Any:
    """Cloud Scheduler: HEAD every mirrored tag upstream; queue a copy where it moved."""
    from armirror import runtime

    return runtime.refresh(request)
