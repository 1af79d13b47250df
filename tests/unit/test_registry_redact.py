"""httpx's request log under ``armirror serve``: quiet unless asked for, and never with a
URL's query (upload URLs carry the registry's upload state there; signed blob URLs carry
their signature).  Requests go to a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from armirror.registry.redact import configure_request_logs

LOGGERS = ("httpx", "httpcore", "armirror.registry")
STATE = "_state=UPLOADSTATE-must-not-be-logged"


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def restore_loggers() -> Iterator[None]:
    """configure_request_logs changes process-wide loggers; put them back."""
    saved = {
        name: (logging.getLogger(name).level, list(logging.getLogger(name).filters))
        for name in LOGGERS
    }
    yield
    for name, (level, filters) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.filters[:] = filters


def _get(url: str) -> None:
    with httpx.Client() as client:
        assert client.get(url).status_code == 200


def _httpx_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "httpx"]


def test_verbose_logs_each_request_without_its_query(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    configure_request_logs(verbose=True)
    configure_request_logs(verbose=True)  # serve may be set up twice in one process
    _get(f"{server}/v2/team/app/blobs/uploads/1f2e?{STATE}&digest=sha256:ab#frag")
    lines = _httpx_lines(caplog)
    assert [r.levelno for r in lines] == [logging.INFO]
    message = lines[0].getMessage()
    assert f"GET {server}/v2/team/app/blobs/uploads/1f2e " in message
    assert "200 OK" in message
    assert "UPLOADSTATE" not in message and "digest=" not in message and "?" not in message
    assert (
        sum(type(f).__name__ == "_QueryStripper" for f in logging.getLogger("httpx").filters) == 1
    )
    for name in LOGGERS:
        assert logging.getLogger(name).level == logging.INFO, name
    # The retry lines (armirror.registry.*) are shown too.
    assert logging.getLogger("armirror.registry.retry").isEnabledFor(logging.INFO)


def test_quiet_by_default_but_warnings_still_pass(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    configure_request_logs(verbose=False)
    _get(f"{server}/v2/team/app/manifests/1?{STATE}")
    assert _httpx_lines(caplog) == []
    for name in LOGGERS:
        assert logging.getLogger(name).level == logging.WARNING, name
    retry_log = logging.getLogger("armirror.registry.retry")
    assert not retry_log.isEnabledFor(logging.INFO)
    assert retry_log.isEnabledFor(logging.WARNING)
    assert not logging.getLogger("httpcore.connection").isEnabledFor(logging.INFO)
    # The query filter is in place even when quiet, for when someone raises the level.
    logging.getLogger("httpx").setLevel(logging.INFO)
    _get(f"{server}/v2/team/app/manifests/1?{STATE}")
    (line,) = _httpx_lines(caplog)
    assert "UPLOADSTATE" not in line.getMessage()
    assert "/v2/team/app/manifests/1 " in line.getMessage()


def test_log_lines_without_a_url_pass_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    configure_request_logs(verbose=True)
    httpx_log = logging.getLogger("httpx")
    httpx_log.info("plain %s %d", "text?kept", 3)
    httpx_log.info("mapping %(a)s", {"a": "x?y"})
    httpx_log.info("no arguments at all?really")
    assert [r.getMessage() for r in _httpx_lines(caplog)] == [
        "plain text?kept 3",
        "mapping x?y",
        "no arguments at all?really",
    ]
