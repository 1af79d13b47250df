"""Registry failures as data, split by what a caller should do about them.

``PermanentError`` will not get better by retrying (not found, unauthorised, a manifest
we refuse); ``TransientError`` might (5xx, connection reset, a truncated body);
``RateLimited`` is transient and says how long to wait when the registry told us.

An error from an HTTP answer carries the status, the request's method and path (never
its query, which holds upload state) and the registry's OCI error codes and messages,
as go-containerregistry's ``transport.Error`` does; its message is built from those.
Decisions read ``codes``, never the message text.  Registry text is cut short and
scrubbed of anything credential-shaped (:mod:`armirror.registry.redact`); a body that
is not an OCI error document is not quoted at all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import httpx

from armirror.registry.redact import scrub
from armirror.registry.retry import retry_after_seconds

#: At most this many of a registry's errors are kept.
MAX_ERRORS = 3
#: An error body is read up to this size; the rest is dropped unread.
MAX_ERROR_BODY = 64 * 1024
#: Statuses the request layer retries: 429, 500 and the gateway/unavailable family.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_PATH_LIMIT = 200


@dataclass(frozen=True)
class OciError:
    """One entry of a registry's ``{"errors": [{"code", "message"}]}`` answer, scrubbed."""

    code: str
    message: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


class RegistryError(Exception):
    """Base of every registry failure; the message is meant for people.

    ``what`` says what armirror was doing ("manifest docker.io/library/nginx:1").
    Errors from an HTTP answer also carry ``status``, ``method``, ``path`` and ``host``
    and the registry's ``errors``; errors without one (a digest that does not match)
    carry only ``what``.
    """

    #: What to do about it, appended to the message.
    remedy: ClassVar[str] = ""
    #: Seconds the registry asked us to wait (its Retry-After), when it said.
    retry_after: float | None = None

    def __init__(
        self,
        what: str,
        *,
        status: int | None = None,
        errors: Sequence[OciError] = (),
        method: str | None = None,
        path: str | None = None,
        host: str | None = None,
    ) -> None:
        self.what = what
        self.status = status
        self.errors = tuple(errors)
        self.method = method
        self.path = path
        self.host = host
        super().__init__(self._message())

    @property
    def codes(self) -> tuple[str, ...]:
        """The registry's OCI error codes, e.g. ``("MANIFEST_BLOB_UNKNOWN",)``."""
        return tuple(error.code for error in self.errors)

    def _outcome(self) -> str:
        return f"{self.host} answered {self.status}"

    def _message(self) -> str:
        text = self.what
        if self.status is not None and self.host is not None:
            text += f": {self._outcome()}"
            if self.method and self.path:
                text += f" to {self.method} {self.path}"
        if self.errors:
            text += f" ({'; '.join(str(e) for e in self.errors)})"
        if self.remedy:
            text += f"; {self.remedy}"
        return text


class PermanentError(RegistryError):
    """Retrying will not help."""


class NotFound(PermanentError):
    """The repository, tag, digest or blob does not exist."""

    def _outcome(self) -> str:
        return f"not found on {self.host}"


class Unauthorized(PermanentError):
    """Credentials are missing or do not grant the access needed."""

    remedy = (
        "check the credentials for this registry (Docker config auths, or Google "
        "application default credentials for Artifact Registry)"
    )

    def _outcome(self) -> str:
        return f"{self.host} refused access ({self.status})"


class NoCredentials(Unauthorized):
    """The registry wants credentials, and none were found for it."""

    remedy = (
        "log in with `docker login` or `skopeo login`, or name a credential helper for "
        "it in credHelpers (Docker Hub also answers 401 for a repository that does not "
        "exist)"
    )

    def __init__(self, what: str, *, registry: str, searched: str, **answer: object) -> None:
        self.registry = registry
        self.searched = searched
        super().__init__(what, **answer)  # type: ignore[arg-type]

    def _outcome(self) -> str:
        return (
            f"no credentials for {self.registry} ({self.searched}); "
            f"{self.host} answered {self.status}"
        )


class CredentialsRefused(Unauthorized):
    """Credentials were sent, and the registry (or its token server) turned them down."""

    remedy = (
        "check that they are current and allow pulling this repository (and, at the "
        "destination, pushing to it)"
    )

    def __init__(self, what: str, *, registry: str, source: str, **answer: object) -> None:
        self.registry = registry
        self.source = source
        super().__init__(what, **answer)  # type: ignore[arg-type]

    def _outcome(self) -> str:
        return (
            f"{self.registry} refused the credentials given ({self.source}): "
            f"{self.host} answered {self.status}"
        )


class UnsupportedManifest(PermanentError):
    """A manifest armirror will not copy, such as Docker schema 1."""


class MalformedAnswer(PermanentError):
    """A registry or token server answered something that is not what the API says:
    not JSON, the wrong shape, too large."""


class HostRefused(PermanentError):
    """A connection to an address armirror must not reach (issue 12 §1)."""


class DigestMismatch(RegistryError):
    """Content did not hash to the digest that named it (a corrupted or truncated transfer)."""


class TransientError(RegistryError):
    """A server error or a broken connection; a later attempt may succeed."""


class RateLimited(TransientError):
    """HTTP 429; ``retry_after`` is the registry's Retry-After in seconds, when given."""

    def __init__(
        self,
        what: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        errors: Sequence[OciError] = (),
        method: str | None = None,
        path: str | None = None,
        host: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(what, status=status, errors=errors, method=method, path=path, host=host)

    def _outcome(self) -> str:
        return f"{self.host} is rate limiting ({self.status})"


def oci_errors(body: bytes) -> tuple[OciError, ...]:
    """The OCI error entries of an error body; () for anything else (never its text)."""
    try:
        document = json.loads(body[:MAX_ERROR_BODY])
    except (ValueError, RecursionError):
        return ()
    entries = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return ()
    found = []
    for entry in entries[:MAX_ERRORS]:
        if not isinstance(entry, dict):
            continue
        code = entry.get("code")
        message = entry.get("message")
        found.append(
            OciError(
                code if isinstance(code, str) and _CODE.match(code) else "UNKNOWN",
                scrub(message) if isinstance(message, str) else "",
            )
        )
    return tuple(found)


def request_path(url: httpx.URL) -> str:
    """A URL's path for messages: no query, bounded, scrubbed."""
    return scrub(url.path, _PATH_LIMIT)


def error_for(response: httpx.Response, what: str) -> RegistryError:
    """Map an unwanted answer (its body already read, bounded) to what a caller can act on."""
    status = response.status_code
    request = response.request
    errors = oci_errors(response.content)
    codes = {error.code for error in errors}
    method, path = request.method, request_path(request.url)
    host = scrub(request.url.netloc.decode(errors="replace"), 100)
    if status == 429 or "TOOMANYREQUESTS" in codes:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        return RateLimited(
            what,
            retry_after=retry_after,
            status=status,
            errors=errors,
            method=method,
            path=path,
            host=host,
        )
    kind: type[RegistryError] = PermanentError
    if status in (401, 403):
        kind = Unauthorized
    elif status == 404:
        kind = NotFound
    elif status >= 500:
        kind = TransientError
    error = kind(what, status=status, errors=errors, method=method, path=path, host=host)
    if status == 503:  # "Service Unavailable" may say when to come back (RFC 9110 10.2.3)
        error.retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    return error


def transport_error(what: str, exc: Exception) -> TransientError:
    """A broken connection, named by its type and scrubbed text."""
    return TransientError(f"{what}: {type(exc).__name__}: {scrub(str(exc))}")


def is_retryable(error: RegistryError) -> bool:
    """What the request layer retries by default: 429, 502-504, 500 and broken connections."""
    if isinstance(error, RateLimited):
        return True
    if not isinstance(error, TransientError):
        return False
    return error.status is None or error.status in RETRYABLE_STATUS
