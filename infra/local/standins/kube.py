"""A small Kubernetes API server on 127.0.0.1, for the real ``kubernetes`` client.

A live GKE cluster cannot run here, so ``scan --cluster``, ``redeploy --cluster``, their
tests and ``make demo`` talk to this instead, through a kubeconfig it writes.  It speaks
the parts of the API those commands use, with real-shaped JSON:

- GET lists of pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs and
  CronJobs, cluster-wide or per namespace, paged with ``limit``/``continue``, filtered
  by an equality ``labelSelector``; GET one object;
- PATCH one object with a strategic merge patch (containers merged by name) or a JSON
  merge patch; a ``metadata.resourceVersion`` in the patch that is not the current one
  is refused with 409 Conflict, as the real server does; ``dryRun=All`` answers with the
  patched object and stores nothing;
- ``metadata.generation`` rises when the spec changes, ``resourceVersion`` on every
  write; a changed pod template starts a "rollout" that a stand-in controller finishes
  after ``rollout_reads`` reads of the object, or that never finishes when an image is
  in ``unpullable`` (a pod waiting in ImagePullBackOff appears, as on a real node):
  the objects and that controller are :class:`standins.kube_cluster.Cluster`;
- an ``admission`` hook may deny a write (403, as a validating webhook does), dry run
  or not.

Every request is recorded in ``requests``.  Objects are built with :mod:`standins.kube_objects`.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from .kube_cluster import RESOURCES, Cluster, Key
from .kube_state import merge_patch, strategic_merge

_PATH = re.compile(
    r"^(?P<base>/api/v1|/apis/(?:apps|batch)/v1)"
    r"(?:/namespaces/(?P<ns>[a-z0-9-]+))?/(?P<resource>[a-z]+)(?:/(?P<name>[a-z0-9.-]+))?$"
)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str | None
    body: Any


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class KubeStandin(Cluster):
    """Serve ``objects`` until :meth:`stop`; use as a context manager."""

    def __init__(self, objects: Iterable[dict[str, Any]] = (), *, rollout_reads: int = 1) -> None:
        super().__init__(objects, rollout_reads=rollout_reads)
        self.requests: list[Request] = []
        self.admission: Callable[[dict[str, Any]], str | None] | None = None
        self.before_patch: Callable[[], None] | None = None  # runs once, then is cleared
        self.fail_with: int | None = None  # answer every request with this status
        self.page_size: int | None = None  # at most this many items a page
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- HTTP --------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                content_type = self.headers.get("Content-Type")
                with standin._lock:
                    standin.requests.append(Request(method, self.path, query, content_type, body))
                    code, answer = standin._route(method, url.path, query, content_type, body)
                self._answer(code, answer)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

        return Handler

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        content_type: str | None,
        body: Any,
    ) -> tuple[int, dict[str, Any]]:
        if self.fail_with is not None:
            return self.fail_with, _status(self.fail_with, "Forbidden", "forbidden by the stand-in")
        match = _PATH.match(path)
        if not match or match["resource"] not in RESOURCES:
            return 404, _status(404, "NotFound", f"the server could not find {path}")
        base, kind = RESOURCES[match["resource"]]
        if base != match["base"]:
            return 404, _status(404, "NotFound", f"the server could not find {path}")
        if match["name"] is None:
            if method != "GET":
                return 405, _status(405, "MethodNotAllowed", "lists are read-only here")
            return 200, self._list(match["resource"], kind, match["ns"], query)
        key = (match["resource"], match["ns"] or "", match["name"])
        if method == "GET":
            if key not in self.objects:
                return 404, _status(404, "NotFound", f'{match["resource"]} "{key[2]}" not found')
            self._observe(key)
            return 200, copy.deepcopy(self.objects[key])
        return self._patch(key, query, content_type, body)

    def _list(
        self, resource: str, kind: str, namespace: str | None, query: dict[str, list[str]]
    ) -> dict[str, Any]:
        selector = dict(
            part.split("=", 1)
            for part in (query.get("labelSelector") or [""])[0].split(",")
            if "=" in part
        )
        items = []
        for (res, ns, _), obj in sorted(self.objects.items()):
            if res != resource or (namespace and ns != namespace):
                continue
            labels = obj["metadata"].get("labels") or {}
            if all(labels.get(k) == v for k, v in selector.items()):
                items.append(copy.deepcopy(obj))
        start = int((query.get("continue") or ["0"])[0])
        limit = int((query.get("limit") or [0])[0]) or len(items) or 1
        if self.page_size:  # smaller pages than the client asked for, as a server may send
            limit = min(limit, self.page_size)
        page = items[start : start + limit]
        meta: dict[str, Any] = {"resourceVersion": str(self._version)}
        if start + limit < len(items):
            meta["continue"] = str(start + limit)
        return {"kind": f"{kind}List", "apiVersion": "v1", "metadata": meta, "items": page}

    def _patch(
        self, key: Key, query: dict[str, list[str]], content_type: str | None, body: Any
    ) -> tuple[int, dict[str, Any]]:
        if self.before_patch is not None:
            hook, self.before_patch = self.before_patch, None
            hook()
        if key not in self.objects:
            return 404, _status(404, "NotFound", f'{key[0]} "{key[2]}" not found')
        current = self.objects[key]
        kind = (content_type or "").split(";")[0].strip()
        if kind == "application/strategic-merge-patch+json":
            patched = strategic_merge(current, body)
        elif kind == "application/merge-patch+json":
            patched = merge_patch(current, body)
        else:
            return 415, _status(415, "UnsupportedMediaType", f"unsupported patch type {kind!r}")
        wanted = ((body or {}).get("metadata") or {}).get("resourceVersion")
        have = current["metadata"]["resourceVersion"]
        if wanted is not None and wanted != have:
            message = (
                f'Operation cannot be fulfilled on {key[0]}.apps "{key[2]}": the object has '
                "been modified; please apply your changes to the latest version and try again"
            )
            return 409, _status(409, "Conflict", message)
        patched["metadata"]["resourceVersion"] = have
        if self.admission is not None:
            denied = self.admission(patched)
            if denied:
                message = f'admission webhook "policy.stand-in.local" denied the request: {denied}'
                return 403, _status(403, "Forbidden", message)
        if query.get("dryRun") == ["All"]:
            if patched.get("spec") != current.get("spec"):
                patched["metadata"]["generation"] = int(current["metadata"]["generation"]) + 1
            return 200, patched
        self._store(key, current, patched)
        return 200, copy.deepcopy(self.objects[key])

    # -- lifecycle ---------------------------------------------------------------------

    def write_kubeconfig(self, path: Path, context: str = "stand-in") -> Path:
        """A kubeconfig whose ``context`` (also the current one) points here."""
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": context, "cluster": {"server": self.url}}],
                    "users": [{"name": "stand-in-user", "user": {"token": "stand-in-token"}}],
                    "contexts": [
                        {"name": context, "context": {"cluster": context, "user": "stand-in-user"}}
                    ],
                    "current-context": context,
                }
            )
        )
        return path

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> KubeStandin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
