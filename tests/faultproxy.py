"""A fault-injecting HTTP proxy on 127.0.0.1 for registry tests.

It forwards every request to one upstream registry and, while a rule has uses left,
misbehaves instead: answer 429 (with a Retry-After) or 503, reset the connection in the
middle of a body, truncate a body (fewer bytes than its Content-Length, then close),
corrupt a body (same length, wrong bytes), change the answer's headers ("headers") or
its status ("restatus": the request still reaches the upstream), serve a canned response,
or hang (read the request, never answer until the proxy stops).  Rules match a method and a path regex; each has a bounded
number of uses (``times``), so every retry loop in a test ends.

    with FaultProxy(registry.url) as proxy:
        proxy.add("GET", r"/blobs/sha256:", "truncate", times=1)
        ... --upstream docker.io={proxy.url} ...
        proxy.log   # (method, path, what happened) for every request
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

KINDS = frozenset(
    {"429", "503", "reset", "truncate", "corrupt", "serve", "headers", "restatus", "hang"}
)
#: The longest a "hang" holds a request (the proxy stopping ends it sooner).
HANG_LIMIT = 300.0
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Rule:
    method: str
    path: re.Pattern[str]
    kind: str
    times: int
    retry_after: str | None = None
    #: For "serve": status, headers and body of the canned answer (a header given as ""
    #: is left out, Content-Length included); for "headers": the upstream answer's
    #: headers to set, or with the value "" to leave out; for "restatus": the status
    #: that replaces the upstream's.
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    used: int = 0


class FaultProxy:
    """A threaded proxy in front of ``upstream`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, upstream: str, *, rewrite_location: bool = False) -> None:
        """``rewrite_location`` points absolute ``Location`` headers that name the
        upstream (distribution's upload locations) back at the proxy, so the requests
        that follow them pass through it too."""
        self.upstream = upstream.rstrip("/")
        self.rewrite_location = rewrite_location
        self.rules: list[Rule] = []
        self.log: list[tuple[str, str, str]] = []
        #: (time.monotonic() on arrival, method, path) for every request, in order.
        self.arrivals: list[tuple[float, str, str]] = []
        #: (method, path, Authorization header or None) for every request, in order.
        self.authorizations: list[tuple[str, str, str | None]] = []
        #: (method, path, body) of every request that had a body, in order.
        self.bodies: list[tuple[str, str, bytes]] = []
        #: (method, path, headers with lower-case names) of every request, in order.
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._local = threading.local()  # one upstream client per handler thread
        self._clients: list[httpx.Client] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def add(
        self,
        method: str,
        path: str,
        kind: str,
        *,
        times: int = 1,
        retry_after: str | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> Rule:
        """Misbehave ``times`` times for requests whose path matches ``path`` (re.search)."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}")
        rule = Rule(
            method.upper(),
            re.compile(path),
            kind,
            times,
            retry_after,
            status,
            dict(headers or {}),
            body,
        )
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.log.clear()
            self.arrivals.clear()
            self.authorizations.clear()
            self.bodies.clear()
            self.requests.clear()

    def arrived(self, method: str, path: str = "") -> list[float]:
        """When each request with ``method`` and a path matching ``path`` arrived."""
        pattern = re.compile(path)
        with self._lock:
            return [t for t, m, p in self.arrivals if m == method and pattern.search(p)]

    def count(self, method: str, path: str = "", outcome: str | None = None) -> int:
        pattern = re.compile(path)
        with self._lock:
            return sum(
                1
                for m, p, o in self.log
                if m == method and pattern.search(p) and (outcome is None or o == outcome)
            )

    def _take(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.used < rule.times and rule.method == method and rule.path.search(path):
                    rule.used += 1
                    return rule
        return None

    def _record(self, method: str, path: str, outcome: str) -> None:
        with self._lock:
            self.log.append((method, path, outcome))

    def _http(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.upstream, timeout=60)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for client in self._clients:
                client.close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _plain(self, status: int, headers: dict[str, str], body: bytes) -> None:
                """A canned answer; a header given as "" is left out (Content-Length too:
                then the answer ends when the connection closes)."""
                self.send_response(status)
                for name, value in headers.items():
                    if value:
                        self.send_header(name, value)
                if headers.get("Content-Length") == "":
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _reset(self) -> None:
                """Close with RST (SO_LINGER 0): the client sees a connection reset."""
                self.close_connection = True
                try:
                    self.wfile.flush()
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.connection.close()
                except OSError:
                    pass

            def _serve(self) -> None:
                method, path = self.command, self.path
                with proxy._lock:
                    proxy.arrivals.append((time.monotonic(), method, path))
                    proxy.authorizations.append((method, path, self.headers.get("Authorization")))
                    sent = {name.lower(): value for name, value in self.headers.items()}
                    proxy.requests.append((method, path, sent))
                length = int(self.headers.get("Content-Length") or 0)
                request_body = self.rfile.read(length) if length else b""
                if request_body:
                    with proxy._lock:
                        proxy.bodies.append((method, path, request_body))
                rule = proxy._take(method, path)
                if rule and rule.kind in {"429", "503"}:
                    proxy._record(method, path, rule.kind)
                    headers = {"Content-Type": "application/json"}
                    if rule.retry_after is not None:
                        headers["Retry-After"] = rule.retry_after
                    code = "TOOMANYREQUESTS" if rule.kind == "429" else "UNAVAILABLE"
                    body = b'{"errors":[{"code":"%s","message":"injected by faultproxy"}]}' % (
                        code.encode()
                    )
                    self._plain(int(rule.kind), headers, body)
                    return
                if rule and rule.kind == "hang":
                    proxy._record(method, path, "hang")
                    proxy._stopping.wait(HANG_LIMIT)
                    self.close_connection = True
                    return
                if rule and rule.kind == "serve":
                    proxy._record(method, path, "serve")
                    self._plain(rule.status, rule.headers, rule.body)
                    return
                forward = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in _HOP_BY_HOP and k.lower() != "host"
                }
                http = proxy._http()
                request = http.build_request(
                    method, path, headers=forward, content=request_body or None
                )
                upstream = http.send(request, stream=True)
                try:
                    self._relay(method, path, upstream, rule)
                finally:
                    upstream.close()

            def _relay(
                self, method: str, path: str, upstream: httpx.Response, rule: Rule | None
            ) -> None:
                restatus = rule is not None and rule.kind == "restatus"
                self.send_response(rule.status if rule and restatus else upstream.status_code)
                changed = rule.headers if rule and rule.kind == "headers" else {}
                dropped = {"content-length", *_HOP_BY_HOP, *(n.lower() for n in changed)}
                for name, value in upstream.headers.multi_items():
                    if name.lower() not in dropped:
                        if (
                            proxy.rewrite_location
                            and name.lower() == "location"
                            and value.startswith(proxy.upstream)
                        ):
                            value = proxy.url + value[len(proxy.upstream) :]
                        self.send_header(name, value)
                for name, value in changed.items():
                    if value:
                        self.send_header(name, value)
                body_length = upstream.headers.get("Content-Length")
                if body_length is None:
                    # Buffer bodies without a length (small error documents).
                    content = upstream.read()
                    body_length = str(len(content))
                    chunks = iter([content])
                else:
                    chunks = upstream.iter_raw(1 << 16)
                self.send_header("Content-Length", body_length)
                self.end_headers()
                if method == "HEAD":
                    proxy._record(method, path, rule.kind if rule else "ok")
                    return
                total = int(body_length)
                cut = total // 2 if rule and rule.kind in {"reset", "truncate"} else None
                sent = 0
                for chunk in chunks:
                    if cut is not None and sent + len(chunk) >= cut:
                        self.wfile.write(chunk[: cut - sent])
                        assert rule is not None
                        proxy._record(method, path, rule.kind)
                        if rule.kind == "reset":
                            self._reset()
                        else:
                            self.close_connection = True
                            self.wfile.flush()
                            self.connection.shutdown(socket.SHUT_WR)
                        return
                    if rule and rule.kind == "corrupt" and chunk:
                        chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                    self.wfile.write(chunk)
                    sent += len(chunk)
                proxy._record(method, path, rule.kind if rule else "ok")

            def do_GET(self) -> None:
                try:
                    self._serve()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_HEAD = do_GET
            do_POST = do_GET
            do_PUT = do_GET
            do_PATCH = do_GET
            do_DELETE = do_GET

        return Handler
