"""The two kinds of "access refused" say different things to fix: no credentials were found
(and where armirror looked), or the ones sent were refused (and where they came from).
Both keep the answer's details for decisions and never show a credential."""

from __future__ import annotations

import json

import httpx
import pytest
from armirror.registry.errors import (
    MAX_ERROR_BODY,
    CredentialsRefused,
    NoCredentials,
    NotFound,
    OciError,
    PermanentError,
    RateLimited,
    RegistryError,
    TransientError,
    Unauthorized,
    error_for,
    is_retryable,
    oci_errors,
    request_path,
    transport_error,
)

ANSWER = {
    "status": 401,
    "errors": (OciError("UNAUTHORIZED", "authentication required"),),
    "method": "HEAD",
    "path": "/v2/team/app/manifests/1",
    "host": "127.0.0.1:5000",
}


def test_no_credentials_says_where_it_looked() -> None:
    error = NoCredentials(
        "manifest quay.io/team/app:1",
        registry="quay.io",
        searched="looked in /home/u/.docker/config.json",
        **ANSWER,
    )
    assert str(error) == (
        "manifest quay.io/team/app:1: no credentials for quay.io (looked in "
        "/home/u/.docker/config.json); 127.0.0.1:5000 answered 401 to HEAD "
        "/v2/team/app/manifests/1 (UNAUTHORIZED: authentication required); log in with "
        "`docker login` or `skopeo login`, or name a credential helper for it in "
        "credHelpers (Docker Hub also answers 401 for a repository that does not exist)"
    )
    assert error.registry == "quay.io"
    assert error.searched == "looked in /home/u/.docker/config.json"
    assert (error.status, error.method, error.path, error.host) == (
        401,
        "HEAD",
        "/v2/team/app/manifests/1",
        "127.0.0.1:5000",
    )
    assert error.codes == ("UNAUTHORIZED",)
    assert isinstance(error, Unauthorized) and isinstance(error, PermanentError)
    assert not is_retryable(error)


def test_refused_credentials_name_their_source() -> None:
    error = CredentialsRefused(
        "upload us-docker.pkg.dev/p/r/app",
        registry="us-docker.pkg.dev",
        source="auths in /home/u/.docker/config.json",
        **{**ANSWER, "status": 403, "method": "POST", "path": "/v2/p/r/app/blobs/uploads/"},
    )
    assert str(error) == (
        "upload us-docker.pkg.dev/p/r/app: us-docker.pkg.dev refused the credentials given "
        "(auths in /home/u/.docker/config.json): 127.0.0.1:5000 answered 403 to POST "
        "/v2/p/r/app/blobs/uploads/ (UNAUTHORIZED: authentication required); check that "
        "they are current and allow pulling this repository (and, at the destination, "
        "pushing to it)"
    )
    assert error.registry == "us-docker.pkg.dev"
    assert error.source == "auths in /home/u/.docker/config.json"
    assert (error.status, error.method, error.path, error.host) == (
        403,
        "POST",
        "/v2/p/r/app/blobs/uploads/",
        "127.0.0.1:5000",
    )
    assert error.codes == ("UNAUTHORIZED",)
    assert isinstance(error, Unauthorized)
    assert not is_retryable(error)


@pytest.mark.parametrize("kind", [NoCredentials, CredentialsRefused])
def test_without_an_answer_only_what_and_remedy(kind: type[Unauthorized]) -> None:
    extra = {"searched": "looked in x"} if kind is NoCredentials else {"source": "y"}
    error = kind("manifest a/b:1", registry="quay.io", **extra)  # type: ignore[call-arg]
    assert str(error) == f"manifest a/b:1; {kind.remedy}"
    assert error.status is None and error.codes == ()


# -- whole messages, as a person reads them -------------------------------------------------

UNAUTHORIZED_REMEDY = (
    "check the credentials for this registry (Docker config auths, or Google "
    "application default credentials for Artifact Registry)"
)
PATH = "/v2/team/app/manifests/1"


def _answer(
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    url: str = f"https://registry.test{PATH}?_state=UPLOADSTATE",
) -> httpx.Response:
    request = httpx.Request("GET", url)
    return httpx.Response(status, content=body, headers=headers or {}, request=request)


def _oci(*entries: tuple[str, str]) -> bytes:
    return json.dumps({"errors": [{"code": c, "message": m} for c, m in entries]}).encode()


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "message", "retry_after"),
    [
        (404, _oci(("MANIFEST_UNKNOWN", "manifest unknown")), {}, NotFound,
         f"not found on registry.test to GET {PATH} (MANIFEST_UNKNOWN: manifest unknown)", None),
        (401, b"", {}, Unauthorized,
         f"registry.test refused access (401) to GET {PATH}; {UNAUTHORIZED_REMEDY}", None),
        (403, _oci(("DENIED", "no")), {}, Unauthorized,
         f"registry.test refused access (403) to GET {PATH} (DENIED: no); {UNAUTHORIZED_REMEDY}",
         None),
        (429, b"", {"Retry-After": "7"}, RateLimited,
         f"registry.test is rate limiting (429) to GET {PATH}", 7.0),
        # 503 may say when to come back; a 502's Retry-After means nothing (RFC 9110).
        (503, b"", {"Retry-After": "30"}, TransientError,
         f"registry.test answered 503 to GET {PATH}", 30.0),
        (502, b"", {"Retry-After": "30"}, TransientError,
         f"registry.test answered 502 to GET {PATH}", None),
        (504, b"", {"Retry-After": "30"}, TransientError,
         f"registry.test answered 504 to GET {PATH}", None),
        (500, _oci(("UNKNOWN", "")), {}, TransientError,
         f"registry.test answered 500 to GET {PATH} (UNKNOWN)", None),
        (400, _oci(("A", "1"), ("B", "2"), ("C", "3"), ("D", "4")), {}, PermanentError,
         f"registry.test answered 400 to GET {PATH} (A: 1; B: 2; C: 3)", None),
        (418, b"", {}, PermanentError, f"registry.test answered 418 to GET {PATH}", None),
    ],
)  # fmt: skip
def test_error_for_whole_messages(
    status: int,
    body: bytes,
    headers: dict[str, str],
    kind: type[RegistryError],
    message: str,
    retry_after: float | None,
) -> None:
    error = error_for(_answer(status, body, headers), "manifest q/a:1")
    assert type(error) is kind
    assert str(error) == f"manifest q/a:1: {message}"
    assert error.retry_after == retry_after


def test_a_message_says_only_what_it_knows() -> None:
    assert str(RegistryError("digest x")) == "digest x"
    assert str(RegistryError("x", status=500)) == "x"  # no host: no "who answered"
    assert str(RegistryError("x", status=500, host="h")) == "x: h answered 500"
    assert str(RegistryError("x", status=500, host="h", method="GET")) == "x: h answered 500"
    assert str(RegistryError("x", status=500, host="h", path="/v2/")) == "x: h answered 500"
    assert str(RegistryError("x", errors=[OciError("DENIED")])) == "x (DENIED)"
    assert str(OciError("DENIED", "no")) == "DENIED: no"


def test_rate_limited_defaults() -> None:
    error = RateLimited("x", host="h", method="GET", path="/v2/")
    assert (error.status, error.retry_after) == (429, None)
    assert str(error) == "x: h is rate limiting (429) to GET /v2/"
    error = RateLimited("x", retry_after=3.0, status=None, errors=[OciError("TOOMANYREQUESTS")])
    assert (error.status, error.retry_after, error.codes) == (None, 3.0, ("TOOMANYREQUESTS",))
    assert str(error) == "x (TOOMANYREQUESTS)"
    assert is_retryable(error)


def test_oci_errors_are_bounded_and_checked() -> None:
    long_code = "A" * 64
    assert oci_errors(_oci((long_code, "m")))[0].code == long_code
    assert oci_errors(_oci((long_code + "B", "m")))[0].code == "UNKNOWN"
    assert oci_errors(_oci(("lowercase", "m")))[0].code == "UNKNOWN"
    assert oci_errors(_oci(("9LIVES", "m")))[0].code == "UNKNOWN"
    assert oci_errors(_oci(("BLOB_UNKNOWN_2", "m")))[0].code == "BLOB_UNKNOWN_2"
    assert oci_errors(_oci(("DENIED", "x" * 500)))[0].message == "x" * 199 + "…"
    # Entries that are not objects are skipped but count towards the three kept.
    body = json.dumps({"errors": [1, {"code": "A"}, 2, {"code": "B"}]}).encode()
    assert oci_errors(body) == (OciError("A"),)
    # The body is read up to 64 KiB: a document that needs more is not an error list.
    small = _oci(("DENIED", "y"))
    padding = b" " * (MAX_ERROR_BODY - len(small))
    assert oci_errors(padding + small) == (OciError("DENIED", "y"),)
    assert oci_errors(b" " + padding + small) == ()  # its last byte is past the cap
    assert oci_errors(b"[" * 10_000) == ()


def test_paths_and_hosts_in_messages_are_bounded() -> None:
    long_path = "/v2/" + "a" * 300 + "/manifests/1"
    assert request_path(httpx.URL(f"https://r.test{long_path}?q=1")) == long_path[:199] + "…"
    error = error_for(_answer(404, url=f"https://{'h' * 150}.test/v2/x/manifests/1"), "m")
    assert error.host == "h" * 99 + "…"


def test_a_broken_connection_is_named_by_type_and_scrubbed() -> None:
    error = transport_error("blob x", ConnectionResetError("reset by peer token=abc"))
    assert str(error) == "blob x: ConnectionResetError: reset by peer token=REDACTED"
    assert error.status is None and is_retryable(error)


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (TransientError("x", status=500), True),
        (TransientError("x", status=501), False),
        (TransientError("x", status=505), False),
        (TransientError("x", status=504), True),
        (TransientError("x"), True),
        (RateLimited("x", status=403), True),
        (PermanentError("x", status=500), False),
        (NotFound("x", status=404), False),
    ],
)
def test_is_retryable(error: RegistryError, retried: bool) -> None:
    assert is_retryable(error) is retried
