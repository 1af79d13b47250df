"""Images of every pod in a live cluster, through the official ``kubernetes`` client.

Regular, init and ephemeral containers are read from each pod's spec, and the digest
the node actually ran from ``status.*ContainerStatuses[].imageID``.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .expand import try_reference
from .finding import FileError, Finding

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
PAGE_SIZE = 500
MAX_PAGES = 10_000

_FIELDS = (
    ("init_containers", "init_container_statuses", "initContainers"),
    ("containers", "container_statuses", "containers"),
    ("ephemeral_containers", "ephemeral_container_statuses", "ephemeralContainers"),
)


def load_api(context: str | None = None) -> Any:
    """A CoreV1Api from the kubeconfig (``context`` in it), else the in-cluster config."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    # KUBECONFIG is read now, not when the kubernetes package was imported
    config_file = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        api_client = config.new_client_from_config(config_file=config_file, context=context)
    except (ConfigException, OSError, TypeError):
        if context is not None:
            raise
        config.load_incluster_config()
        api_client = client.ApiClient()
    return client.CoreV1Api(api_client)


def digest_of(image_id: str | None) -> str | None:
    """``sha256:…`` from an imageID such as ``docker.io/library/nginx@sha256:…``."""
    if not image_id:
        return None
    match = _DIGEST.search(image_id)
    return match.group(0) if match else None


def scan_cluster(api: Any, label: str = "cluster") -> tuple[list[Finding], list[FileError]]:
    """One finding per container of every pod in every namespace.

    ``file`` is ``NAMESPACE/POD``; ``where`` names the container list and container.
    """
    from kubernetes.client.exceptions import ApiException

    findings: list[Finding] = []
    token: str | None = None
    try:
        for _ in range(MAX_PAGES):
            kwargs: dict[str, Any] = {"limit": PAGE_SIZE}
            if token:
                kwargs["_continue"] = token
            pods = api.list_pod_for_all_namespaces(**kwargs)
            for pod in pods.items or []:
                findings.extend(_pod_findings(pod))
            token = pods.metadata._continue if pods.metadata else None
            if not token:
                break
    except ApiException as exc:
        return findings, [FileError(label, f"listing pods failed: {exc.status} {exc.reason}")]
    except OSError as exc:  # urllib3 connection errors are OSErrors underneath
        return findings, [FileError(label, f"listing pods failed: {exc}")]
    except Exception as exc:  # urllib3 MaxRetryError and friends
        if type(exc).__module__.startswith("urllib3"):
            return findings, [FileError(label, f"listing pods failed: {exc}")]
        raise
    return findings, []


def _pod_findings(pod: Any) -> list[Finding]:
    namespace = pod.metadata.namespace or "default"
    name = pod.metadata.name or "?"
    out: list[Finding] = []
    for spec_field, status_field, label in _FIELDS:
        containers = getattr(pod.spec, spec_field, None) or []
        statuses = getattr(pod.status, status_field, None) if pod.status else None
        image_ids = {s.name: s.image_id for s in statuses or []}
        for container in containers:
            image = container.image
            if not image:
                continue
            reference, bad = try_reference(image)
            out.append(
                Finding(
                    file=f"{namespace}/{name}",
                    line=0,
                    kind="cluster",
                    image=image,
                    reference=reference,
                    where=f"{label}[{container.name}]",
                    problem=f"not a valid reference: {bad}" if bad else None,
                    digest=digest_of(image_ids.get(container.name)),
                )
            )
    return out
