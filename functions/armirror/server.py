"""``armirror serve``: the four Cloud Functions in one local process.

Each function is at ``POST /<name>``, calling the same pipeline entry points as
functions/main.py.  ``/on_pull_event`` takes CloudEvents in structured and binary mode,
as Eventarc delivers them.  Garbage inside a valid CloudEvent is acknowledged (204), a
request that is not a CloudEvent is refused (400), a store or queue fault answers 503 so
the sender retries.
"""

from __future__ import annotations

import logging
from typing import Any

from cloudevents.http import from_http
from flask import Flask, Response, request

from armirror import runtime
from armirror.http_input import MAX_EVENT_BYTES, BodyTooLarge, read_body

log = logging.getLogger("armirror.server")


def _respond(result: tuple[str, int, dict[str, str]]) -> Response:
    body, status, headers = result
    return Response(body, status=status, headers=headers)


def create_app() -> Flask:
    app = Flask("armirror")

    @app.post("/on_pull_event")
    def on_pull_event() -> Any:
        try:
            body = read_body(request, MAX_EVENT_BYTES)
        except BodyTooLarge as exc:  # chunked bodies too: never cut and acknowledged
            return {"error": str(exc)}, 413
        try:
            event = from_http(dict(request.headers), body)
        except Exception as exc:  # the SDK raises several types for malformed input
            return {"error": f"not a CloudEvent: {str(exc)[:200]}"}, 400
        try:
            runtime.on_pull_event(event)
        except Exception as exc:
            log.exception("on_pull_event failed; the sender should retry")
            return {"error": f"transient failure: {exc}"}, 503
        return "", 204

    @app.post("/copy_image")
    def copy_image() -> Any:
        return _respond(runtime.copy_image(request))

    @app.post("/request_copy")
    def request_copy() -> Any:
        return _respond(runtime.request_copy(request))

    @app.post("/refresh")
    def refresh() -> Any:
        return _respond(runtime.refresh(request))

    @app.get("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    return app


def serve(host: str, port: int) -> None:
    """Serve until interrupted; the local queue is closed on the way out."""
    from werkzeug.serving import make_server

    current = runtime.current()
    server = make_server(host, port, create_app(), threaded=True)
    log.info("armirror serving on http://%s:%d (destination %s)", host, server.port, current.prefix)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        current.queue.close()
