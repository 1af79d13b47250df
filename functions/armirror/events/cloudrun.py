"""A Cloud Run admin audit entry (CreateService, ReplaceService, UpdateService) -> one
``deployed`` event per container image of the request, ``insertId#N`` for the N-th."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from armirror.events.columns import MAX_CLOUD_RUN_IMAGES, MAX_IMAGE_CHARS, fit_name
from armirror.events.fields import (
    entry_time,
    insert_id,
    mapping,
    normalise,
    project_from_log_name,
)
from armirror.events.model import ParseResult, PullEvent, Skip, skipped

_CLOUD_RUN_DEPLOYS = ("CreateService", "ReplaceService", "UpdateService")


def cloud_run_images(request: Mapping[str, Any]) -> list[Any]:
    """Container images of a v1 (service.spec.template.spec) or v2 (service.template)
    Cloud Run request."""
    service = mapping(request, "service")
    template = mapping(mapping(service, "spec"), "template") or mapping(service, "template")
    spec = mapping(template, "spec") or template
    containers = spec.get("containers")
    if not isinstance(containers, list):
        return []
    return [c.get("image") for c in containers if isinstance(c, dict)]


def service_from_resource_name(name: Any) -> str | None:
    """The service of a v1 (``namespaces/P/services/S``) or v2
    (``projects/P/locations/L/services/S[/revisions/R]``) resource name, or None.  Read
    as (collection, id) pairs: a service or project may itself be called "services"."""
    if not isinstance(name, str):
        return None
    parts = name.split("/")
    for collection, value in zip(parts[::2], parts[1::2], strict=False):
        if collection == "services":
            return fit_name(value)
    return None


def parse_cloud_run(
    entry: Mapping[str, Any], resource: Mapping[str, Any], fallback_time: Any
) -> ParseResult:
    """One Cloud Run audit entry -> its ``deployed`` events, or why none."""
    entry_id = insert_id(entry)
    if isinstance(entry_id, Skip):
        return ParseResult(skipped=[entry_id])
    proto = mapping(entry, "protoPayload")
    method = proto.get("methodName")
    if not isinstance(method, str) or not method.endswith(_CLOUD_RUN_DEPLOYS):
        return skipped("unsupported_resource", f"Cloud Run {str(method)[:64]}", entry_id)
    status = mapping(proto, "status")
    if status.get("code") not in (None, 0):
        return skipped("request_failed", str(status.get("message", ""))[:80], entry_id)
    images = cloud_run_images(mapping(proto, "request"))
    if not images:
        return skipped("no_images", method, entry_id)
    when = entry_time(entry, fallback_time)
    if isinstance(when, Skip):
        return ParseResult(skipped=[Skip(when.code, when.detail, entry_id)])
    labels = mapping(resource, "labels")
    service = fit_name(labels.get("service_name")) or service_from_resource_name(
        proto.get("resourceName")
    )
    project_id = fit_name(labels.get("project_id")) or project_from_log_name(entry)
    location = fit_name(labels.get("location"))
    result = ParseResult()
    if len(images) > MAX_CLOUD_RUN_IMAGES:
        detail = f"{len(images)} images; the first {MAX_CLOUD_RUN_IMAGES} are read"
        result.skipped.append(Skip("too_large", detail, entry_id))
    for index, image in enumerate(images[:MAX_CLOUD_RUN_IMAGES]):
        event_id = f"{entry_id}#{index}"
        if not isinstance(image, str) or not image:
            result.skipped.append(Skip("missing_field", "containers[].image", event_id))
            continue
        if len(image) > MAX_IMAGE_CHARS:
            problem = f"longer than {MAX_IMAGE_CHARS} characters"
            result.skipped.append(Skip("invalid_reference", f"{image[:120]}: {problem}", event_id))
            continue
        normalised = normalise(image)
        if isinstance(normalised, str):
            result.skipped.append(
                Skip("invalid_reference", f"{image[:120]}: {normalised}", event_id)
            )
            continue
        reference, registry, repository, registry_class, third_party = normalised
        result.events.append(
            PullEvent(
                insert_id=event_id,
                event_time=when,
                reason="deployed",
                image=image,
                reference=reference,
                registry=registry,
                repository=repository,
                registry_class=registry_class,
                third_party=third_party,
                project_id=project_id,
                location=location,
                service=service,
                source="cloud_run",
            )
        )
    return result
