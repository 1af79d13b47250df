"""A hostile registry and an "internal service" on 127.0.0.1, for issue 12's attacks.

:class:`InternalService` plays what an attacker wants the copier to reach (the metadata
server, an admin API): it answers everything with a secret and records who asked.

:class:`HostileRegistry` answers by the repository's first path component:

- ``redirect/…``: 307 to the internal service;
- ``realm/…``: 401 with a Bearer realm on the internal service (plain HTTP);
- ``echo/…``: Basic auth, then (HEAD: no digest, so the copier GETs) 403 with an OCI error
  whose message echoes the Authorization header; ``echohtml/…`` the same as a raw
  HTML page with status 400;
- ``huge/…``: a 32 MiB manifest with its Content-Length; ``hugechunked/…`` the same,
  chunked;
- ``nested/…``: a manifest nested 100,000 deep (HEAD gives its true digest);
- ``tokenjunk/…`` and ``tokenlist/…``: a Bearer realm on this registry whose token
  endpoint answers HTML, or a JSON list;
- ``ok/…``: 404 for every manifest (a registry that works but lacks the image).

Every request is recorded in ``requests`` as (method, path, Authorization header).
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
NESTED = b"[" * 100_000 + b"]" * 100_000
HUGE = 32 * 1024 * 1024
#: A manifest whose layer "digest" climbs out of /blobs/ to another repository's path.
CLIMBING = json.dumps({
    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": "sha256:" + "0" * 64, "size": 2},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": "sha256:../../../../climbed/manifests/latest", "size": 1}],
}).encode()  # fmt: skip
CLIMBING_DIGEST = "sha256:" + hashlib.sha256(CLIMBING).hexdigest()


class _Server:
    """A threaded HTTP server on 127.0.0.1 with a request log."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def record(self, method: str, path: str, authorization: str) -> None:
        with self._lock:
            self.requests.append((method, path, authorization))

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> _Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.record(self.command, self.path, self.headers.get("Authorization", ""))
                try:
                    server.answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_HEAD = do_GET
            do_POST = do_GET
            do_PUT = do_GET

        return Handler


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


class InternalService(_Server):
    """What must stay out of reach: answers every request with ``SECRET``."""

    SECRET = "INTERNAL-METADATA-7f3c9a"

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.dumps({"token": self.SECRET, "errors": [{"code": "X", "message": self.SECRET}]})
        send(handler, 200, body.encode(), {"Content-Type": "application/json"})


class HostileRegistry(_Server):
    def __init__(self, internal: InternalService, elsewhere: str | None = None) -> None:
        """``elsewhere`` is where redirects and realms point (default: ``internal``)."""
        self.internal = internal
        self.elsewhere = elsewhere or internal.url
        super().__init__()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        if path == "/v2/" or path.startswith("/v2/?"):
            send(handler, 200, b"{}", {"Content-Type": "application/json"})
            return
        if path.startswith("/token-junk"):
            send(handler, 200, b"<html>no token here</html>", {"Content-Type": "text/html"})
            return
        if path.startswith("/token-list"):
            send(handler, 200, b'["token", "x"]', {"Content-Type": "application/json"})
            return
        mode = path.removeprefix("/v2/").split("/", 1)[0]
        authorization = handler.headers.get("Authorization", "")
        if mode == "redirect":
            send(handler, 307, b"", {"Location": f"{self.elsewhere}/computeMetadata/v1/"})
        elif mode == "realm":
            challenge = f'Bearer realm="{self.elsewhere}/token",service="hostile"'
            send(handler, 401, b"", {"WWW-Authenticate": challenge})
        elif mode in ("echo", "echohtml"):
            if not authorization:
                send(handler, 401, b"", {"WWW-Authenticate": 'Basic realm="hostile"'})
            elif handler.command == "HEAD":  # no digest, no body to echo into: the GET comes
                send(handler, 200, b"", {"Content-Type": OCI_MANIFEST})
            elif mode == "echo":
                message = f"denied: you sent Authorization: {authorization} ({authorization[6:]})"
                body = json.dumps({"errors": [{"code": "DENIED", "message": message}]})
                send(handler, 403, body.encode(), {"Content-Type": "application/json"})
            else:
                page = f"<html><pre>{handler.requestline}\nAuthorization: {authorization}</pre>"
                send(handler, 400, page.encode(), {"Content-Type": "text/html"})
        elif mode in ("huge", "hugechunked"):
            self._huge(handler, chunked=mode == "hugechunked")
        elif mode == "nested":
            digest = "sha256:" + hashlib.sha256(NESTED).hexdigest()
            headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": digest}
            send(handler, 200, NESTED, headers)
        elif mode == "climbing":
            headers = {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": CLIMBING_DIGEST}
            send(handler, 200, CLIMBING, headers)
        elif mode in ("tokenjunk", "tokenlist"):
            realm = f"{self.url}/token-{mode.removeprefix('token')}"
            send(handler, 401, b"", {"WWW-Authenticate": f'Bearer realm="{realm}",service="h"'})
        else:
            body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
            send(handler, 404, body, {"Content-Type": "application/json"})

    @staticmethod
    def _huge(handler: BaseHTTPRequestHandler, *, chunked: bool) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", OCI_MANIFEST)
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(HUGE))
        handler.end_headers()
        if handler.command == "HEAD":
            return
        block = b" " * (1 << 20)
        for _ in range(HUGE // len(block)):
            if chunked:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            else:
                handler.wfile.write(block)
        if chunked:
            handler.wfile.write(b"0\r\n\r\n")
