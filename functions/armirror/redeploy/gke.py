"""GKE: find the owners of what runs, change their pod templates, follow the rollout.

Everything goes through the official ``kubernetes`` client.  Owners are Deployments,
StatefulSets, DaemonSets and CronJobs; running pods are traced to them (a pod of a
ReplicaSet to its Deployment, a pod of a Job to its CronJob) so that what no owner
controls (a bare pod, a Job of its own, a ReplicaSet without a Deployment, a pod of some
other controller) is reported instead of silently missed.

A change is a strategic merge patch naming each container and its new image, with the
``resourceVersion`` that was read: a workload changed in between is refused by the API
server with 409 Conflict, never overwritten.  A dry run sends the same patch with
``dryRun=All``, so admission webhooks and policies answer before anything changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from armirror.redeploy.errors import ChangeError, Conflict, NotFound, Rejected, bounded
from armirror.redeploy.gke_owners import key_of, trace, workload_of
from armirror.redeploy.gke_rollout import rollout_state
from armirror.redeploy.model import ContainerChange, Workload

__all__ = ["OWNER_KINDS", "Gke", "api_client", "rollout_state", "workload_of"]

OWNER_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob")
#: kind -> (API group attribute, the client's method noun)
_API = {
    "Deployment": ("apps", "deployment"),
    "StatefulSet": ("apps", "stateful_set"),
    "DaemonSet": ("apps", "daemon_set"),
    "ReplicaSet": ("apps", "replica_set"),
    "CronJob": ("batch", "cron_job"),
    "Job": ("batch", "job"),
    "Pod": ("core", "pod"),
}
_PULL_ERRORS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName"})
PAGE_SIZE = 500
MAX_PAGES = 1_000
#: Largest API answer read, in bytes (a list page of 500 big objects fits).
MAX_BODY = 64 << 20
FIELD_MANAGER = "armirror"


def api_client(context: str | None = None) -> tuple[Any, str | None]:
    """A kubernetes ``ApiClient`` and its context name: from the kubeconfig (``KUBECONFIG``
    or ``~/.kube/config``; ``context`` in it, else its current one), else the
    in-cluster config (context None)."""
    import os

    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    config_file = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        chosen = context
        if chosen is None:
            _, current = config.list_kube_config_contexts(config_file=config_file)
            chosen = current["name"]
        return config.new_client_from_config(config_file=config_file, context=chosen), chosen
    except (ConfigException, OSError, TypeError, KeyError):
        if context is not None:
            raise
        config.load_incluster_config()
        return client.ApiClient(), None


class Gke:
    """One cluster, reached through a kubernetes ``ApiClient``."""

    platform = "gke"

    def __init__(
        self,
        api_client: Any,
        *,
        namespaces: tuple[str, ...] = (),
        node_service_accounts: tuple[str, ...] = (),
        timeout: float = 30.0,
    ) -> None:
        from kubernetes import client

        self.apis = {
            "apps": client.AppsV1Api(api_client),
            "batch": client.BatchV1Api(api_client),
            "core": client.CoreV1Api(api_client),
        }
        self.server = str(api_client.configuration.host)
        self.namespaces = namespaces
        self.node_service_accounts = node_service_accounts
        self.timeout = timeout

    # -- reading -------------------------------------------------------------------------

    def _call(self, kind: str, verb: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        group, noun = _API[kind]
        name = {
            "list": f"list_namespaced_{noun}" if args else f"list_{noun}_for_all_namespaces",
            "read": f"read_namespaced_{noun}",
            "patch": f"patch_namespaced_{noun}",
        }[verb]
        try:
            response = getattr(self.apis[group], name)(
                *args, _preload_content=False, _request_timeout=self.timeout, **kwargs
            )
            data = response.read(MAX_BODY + 1) if hasattr(response, "read") else response.data
            if len(data) > MAX_BODY:
                raise ChangeError(f"{kind} answer larger than {MAX_BODY} bytes")
            answer = json.loads(data)
        except ApiException as exc:
            raise _api_error(exc) from None
        except (OSError, ValueError) as exc:
            raise ChangeError(f"{verb} {kind}: {exc}") from None
        except Exception as exc:  # urllib3's MaxRetryError and friends
            if type(exc).__module__.startswith("urllib3"):
                raise ChangeError(f"{verb} {kind}: {exc}") from None
            raise
        if not isinstance(answer, dict):
            raise ChangeError(f"{verb} {kind}: the API server sent no object")
        return answer

    def _list(self, kind: str) -> Iterator[dict[str, Any]]:
        for namespace in self.namespaces or (None,):
            token: str | None = None
            for _ in range(MAX_PAGES):
                kwargs: dict[str, Any] = {"limit": PAGE_SIZE}
                if token:
                    kwargs["_continue"] = token
                args = (namespace,) if namespace else ()
                page = self._call(kind, "list", *args, **kwargs)
                for item in page.get("items") or []:
                    if isinstance(item, dict):
                        item.setdefault("kind", kind)
                        yield item
                token = (page.get("metadata") or {}).get("continue")
                if not token:
                    break

    def read(self, kind: str, namespace: str, name: str) -> Workload:
        if kind not in OWNER_KINDS:
            raise ChangeError(f"{kind} is not a kind armirror changes")
        obj = self._call(kind, "read", name, namespace)
        obj.setdefault("kind", kind)
        return workload_of(obj)

    def discover(self) -> list[Workload]:
        """Every owner in the namespaces, then what runs outside any owner."""
        owners = [workload_of(o) for kind in OWNER_KINDS for o in self._list(kind)]
        known = {(w.kind, w.namespace, w.name) for w in owners}
        replicasets = {key_of(r): r for r in self._list("ReplicaSet")}
        jobs = {key_of(j): j for j in self._list("Job")}
        strays: dict[tuple[str, str, str], Workload] = {}
        for pod in self._list("Pod"):
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            stray = trace(pod, known, replicasets, jobs)
            if stray is not None:
                strays.setdefault((stray.kind, stray.namespace, stray.name), stray)
        return owners + list(strays.values())

    def consumers(self, workload: Workload) -> list[str]:
        """Nodes pull with their node service account, which the Kubernetes API does not
        show: the ones given with --gke-node-sa."""
        return list(self.node_service_accounts)

    # -- changing ------------------------------------------------------------------------

    def send(
        self, workload: Workload, images: list[tuple[ContainerChange, str]], *, dry_run: bool
    ) -> Workload:
        """Set each container's image; returns the workload as the server answered."""
        by_field: dict[str, list[dict[str, str]]] = {}
        for container, image in images:
            by_field.setdefault(container.field, []).append(
                {"name": container.name, "image": image}
            )
        pod_spec: dict[str, Any] = {"template": {"spec": by_field}}
        spec = {"jobTemplate": {"spec": pod_spec}} if workload.kind == "CronJob" else pod_spec
        body = {"metadata": {"resourceVersion": workload.version}, "spec": spec}
        kwargs: dict[str, Any] = {
            "field_manager": FIELD_MANAGER,
            "_content_type": "application/strategic-merge-patch+json",
        }
        if dry_run:
            kwargs["dry_run"] = "All"
        answer = self._call(
            workload.kind, "patch", workload.name, workload.namespace, body, **kwargs
        )
        answer.setdefault("kind", workload.kind)
        after = workload_of(answer)
        wanted = {(c.field, c.name): image for c, image in images}
        for container in after.containers:
            asked = wanted.get((container.field, container.name))
            if asked is not None and container.before != asked:
                raise Rejected(
                    f"the API server set {container.name}'s image to {container.before}, "
                    f"not {asked} (a mutating admission webhook?)"
                )
        return after

    # -- watching ------------------------------------------------------------------------

    def wait(
        self,
        workload: Workload,
        images: set[str],
        *,
        timeout: float,
        poll: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> str | None:
        """Follow the rollout until it is done (None) or has failed (the reason)."""
        deadline = time.monotonic() + timeout
        progress = "not read yet"
        while True:
            obj = self._call(workload.kind, "read", workload.name, workload.namespace)
            state, progress = rollout_state(workload.kind, obj)
            if state == "ready":
                return None
            # A pod that cannot pull says why a rollout stalls better than its deadline.
            pulling = self._pull_failure(obj, images)
            if pulling:
                return pulling
            if state == "failed":
                return progress
            if time.monotonic() + poll > deadline:
                return f"not ready after {timeout:g} s: {progress}"
            sleep(poll)

    def _pull_failure(self, obj: dict[str, Any], images: set[str]) -> str | None:
        """A pod of this workload that cannot pull one of the new images."""
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not selector:
            return None
        namespace = obj["metadata"].get("namespace", "default")
        label_selector = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        page = self._call("Pod", "list", namespace, label_selector=label_selector, limit=PAGE_SIZE)
        for pod in page.get("items") or []:
            status = pod.get("status") or {}
            for entry in (status.get("initContainerStatuses") or []) + (
                status.get("containerStatuses") or []
            ):
                waiting = (entry.get("state") or {}).get("waiting") or {}
                if waiting.get("reason") in _PULL_ERRORS and entry.get("image") in images:
                    return bounded(
                        f"pod {pod['metadata'].get('name')} cannot pull {entry.get('image')}: "
                        f"{waiting.get('reason')}: {waiting.get('message', '')}"
                    )
        return None


def _api_error(exc: Any) -> ChangeError:
    message = exc.reason or "error"
    try:
        body = json.loads(exc.body or "{}")
        message = body.get("message") or message
    except (TypeError, ValueError):
        pass
    if exc.status == 409:
        return Conflict(f"changed since it was read: {message}")
    if exc.status == 404:
        return NotFound(message)
    if exc.status in (400, 403, 422):
        return Rejected(f"{exc.status}: {message}")
    return ChangeError(f"{exc.status}: {message}")
