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
from armirror.registry import redact
from armirror.registry.redact import (
    configure_request_logs,
    remember,
    remember_basic,
    scrub,
    url_for_log,
)

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


# -- scrub: what of a registry's text may reach a message -----------------------------------


@pytest.fixture
def known_secrets() -> Iterator[None]:
    """The process-wide list of sent secrets, emptied for the test and put back after."""
    saved = list(redact._known)
    redact._known.clear()
    yield
    redact._known.clear()
    for secret in saved:
        redact._known[secret] = None


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic REDACTED"),
        ("authorization: bearer abc.DEF_ghi-~+/=", "authorization: bearer REDACTED"),
        ("Basic Bearer abc", "Basic Bearer REDACTED"),
        ("Bearer  two-spaces", "Bearer  REDACTED"),  # the text around is kept as it was
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig and more", "token REDACTED and more"),
        ("id eyJabcd.efgh end", "id REDACTED end"),
        ('{"password": "pw-123456", "user": "u"}', '{"password": "REDACTED", "user": "u"}'),
        ("passwd=abc;next", "passwd=REDACTED;next"),
        ("refresh_token=r1&scope=x", "refresh_token=REDACTED&scope=x"),
        ("API-KEY=k1 apikey=k2 api_key=k3", "API-KEY=REDACTED apikey=REDACTED api_key=REDACTED"),
        ("credential='c1' credentials=c2", "credential='REDACTED' credentials=REDACTED"),
        ("auth: Basic dXNlcjpwYXNz", "auth: Basic REDACTED"),
        ("token=REDACTED stays", "token=REDACTED stays"),
        (
            "see https://user:pw@h.test/x and ftp://a@b/",
            "see https://REDACTED@h.test/x and ftp://REDACTED@b/",
        ),
        (
            "PUT https://r.test/v2/x/blobs/uploads/1?_state=abc&digest=sha256:1 done",
            "PUT https://r.test/v2/x/blobs/uploads/1?REDACTED done",
        ),
        ("http://r.test/p?q#frag", "http://r.test/p?REDACTED#frag"),
        ("  padded\ttext\r\n\x00\x1f\x7fend  ", "padded text end"),
        ("manifest unknown to registry", "manifest unknown to registry"),
    ],
)
def test_scrub_exact(text: str, scrubbed: str) -> None:
    assert scrub(text) == scrubbed


@pytest.mark.parametrize(
    ("text", "limit", "scrubbed"),
    [
        ("a" * 200, 200, "a" * 200),
        ("a" * 201, 200, "a" * 199 + "…"),
        ("abcdefghij", 10, "abcdefghij"),
        ("abcdefghijk", 10, "abcdefghi…"),
        ("abcdefgh   xyz", 10, "abcdefgh…"),  # no dangling space before the ellipsis
        ("  abcdefghij  ", 10, "abcdefghij"),  # cut after trimming
    ],
)
def test_scrub_cuts_to_the_limit(text: str, limit: int, scrubbed: str) -> None:
    assert scrub(text, limit) == scrubbed


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@host:5000/v2/x?y=1#z", "https://host:5000/v2/x"),
        ("HTTP://u@h/p", "HTTP://h/p"),
        ("https://h/p#f", "https://h/p"),
        ("https://h/p@x", "https://h/p@x"),
        ("h/p?q", "h/p"),
    ],
)
def test_url_for_log(url: str, shown: str) -> None:
    assert url_for_log(url) == shown
    assert url_for_log(httpx.URL(url)) == url_for_log(str(httpx.URL(url)))


def test_secrets_sent_are_redacted_from_six_characters(known_secrets: None) -> None:
    remember("qwert")  # five: too short, it would hide ordinary words
    remember("zxcvbn")
    remember(None)
    remember("")
    assert scrub("said qwert and zxcvbn here") == "said qwert and REDACTED here"


def test_the_longest_sent_secret_is_redacted_first(known_secrets: None) -> None:
    remember("plainsecret")
    remember("plainsecretword")
    assert scrub("x plainsecretword y plainsecret z") == "x REDACTED y REDACTED z"


def test_basic_credentials_are_redacted_as_sent(known_secrets: None) -> None:
    remember_basic("robot", "opensesame")
    assert scrub("got cm9ib3Q6b3BlbnNlc2FtZQ== and opensesame") == "got REDACTED and REDACTED"


def test_the_oldest_sent_secrets_are_forgotten_after_512(known_secrets: None) -> None:
    first = "firstsecret-0"
    remember(first)
    for n in range(511):
        remember(f"filler-secret-{n:04d}")
    assert scrub(f"a {first}") == "a REDACTED"  # 512 kept
    remember(first)  # sent again: now the newest
    remember("one-more-secret")
    assert scrub(f"a {first} b filler-secret-0000") == "a REDACTED b filler-secret-0000"
    assert scrub("c filler-secret-0001 one-more-secret") == "c REDACTED REDACTED"
    for n in range(512):
        remember(f"later-secret-{n:04d}")
    assert scrub(f"a {first}") == f"a {first}"
    assert scrub("later-secret-0000 later-secret-0511") == "REDACTED REDACTED"
