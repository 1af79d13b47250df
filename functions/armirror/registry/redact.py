"""Keep secrets out of messages: what a registry sends back is hostile until cut and scrubbed.

A registry's error page may echo the request, ``Authorization: Basic …`` included
(issue 12 §2).  So every piece of registry text that reaches an error, a log line or a
stored record goes through :func:`scrub`: control characters out, credential-shaped
strings and every secret this process has sent replaced by ``REDACTED``, and the rest
cut to a fixed length.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections import OrderedDict

import httpx

REDACTED = "REDACTED"
#: How much of one piece of registry text a message keeps.
MAX_TEXT = 200
#: A password shorter than this is not searched for (it would redact ordinary words).
MIN_SECRET = 6
_KNOWN_LIMIT = 512

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization header values: "Basic dXNlcjpwYXNz", "Bearer eyJ…".
    (
        re.compile(r"(?i)\b(basic|bearer)(\s+)(?!(?:basic|bearer)\b)[A-Za-z0-9._~+/=-]+"),
        rf"\1\2{REDACTED}",
    ),
    # JSON Web Tokens wherever they appear.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?"), REDACTED),
    # key=value and "key": "value" where the key names a secret.
    (
        re.compile(
            r"(?i)((?:password|passwd|secret|token|access_token|refresh_token|api[_-]?key"
            r"|authorization|credentials?|auth)[\"']?\s*[:=]\s*[\"']?)(?!REDACTED|(?i:basic|bearer)\s)[^\s\"',;&}]+"
        ),
        rf"\1{REDACTED}",
    ),
    # user:password@ in URLs.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@"), rf"\1{REDACTED}@"),
    # Query strings carry upload state and signed-URL signatures.
    (re.compile(r"(?i)\b(https?://[^\s?#\"']+)\?[^\s#\"']*"), rf"\1?{REDACTED}"),
)

_known: OrderedDict[str, None] = OrderedDict()
_known_lock = threading.Lock()


def remember(secret: str | None) -> None:
    """Note a secret this process sends (a password, a token), so no message repeats it."""
    if not secret or len(secret) < MIN_SECRET:
        return
    with _known_lock:
        _known[secret] = None
        _known.move_to_end(secret)
        while len(_known) > _KNOWN_LIMIT:
            _known.popitem(last=False)


def remember_basic(user: str, password: str) -> None:
    """A Basic credential: the password and the header's base64 form."""
    remember(password)
    remember(base64.b64encode(f"{user}:{password}".encode()).decode())


def scrub(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` with no control characters, no known or credential-shaped secrets,
    at most ``limit`` characters."""
    text = _CONTROL.sub(" ", text)
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    text = text.strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def url_for_log(url: object) -> str:
    """A URL without its query string or userinfo (upload URLs carry state in the query)."""
    text = str(url)
    text = re.sub(r"(?i)^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", text)
    return text.split("?", 1)[0].split("#", 1)[0]


class _QueryStripper(logging.Filter):
    """Rewrites URLs in httpx's request log lines to drop their query strings."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                url_for_log(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


def configure_request_logs(*, verbose: bool) -> None:
    """httpx's and httpcore's per-request lines and the retry lines only when asked for
    (``serve --verbose``); even then URLs lose their query, which holds upload state."""
    level = logging.INFO if verbose else logging.WARNING
    for name in ("httpx", "httpcore", "armirror.registry"):
        logging.getLogger(name).setLevel(level)
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, _QueryStripper) for f in httpx_log.filters):
        httpx_log.addFilter(_QueryStripper())
