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
from armirror.redeploy.model import ContainerChange, Workload

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
_FIELDS = ("initContainers", "containers")
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
        replicasets = {_key(r): r for r in self._list("ReplicaSet")}
        jobs = {_key(j): j for j in self._list("Job")}
        strays: dict[tuple[str, str, str], Workload] = {}
        for pod in self._list("Pod"):
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            stray = _trace(pod, known, replicasets, jobs)
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


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace", "default"), meta.get("name", ""))


def _controller(obj: dict[str, Any]) -> dict[str, Any] | None:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), refs[0] if refs else None)


def _trace(
    pod: dict[str, Any],
    owners: set[tuple[str, str, str]],
    replicasets: dict[tuple[str, str], dict[str, Any]],
    jobs: dict[tuple[str, str], dict[str, Any]],
) -> Workload | None:
    """None when an owner armirror changes controls the pod; else what to report."""
    namespace, _name = _key(pod)
    ref = _controller(pod)
    if ref is None:
        return _stray(pod, "a bare pod: no controller recreates it, so delete and recreate it")
    kind, owner = ref.get("kind", ""), ref.get("name", "")
    if kind in ("StatefulSet", "DaemonSet") and (kind, namespace, owner) in owners:
        return None
    parent_map = {"ReplicaSet": replicasets, "Job": jobs}.get(kind)
    if parent_map is None:
        return _stray(pod, f"controlled by {kind} {owner}, which armirror does not change")
    parent = parent_map.get((namespace, owner))
    if parent is None:
        return _stray(pod, f"controlled by {kind} {owner}, which could not be found")
    top = _controller(parent)
    want = "Deployment" if kind == "ReplicaSet" else "CronJob"
    if top is not None and top.get("kind") == want and (want, namespace, top.get("name")) in owners:
        return None
    parent.setdefault("kind", kind)
    if kind == "Job":
        why = "a Job without a CronJob: its pod template cannot be changed"
    else:
        why = "a ReplicaSet without a Deployment: its pods keep their images until replaced"
    return _stray(parent, why)


def _stray(obj: dict[str, Any], why: str) -> Workload:
    workload = workload_of(obj)
    workload.changeable = False
    workload.reason = why
    return workload


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        return spec
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def workload_of(obj: dict[str, Any]) -> Workload:
    """A Workload from an API object: its containers, versions and marks."""
    meta = obj.get("metadata") or {}
    containers = []
    spec = _pod_spec(obj)
    for field in _FIELDS:
        for index, container in enumerate(spec.get(field) or []):
            image = container.get("image") if isinstance(container, dict) else None
            if isinstance(image, str) and image:
                containers.append(ContainerChange(field, index, str(container.get("name")), image))
    return Workload(
        platform="gke",
        kind=str(obj.get("kind")),
        namespace=str(meta.get("namespace", "default")),
        name=str(meta.get("name", "")),
        containers=containers,
        version=str(meta.get("resourceVersion", "")),
        generation=int(meta.get("generation") or 0),
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
        annotations={str(k): str(v) for k, v in (meta.get("annotations") or {}).items()},
        raw=obj,
    )


def rollout_state(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    """``("ready" | "progressing" | "failed", what is going on)``, as ``kubectl rollout
    status`` judges it."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if kind == "CronJob":
        return "ready", "the next Job runs the new images"
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return "progressing", "waiting for the controller to see the change"
    if kind == "Deployment":
        for condition in status.get("conditions") or []:
            if (
                condition.get("type") == "Progressing"
                and condition.get("reason") == "ProgressDeadlineExceeded"
            ):
                return "failed", bounded(condition.get("message") or "progress deadline exceeded")
        want = int(spec.get("replicas", 1))
        updated = int(status.get("updatedReplicas") or 0)
        if updated < want:
            return "progressing", f"{updated} of {want} replicas updated"
        if int(status.get("replicas") or 0) > updated:
            return "progressing", "old replicas are terminating"
        if int(status.get("availableReplicas") or 0) < updated:
            return "progressing", f"{status.get('availableReplicas') or 0} of {updated} available"
        return "ready", "rolled out"
    if kind == "StatefulSet":
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type") == "OnDelete":
            return "ready", "OnDelete: pods take the new images when they are deleted"
        want = int(spec.get("replicas", 1))
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        if int(status.get("updatedReplicas") or 0) < want - partition:
            return "progressing", f"{status.get('updatedReplicas') or 0} of {want} updated"
        if partition == 0 and status.get("updateRevision") != status.get("currentRevision"):
            return "progressing", "waiting for the update revision to become current"
        if int(status.get("readyReplicas") or 0) < want:
            return "progressing", f"{status.get('readyReplicas') or 0} of {want} ready"
        return "ready", "rolled out"
    if kind == "DaemonSet":
        if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
            return "ready", "OnDelete: pods take the new images when they are deleted"
        want = int(status.get("desiredNumberScheduled") or 0)
        if int(status.get("updatedNumberScheduled") or 0) < want:
            return "progressing", f"{status.get('updatedNumberScheduled') or 0} of {want} updated"
        if int(status.get("numberAvailable") or 0) < want:
            return "progressing", f"{status.get('numberAvailable') or 0} of {want} available"
        return "ready", "rolled out"
    return "ready", ""
