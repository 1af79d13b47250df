"""Cloud Functions entry points: each adapts its request to one armirror.runtime call."""

from __future__ import annotations

from typing import Any

import functions_framework


@functions_framework.cloud_event
def on_pull_event(event: Any) -> None:
    """Pub/Sub (Eventarc) trigger: a log entry from the organisation sink."""
    from armirror import runtime

    runtime.on_pull_event(event)


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
