"""Tokens earned ahead of a request, headers for the blob transfer threads, and what the
auth flow does with a token server's answer.

The transfer threads send PATCH and PUT requests outside httpx's auth flow, with the
header :meth:`RegistryAuth.header_for` gives after :meth:`RegistryAuth.earn` fetched it.
Those run against the real docker-registry behind the real token server, and against the
htpasswd registry, each seen through the fault proxy.  A token server that answers
nonsense cannot be made from the real one (it always issues a good token), so those cases
use a small registry on 127.0.0.1 whose token endpoint answers what the test says.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from armirror.registry.auth import RegistryAuth
from armirror.registry.errors import HostRefused, MalformedAnswer
from armirror.registry.redact import scrub
from faultproxy import FaultProxy
from registry_checks import unique
from standins.registry import Registry
from standins.token_server import TokenServer

CREDENTIAL = ("armirror", "s3cret")
ONE_MIB = 1024 * 1024  # the most of a token answer that is read


@pytest.fixture
def token_proxy(token_registry: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(token_registry.url, rewrite_location=True) as proxy:
        yield proxy


@pytest.fixture
def htpasswd_proxy(htpasswd_registry: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(htpasswd_registry.url, rewrite_location=True) as proxy:
        yield proxy


def test_a_token_is_earned_for_the_transfer_threads_once_the_registry_challenged(
    token_registry: Registry, token_proxy: FaultProxy
) -> None:
    server: TokenServer = token_registry.extras[0]  # type: ignore[assignment]
    repository = unique("library/earn")
    other = unique("library/other")

    async def main() -> None:
        auth = RegistryAuth(lambda: CREDENTIAL)
        async with httpx.AsyncClient(base_url=token_proxy.url, auth=auth) as client:
            started = await client.post(f"/v2/{repository}/blobs/uploads/", auth=None)
            assert started.status_code == 401  # no auth flow: the bare challenge
            location = httpx.URL(f"{token_proxy.url}/v2/{repository}/blobs/uploads/x")
            # Nothing challenged this auth yet: nothing to earn, no header to give.
            await auth.earn(client, "PATCH", location)
            assert auth.token_requests == 0 and not auth.challenged
            assert auth.header_for("PATCH", location) is None

            head = await client.head(f"/v2/{repository}/manifests/1")
            assert head.status_code == 404 and auth.challenged
            assert auth.token_requests == 1
            before = len(server.requests)
            started = await client.post(f"/v2/{repository}/blobs/uploads/")
            assert started.status_code == 202
            assert auth.token_requests == 2  # pull,push, fetched before the POST went out
            upload = httpx.URL(started.headers["Location"])
            await auth.earn(client, "PATCH", upload)
            assert auth.token_requests == 2  # that token serves the PATCH too
            header = auth.header_for("PATCH", upload)
            assert header is not None and header.startswith("Bearer ")
            assert server.requests[before:] == [
                {
                    "service": [server.service],
                    "scope": [f"repository:{repository}:pull,push"],
                }
            ]
            # The header is what the registry wants for the upload, sent outside the flow.
            patched = await client.patch(
                upload, content=b"abc", headers={"Authorization": header}, auth=None
            )
            assert patched.status_code == 202

            # Another repository's upload has no token yet; earning one asks once.
            elsewhere = httpx.URL(f"{token_proxy.url}/v2/{other}/blobs/uploads/y")
            assert auth.header_for("PATCH", elsewhere) is None
            await auth.earn(client, "PATCH", elsewhere)
            await auth.earn(client, "PATCH", elsewhere)
            assert auth.token_requests == 3
            assert server.requests[-1]["scope"] == [f"repository:{other}:pull,push"]
            assert auth.header_for("PATCH", elsewhere) not in (None, header)
            # A pull for it is another scope set.
            assert (
                auth.header_for("GET", httpx.URL(f"{token_proxy.url}/v2/{other}/blobs/d")) is None
            )
            # Requests outside a repository need no token.
            await auth.earn(client, "GET", httpx.URL(f"{token_proxy.url}/v2/"))
            assert auth.token_requests == 3
            assert auth.header_for("GET", httpx.URL(f"{token_proxy.url}/v2/")) is None

    asyncio.run(main())


def test_a_mount_asks_for_both_repositories_in_one_token(
    token_registry: Registry, token_proxy: FaultProxy
) -> None:
    server: TokenServer = token_registry.extras[0]  # type: ignore[assignment]
    source, target = unique("library/from"), unique("library/to")

    async def main() -> None:
        auth = RegistryAuth(lambda: CREDENTIAL)
        async with httpx.AsyncClient(base_url=token_proxy.url, auth=auth) as client:
            before = len(server.requests)
            digest = "sha256:" + "0" * 64
            mounted = await client.post(
                f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source}
            )
            assert mounted.status_code == 202  # nothing to mount: an upload starts instead
            # One token for both; the registry's own challenge names the target's scope
            # again, its actions in either order (distribution keeps them in a map).
            (asked,) = [r["scope"] for r in server.requests[before:]]
            assert asked[:2] == [f"repository:{target}:pull,push", f"repository:{source}:pull"]
            assert asked[2:] in ([], [f"repository:{target}:push,pull"])

    asyncio.run(main())


def test_basic_credentials_are_the_header_once_the_registry_asked_for_them(
    htpasswd_proxy: FaultProxy,
) -> None:
    repository = unique("library/basic")
    expected = "Basic " + base64.b64encode(b"armirror:s3cret").decode()

    async def main() -> None:
        auth = RegistryAuth(lambda: CREDENTIAL)
        async with httpx.AsyncClient(base_url=htpasswd_proxy.url, auth=auth) as client:
            location = httpx.URL(f"{htpasswd_proxy.url}/v2/{repository}/blobs/uploads/x")
            assert auth.header_for("PATCH", location) is None
            assert (await client.head(f"/v2/{repository}/manifests/1")).status_code == 404
            assert auth.challenged
            await auth.earn(client, "PATCH", location)  # nothing to earn with Basic
            assert auth.token_requests == 0
            assert auth.header_for("PATCH", location) == expected
            assert auth.header_for("GET", httpx.URL(f"{htpasswd_proxy.url}/v2/")) == expected
            started = await client.post(f"/v2/{repository}/blobs/uploads/")
            assert started.status_code == 202
        assert [a for _, _, a in htpasswd_proxy.authorizations] == [None, expected, expected]

    asyncio.run(main())


def test_refused_basic_credentials_are_sent_once_per_request(htpasswd_proxy: FaultProxy) -> None:
    repository = unique("library/refused")
    wrong = "Basic " + base64.b64encode(b"armirror:wrong").decode()

    async def main() -> list[int]:
        auth = RegistryAuth(lambda: ("armirror", "wrong"))
        async with httpx.AsyncClient(base_url=htpasswd_proxy.url, auth=auth) as client:
            first = await client.head(f"/v2/{repository}/manifests/1")
            second = await client.head(f"/v2/{repository}/manifests/1")
        return [first.status_code, second.status_code]

    assert asyncio.run(main()) == [401, 401]
    assert [a for _, _, a in htpasswd_proxy.authorizations] == [None, wrong, wrong]


def test_no_credential_means_no_basic_header() -> None:
    auth = RegistryAuth(lambda: None)
    assert auth.header_for("GET", httpx.URL("http://127.0.0.1:1/v2/x/blobs/d")) is None


# -- a token endpoint that answers what the test says --------------------------------------


class _Realm:
    """A registry on 127.0.0.1 with a Bearer realm on itself: ``/v2/…`` wants
    ``Bearer good-token`` and challenges otherwise; ``/token`` answers ``answer``."""

    GOOD = "good-token"

    def __init__(self) -> None:
        self.answer: tuple[int, bytes] = (200, json.dumps({"token": self.GOOD}).encode())
        self.token_requests: list[dict[str, list[str]]] = []
        #: (path, Authorization header or None) of every request to /v2/.
        self.registry_requests: list[tuple[str, str | None]] = []
        self.realm_suffix = ""
        #: The WWW-Authenticate header of a 401 when set ("" for none); else a Bearer realm.
        self.challenge: str | None = None
        realm = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    # A client may stop reading an answer over its limit.
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(body)

            def _drain(self) -> None:
                """Read a request body (sized or chunked), so the connection stays usable."""
                if "chunked" in self.headers.get("Transfer-Encoding", ""):
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        self.rfile.read(size + 2)
                    self.rfile.readline()
                elif length := int(self.headers.get("Content-Length") or 0):
                    self.rfile.read(length)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/token":
                    realm.token_requests.append(parse_qs(url.query))
                    status, body = realm.answer
                    self._send(status, body, {"Content-Type": "application/json"})
                    return
                realm.registry_requests.append((url.path, self.headers.get("Authorization")))
                self._drain()
                if self.headers.get("Authorization") == f"Bearer {realm.GOOD}":
                    self._send(404, b"", {})
                else:
                    challenge = realm.challenge
                    if challenge is None:
                        challenge = (
                            f'Bearer realm="{realm.url}/token{realm.realm_suffix}",service="svc"'
                        )
                    self._send(401, b"", {"WWW-Authenticate": challenge} if challenge else {})

            do_HEAD = do_PUT = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def realm() -> Iterator[_Realm]:
    server = _Realm()
    yield server
    server.stop()


def _head(url: str, auth: RegistryAuth) -> int:
    async def main() -> int:
        async with httpx.AsyncClient(base_url=url, auth=auth) as client:
            return (await client.head("/v2/team/app/manifests/1")).status_code

    return asyncio.run(main())


def test_an_access_token_answer_is_used(realm: _Realm) -> None:
    realm.answer = (200, json.dumps({"access_token": realm.GOOD, "expires_in": 300}).encode())
    auth = RegistryAuth(lambda: None)
    assert _head(realm.url, auth) == 404
    assert realm.token_requests == [{"service": ["svc"], "scope": ["repository:team/app:pull"]}]
    assert auth.header_for("HEAD", httpx.URL(f"{realm.url}/v2/team/app/manifests/2")) == (
        f"Bearer {realm.GOOD}"
    )


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ((200, b"<html>token: leaked-value</html>"), "answered something that is not JSON"),
        ((200, b'["leaked-value"]'), "answered JSON that is not an object"),
        ((200, b'{"token": "two words"}'), "answered no usable token"),
        ((200, b'{"token": "ctl\\u0001char"}'), "answered no usable token"),
        ((200, b'{"token": 12345678}'), "answered no usable token"),
        ((200, b'{"token": ""}'), "answered no usable token"),
        ((200, json.dumps({"token": "x" * 65537}).encode()), "answered no usable token"),
    ],
)
def test_a_token_answer_that_is_no_token_is_refused_without_quoting_it(
    realm: _Realm, answer: tuple[int, bytes], problem: str
) -> None:
    realm.answer = answer
    host = realm.url.removeprefix("http://")
    with pytest.raises(MalformedAnswer) as refused:
        _head(realm.url, RegistryAuth(lambda: None))
    assert str(refused.value) == f"token server {host} {problem}"
    assert "leaked" not in str(refused.value)


def test_the_longest_token_is_accepted(realm: _Realm) -> None:
    long_token = "t" * 65536
    realm.answer = (200, json.dumps({"token": long_token}).encode())
    auth = RegistryAuth(lambda: None)
    # http.server refuses a 64 KiB header line (431); what matters is the token was kept.
    assert _head(realm.url, auth) == 431
    assert auth.header_for("HEAD", httpx.URL(f"{realm.url}/v2/team/app/manifests/1")) == (
        f"Bearer {long_token}"
    )


@pytest.mark.parametrize("status", [401, 403, 503, 201])
def test_a_refusing_token_server_is_an_http_error_naming_it(realm: _Realm, status: int) -> None:
    """The session maps it (error_for) to NoCredentials, CredentialsRefused or a retry."""
    realm.answer = (status, json.dumps({"token": "leaked-value", "details": "no"}).encode())
    host = realm.url.removeprefix("http://")
    with pytest.raises(httpx.HTTPStatusError) as refused:
        _head(realm.url, RegistryAuth(lambda: CREDENTIAL))
    assert str(refused.value) == f"token server {host} answered {status}"
    assert refused.value.response.status_code == status


def test_a_realm_the_guard_refuses_is_never_asked(realm: _Realm) -> None:
    realm.realm_suffix = "?session=hidden-value"
    asked: list[str] = []

    def problem(url: str) -> str | None:
        asked.append(url)
        return "it is a private address"

    with pytest.raises(HostRefused) as refused:
        _head(realm.url, RegistryAuth(lambda: CREDENTIAL, realm_problem=problem))
    assert str(refused.value) == (f"token realm {realm.url}/token refused: it is a private address")
    assert asked == [f"{realm.url}/token?session=hidden-value"]
    assert realm.token_requests == []


def test_a_realm_the_guard_allows_is_asked(realm: _Realm) -> None:
    auth = RegistryAuth(lambda: None, realm_problem=lambda url: None)
    assert _head(realm.url, auth) == 404
    assert len(realm.token_requests) == 1 and auth.token_requests == 1


def _padded_token_answer(token: str, size: int) -> bytes:
    body = json.dumps({"token": token}).encode()
    return b" " * (size - len(body)) + body


def test_a_token_answer_is_read_up_to_one_mebibyte(realm: _Realm) -> None:
    realm.answer = (200, _padded_token_answer(realm.GOOD, ONE_MIB))
    auth = RegistryAuth(lambda: None)
    assert _head(realm.url, auth) == 404

    async def earn(url: httpx.URL) -> None:
        async with httpx.AsyncClient() as client:
            await auth.earn(client, "PATCH", url)

    upload = httpx.URL(f"{realm.url}/v2/team/app/blobs/uploads/1")
    asyncio.run(earn(upload))
    assert auth.header_for("PATCH", upload) == f"Bearer {realm.GOOD}"

    realm.answer = (200, _padded_token_answer(realm.GOOD, ONE_MIB + 1))
    other = httpx.URL(f"{realm.url}/v2/team/other/blobs/uploads/1")
    with pytest.raises(MalformedAnswer, match=f"over {ONE_MIB}"):
        asyncio.run(earn(other))
    assert auth.header_for("PATCH", other) is None
    with pytest.raises(MalformedAnswer, match=f"over {ONE_MIB}"):
        _head(realm.url, RegistryAuth(lambda: None))


def test_a_token_received_is_never_repeated_in_a_message(realm: _Realm) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    realm.answer = (200, json.dumps({"token": token}).encode())
    _head(realm.url, RegistryAuth(lambda: None))
    assert scrub(f"the registry said {token} back") == "the registry said REDACTED back"


def test_a_token_that_is_not_kept_still_serves_the_request_it_was_fetched_for(
    realm: _Realm,
) -> None:
    """A token server that gives no lifetime to keep a token for (expires_in <= 0): the
    token fetched before a request goes with that request, so it is not sent without one
    first (which a streamed upload body could not survive)."""
    realm.answer = (200, json.dumps({"token": realm.GOOD, "expires_in": -5}).encode())
    auth = RegistryAuth(lambda: None)

    async def main() -> list[int]:
        async with httpx.AsyncClient(base_url=realm.url, auth=auth) as client:
            first = await client.head("/v2/team/app/manifests/1")  # challenged, then a token
            chunks = [b"abc", b"def"]

            async def body() -> AsyncIterator[bytes]:
                for chunk in chunks:
                    yield chunk

            second = await client.put("/v2/team/app/manifests/2", content=body())
            return [first.status_code, second.status_code]

    assert asyncio.run(main()) == [404, 404]
    assert len(realm.token_requests) == 2  # one for each request, none wasted
    assert [a for _, a in realm.registry_requests] == [
        None,
        f"Bearer {realm.GOOD}",
        f"Bearer {realm.GOOD}",
    ]


def test_a_token_that_is_not_kept_is_still_handed_to_the_transfer_threads(realm: _Realm) -> None:
    """expires_in < 0: a token earned for a transfer thread (earn, then header_for) goes
    with that thread's request, as the auth flow's own requests do; without it the
    thread sent none, and a registry that wants a token refused the blob."""
    realm.answer = (200, json.dumps({"token": realm.GOOD, "expires_in": -5}).encode())
    auth = RegistryAuth(lambda: None)
    assert _head(realm.url, auth) == 404  # the challenge names the realm
    upload = httpx.URL(f"{realm.url}/v2/team/app/blobs/uploads/1")

    async def earn() -> None:
        async with httpx.AsyncClient() as client:
            await auth.earn(client, "PATCH", upload)

    asyncio.run(earn())
    assert auth.header_for("PATCH", upload) == f"Bearer {realm.GOOD}"
    asyncio.run(earn())  # never reused by the flow: each thread's request earns its own
    assert len(realm.token_requests) == 3


@pytest.mark.parametrize("challenge", ["", 'Bearer service="svc"', "Negotiate", 'Bearer realm=""'])
def test_a_401_without_a_usable_challenge_is_the_answer(realm: _Realm, challenge: str) -> None:
    realm.challenge = challenge
    auth = RegistryAuth(lambda: CREDENTIAL)
    assert _head(realm.url, auth) == 401
    assert _head(realm.url, auth) == 401
    assert realm.token_requests == [] and auth.token_requests == 0
    assert not auth.challenged
    assert [a for _, a in realm.registry_requests] == [None, None]  # nothing was retried


def test_the_challenge_scopes_are_added_once(realm: _Realm) -> None:
    realm.challenge = (
        f'Bearer realm="{realm.url}/token",'
        'scope="repository:team/app:pull repository:extra/x:pull  repository:team/app:pull"'
    )
    assert _head(realm.url, RegistryAuth(lambda: None)) == 404
    # No service named: none asked for.
    assert realm.token_requests == [
        {"scope": ["repository:team/app:pull", "repository:extra/x:pull"]}
    ]
