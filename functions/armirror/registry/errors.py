"""Registry failures, split by what a caller should do about them.

``PermanentError`` will not get better by retrying (not found, unauthorised, a manifest
we refuse); ``TransientError`` might (5xx, connection reset, a truncated body);
``RateLimited`` is transient and says how long to wait when the registry told us.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every registry failure; the message is meant for people."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PermanentError(RegistryError):
    """Retrying will not help."""


class NotFound(PermanentError):
    """The repository, tag, digest or blob does not exist."""


class Unauthorized(PermanentError):
    """Credentials are missing or do not grant the access needed."""


class UnsupportedManifest(PermanentError):
    """A manifest armirror will not copy, such as Docker schema 1."""


class DigestMismatch(RegistryError):
    """Content did not hash to the digest that named it (a corrupted or truncated transfer)."""


class TransientError(RegistryError):
    """A server error or a broken connection; a later attempt may succeed."""


class RateLimited(TransientError):
    """HTTP 429; ``retry_after`` is the registry's Retry-After in seconds, when given."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after
