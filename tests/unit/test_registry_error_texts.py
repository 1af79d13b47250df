"""The two kinds of "access refused" say different things to fix: no credentials were found
(and where armirror looked), or the ones sent were refused (and where they came from).
Both keep the answer's details for decisions and never show a credential."""

from __future__ import annotations

import pytest
from armirror.registry.errors import (
    CredentialsRefused,
    NoCredentials,
    OciError,
    PermanentError,
    Unauthorized,
    is_retryable,
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
