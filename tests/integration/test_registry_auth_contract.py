"""What RegistryAuth promises on the wire: one token fetch per scope set however many
ask at once, token answers read no further than their cap, a refused or expired token
never sent or handed out again, credentials and tokens never repeated in a message, and
messages that name a realm or a token server cut to their bound.

The real docker-registry behind the real token server (or htpasswd) plays the registry
wherever it can show the behaviour.  Where a registry or token server has to misbehave
(refuse a token it accepted before, stream an endless answer, challenge the token request
itself), a small registry on 127.0.0.1 answers what the test says.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from armirror.reference import destination_for, parse
from armirror.registry import Copier, RegistryClient
from armirror.registry.auth import MAX_TOKEN_BODY, RegistryAuth
from armirror.registry.credentials import Credential
from armirror.registry.errors import CredentialsRefused, HostRefused, MalformedAnswer
from armirror.registry.redact import REDACTED, scrub
from armirror.registry.resumable import MemoryUploadSessions
from registry_checks import credentials, fast_retry, unique
from standins import images
from standins.registry import Registry, start_registry
from standins.token_server import TokenServer

CREDENTIAL = Credential("armirror", "s3cret", "the test")


class _Registry:
    """A registry on 127.0.0.1 whose ``/v2/…`` wants ``Bearer <accepted>`` and otherwise
    challenges with a Bearer realm on itself (``/token``), which answers ``answer``.

    It also serves as an HTTP proxy: a request in absolute form (``GET http://name/…``)
    is answered here as if this server were ``name``, so a test can give the registry and
    its realm any host name without a resolver.
    """

    def __init__(self) -> None:
        self.accepted = "token-one"
        #: (status, headers, body) of ``/token``.
        self.answer: tuple[int, dict[str, str], bytes] = (200, {}, self._token(self.accepted))
        #: When set, ``/token`` streams this many bytes, chunked, instead of ``answer``.
        self.stream_bytes = 0
        self.streamed = 0  # how many of them were written before the client hung up
        self.stream_done = threading.Event()
        self.realm = ""  # the realm in the challenge; default: this server's /token
        #: (netloc, path, Authorization header or None) of every request.
        self.requests: list[tuple[str, str, str | None]] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        self.wfile.write(body)

            def _stream(self, size: int) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b" " * 65536
                frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
                try:
                    while registry.streamed < size:
                        self.wfile.write(frame)
                        registry.streamed += len(chunk)
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    registry.stream_done.set()
                    self.close_connection = True

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                netloc = url.netloc or self.headers.get("Host", "")
                authorization = self.headers.get("Authorization")
                registry.requests.append((netloc, url.path, authorization))
                if url.path == "/token":
                    if registry.stream_bytes:
                        self._stream(registry.stream_bytes)
                    else:
                        self._send(*registry.answer)
                elif url.path.startswith("/v2/"):
                    if authorization == f"Bearer {registry.accepted}":
                        self._send(404, {}, b"")
                        return
                    realm = registry.realm or f"http://{netloc}/token"
                    challenge = f'Bearer realm="{realm}",service="svc"'
                    self._send(401, {"WWW-Authenticate": challenge}, b"")
                else:
                    self._send(404, {}, b"")

            do_HEAD = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self.url = f"http://{self.host}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @staticmethod
    def _token(token: str, expires_in: int = 300) -> bytes:
        return json.dumps({"token": token, "expires_in": expires_in}).encode()

    def issue(self, token: str, expires_in: int = 300) -> None:
        """Accept only ``token`` from now on, and have /token give it out."""
        self.accepted = token
        self.answer = (200, {}, self._token(token, expires_in))

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.requests]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def registry() -> Iterator[_Registry]:
    server = _Registry()
    yield server
    server.stop()


# -- one token fetch per scope set, however many ask at once -----------------------------


def test_concurrent_earns_for_one_scope_set_fetch_one_token(token_registry: Registry) -> None:
    server = token_registry.extras[0]
    assert isinstance(server, TokenServer)
    repository = unique("library/together")

    async def main() -> None:
        auth = RegistryAuth(lambda: CREDENTIAL)
        async with httpx.AsyncClient(base_url=token_registry.url, auth=auth) as client:
            assert (await client.head(f"/v2/{repository}/manifests/1")).status_code == 404
            before = len(server.requests)
            upload = httpx.URL(f"{token_registry.url}/v2/{repository}/blobs/uploads/x")
            # Eight transfer threads earning the push token for the same upload at once.
            await asyncio.gather(*(auth.earn(client, "PATCH", upload) for _ in range(8)))
            assert [r["scope"] for r in server.requests[before:]] == [
                [f"repository:{repository}:pull,push"]
            ]
            assert auth.header_for("PATCH", upload) is not None

    asyncio.run(main())


def test_an_earn_while_a_request_fetches_the_same_token_waits_for_it(
    token_registry: Registry,
) -> None:
    """The auth flow and a transfer thread's earn share one lock per scope set: the
    token the flow is fetching is the one the earn then finds, not a second fetch."""
    server = token_registry.extras[0]
    assert isinstance(server, TokenServer)
    first, second = unique("library/first"), unique("library/second")

    async def main() -> None:
        auth = RegistryAuth(lambda: CREDENTIAL)
        async with httpx.AsyncClient(base_url=token_registry.url, auth=auth) as client:
            # Challenged once, so the realm is known and tokens are fetched up front.
            assert (await client.head(f"/v2/{first}/manifests/1")).status_code == 404
            before = len(server.requests)
            upload = httpx.URL(f"{token_registry.url}/v2/{second}/blobs/uploads/x")
            started, _ = await asyncio.gather(
                client.post(f"/v2/{second}/blobs/uploads/"),
                auth.earn(client, "PATCH", upload),
            )
            assert started.status_code == 202
            assert [r["scope"] for r in server.requests[before:]] == [
                [f"repository:{second}:pull,push"]
            ]

    asyncio.run(main())


# -- a token answer is read no further than its cap ---------------------------------------


def test_an_endless_token_answer_is_not_read_past_its_cap(registry: _Registry) -> None:
    """A token server that streams without end (no Content-Length) is cut off after the
    1 MiB cap: the transfer thread's earn reads no more of it than the auth flow does."""
    auth = RegistryAuth(lambda: None)

    async def main() -> None:
        async with httpx.AsyncClient(base_url=registry.url, auth=auth) as client:
            assert (await client.head("/v2/team/app/manifests/1")).status_code == 404
            registry.stream_bytes = 64 * MAX_TOKEN_BODY
            upload = httpx.URL(f"{registry.url}/v2/team/app/blobs/uploads/1")
            with pytest.raises(MalformedAnswer, match=f"more than {MAX_TOKEN_BODY} bytes"):
                await auth.earn(client, "PATCH", upload)

    asyncio.run(main())
    assert registry.stream_done.wait(30)
    # What the kernel's socket buffers held is all that went past the cap.
    assert registry.streamed < 32 * MAX_TOKEN_BODY


def test_a_token_servers_own_challenge_is_not_followed(registry: _Registry) -> None:
    """The token request is sent outside the registry's auth flow: a token server that
    answers it with a Bearer challenge of its own is a refusal, not a new realm to ask."""
    auth = RegistryAuth(lambda: CREDENTIAL)

    async def main() -> None:
        async with httpx.AsyncClient(base_url=registry.url, auth=auth) as client:
            assert (await client.head("/v2/team/app/manifests/1")).status_code == 404
            other = f"{registry.url}/elsewhere"
            registry.answer = (401, {"WWW-Authenticate": f'Bearer realm="{other}"'}, b"")
            upload = httpx.URL(f"{registry.url}/v2/team/app/blobs/uploads/1")
            with pytest.raises(httpx.HTTPStatusError) as refused:
                await auth.earn(client, "PATCH", upload)
            assert refused.value.response.status_code == 401
            registry.issue("token-two")
            await auth.earn(client, "PATCH", upload)
            assert auth.header_for("PATCH", upload) == "Bearer token-two"

    asyncio.run(main())
    assert registry.paths() == [
        "/v2/team/app/manifests/1",
        "/token",
        "/v2/team/app/manifests/1",
        "/token",  # refused, with a challenge that is not followed
        "/token",  # the next earn asks the registry's realm again
    ]


# -- a refused or expired token is not used again ----------------------------------------


def test_a_refused_token_is_not_sent_again_after_its_replacement_was_not_kept(
    registry: _Registry,
) -> None:
    """The registry stops accepting a cached token; the token fetched instead comes
    with no lifetime to keep it for (expires_in -1).  The refused one is dropped: the
    next request fetches its own token rather than sending the refused one again (a
    streamed upload could not be sent a second time)."""
    auth = RegistryAuth(lambda: None)

    async def main() -> None:
        async with httpx.AsyncClient(base_url=registry.url, auth=auth) as client:
            path = "/v2/team/app/manifests/1"
            assert (await client.head(path)).status_code == 404  # token-one, kept 300 s
            registry.issue("token-two", expires_in=-1)
            # token-one refused; token-two fetched and used, but not kept
            assert (await client.head(path)).status_code == 404
            before = len(registry.requests)
            assert (await client.head(path)).status_code == 404
            assert registry.requests[before:] == [
                (registry.host, "/token", None),
                (registry.host, path, "Bearer token-two"),
            ]

    asyncio.run(main())


@pytest.fixture(scope="module")
def one_second_token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("one-second-token-registry")
    server = TokenServer(root / "token", anonymous_pull=True, lifetime=1)
    with start_registry(root, auth="token", token_server=server) as started:
        yield started


def test_a_short_lived_token_is_not_handed_out_after_it_expired(
    one_second_token_registry: Registry,
) -> None:
    """A token that lives 1 s is kept for 0.75 s; after that a transfer thread is given
    no header (it earns a new token) rather than the one the request before it used."""
    url = one_second_token_registry.url
    repository = unique("library/brief")
    manifest = httpx.URL(f"{url}/v2/{repository}/manifests/2")

    async def main() -> None:
        auth = RegistryAuth(lambda: CREDENTIAL)
        async with httpx.AsyncClient(base_url=url, auth=auth) as client:
            assert (await client.head(f"/v2/{repository}/manifests/1")).status_code == 404
            assert auth.token_requests == 1
            kept_until = time.monotonic() + 0.75  # at the latest
            while time.monotonic() <= kept_until:  # wait for the expiry, not a guess
                await asyncio.sleep(kept_until - time.monotonic() + 0.01)
            assert auth.header_for("HEAD", manifest) is None
            await auth.earn(client, "HEAD", manifest)
            assert auth.token_requests == 2
            header = auth.header_for("HEAD", manifest)
            assert header is not None and header.startswith("Bearer ")

    asyncio.run(main())


# -- what messages show --------------------------------------------------------------------


def test_a_refused_realm_is_named_cut_to_120_characters(registry: _Registry) -> None:
    registry.realm = f"{registry.url}/{'r' * 300}"
    auth = RegistryAuth(lambda: CREDENTIAL, realm_problem=lambda url: "it is a private address")

    async def main() -> None:
        async with httpx.AsyncClient(base_url=registry.url, auth=auth) as client:
            with pytest.raises(HostRefused) as refused:
                await client.head("/v2/team/app/manifests/1")
            shown = registry.realm[:119] + "…"
            assert str(refused.value) == f"token realm {shown} refused: it is a private address"

    asyncio.run(main())
    assert "/token" not in registry.paths() and len(registry.requests) == 1


def test_a_token_server_is_named_cut_to_100_characters(registry: _Registry) -> None:
    """The token server's name comes from the registry's challenge; a long one is cut.
    (This server is the client's proxy, so any host name reaches it.)"""
    host = f"{'a' * 60}.{'b' * 60}.example"
    registry.answer = (200, {}, b"<html>not a token</html>")

    async def main() -> None:
        auth = RegistryAuth(lambda: None)
        async with httpx.AsyncClient(proxy=registry.url, auth=auth) as client:
            with pytest.raises(MalformedAnswer) as refused:
                await client.head(f"http://{host}/v2/team/app/manifests/1")
            assert str(refused.value) == (
                f"token server {host[:99]}… answered something that is not JSON"
            )

    asyncio.run(main())
    assert registry.requests[-1][:2] == (host, "/token")


def test_a_token_servers_refusal_reaches_the_message_with_its_errors(
    registry: _Registry,
) -> None:
    """What a refusing token server says (its OCI errors) is part of the error shown."""
    registry.answer = (
        401,
        {"Content-Type": "application/json"},
        json.dumps({"errors": [{"code": "DENIED", "message": "account locked"}]}).encode(),
    )
    store = credentials({registry.host: CREDENTIAL})

    async def main() -> None:
        async with RegistryClient(
            upstreams={"quay.io": registry.url}, credentials=store, allow_private_hosts=True
        ) as client:
            with pytest.raises(CredentialsRefused) as refused:
                await client.head_manifest(parse("quay.io/team/app:1"))
            assert "(DENIED: account locked)" in str(refused.value)

    asyncio.run(main())


@pytest.fixture(scope="module")
def private_htpasswd_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An htpasswd registry whose password no other test has sent."""
    password = f"pw-{secrets.token_hex(12)}"
    root: Path = tmp_path_factory.mktemp("private-htpasswd-registry")
    with start_registry(root, auth="htpasswd", username="owner", password=password) as started:
        yield started


def test_basic_credentials_sent_are_never_repeated_in_a_message(
    private_htpasswd_registry: Registry,
) -> None:
    """A registry may echo what it was sent (issue 12 §2): once the password went out,
    neither it nor the header's base64 form survives scrub, wherever it appears."""
    registry = private_htpasswd_registry
    assert registry.username and registry.password
    credential = Credential(registry.username, registry.password, "the test")
    encoded = base64.b64encode(f"{credential[0]}:{credential[1]}".encode()).decode()
    auth = RegistryAuth(lambda: credential)

    async def main() -> int:
        async with httpx.AsyncClient(base_url=registry.url, auth=auth) as client:
            return (await client.head(f"/v2/{unique('team/app')}/manifests/1")).status_code

    assert asyncio.run(main()) == 404  # the credentials were asked for, sent and accepted
    # Bare, with no "Basic " or "password=" before them to give them away.
    shown = scrub(f"denied: {encoded} / {credential[1]}")
    assert shown == f"denied: {REDACTED} / {REDACTED}"


def test_a_resumed_upload_whose_token_server_is_gone_is_a_failed_copy(
    source_registry: Registry,
    tmp_path_factory: pytest.TempPathFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Resuming an upload earns its push token outside the auth flow (a transfer thread
    sends the chunks).  A token server that cannot be reached then is a failed, retryable
    copy like any broken connection; copy() raised httpx.ConnectError instead."""
    root = tmp_path_factory.mktemp("vanishing-token-server")
    server = TokenServer(root / "token", anonymous_pull=True)
    with start_registry(root, auth="token", token_server=server) as dest:
        image = images.single_image(
            unique("library/resumed"), "1", seed=13511, layer_sizes=(200_000,)
        )
        images.push(source_registry.url, image)
        source = parse(f"docker.io/{image.repository}:1")
        destination = destination_for(source, f"{dest.host}/{unique('mirror')}")
        layer = next(b for b in image.blobs if b.size == 200_000)
        sessions = MemoryUploadSessions()
        sessions.save_upload_session(
            f"{dest.url}/{destination.repository}",
            layer.digest,
            f"/v2/{destination.repository}/blobs/uploads/gone?_state=x",
            4096,
        )

        async def main() -> object:
            async with RegistryClient(
                upstreams={"docker.io": source_registry.url},
                credentials=credentials({dest.host: CREDENTIAL}),
                retry=fast_retry(2),
                allow_private_hosts=True,
                resumable_min_size=100_000,
            ) as client:
                assert await client.head_manifest(destination) is None  # a pull token kept
                server.stop()  # the push token the resumed upload needs cannot be had
                return await Copier(client, sessions=sessions).copy(source, destination)

        with caplog.at_level(logging.INFO, logger="armirror.registry"):
            result = asyncio.run(asyncio.wait_for(main(), timeout=120))
    assert result.status == "failed"  # type: ignore[attr-defined]
    assert result.retryable  # type: ignore[attr-defined]
    error: str = result.error  # type: ignore[attr-defined]
    assert destination.name in error
    assert error.endswith("ConnectError: All connection attempts failed")
    # The retry the resumed upload's token request led to says which request it was.
    assert f"resume an upload to {destination.name} (token request): ConnectError" in caplog.text


def test_a_refused_token_request_on_resuming_is_a_refusal_naming_that_request(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The session's earn (a resumed upload's push token, fetched before a transfer
    thread sends the chunks) maps a token server's refusal as every request's auth flow
    does: credentials refused, naming the request and the status, never a bare httpx
    HTTPStatusError and never the password."""
    root = tmp_path_factory.mktemp("rotating-token-server")
    server = TokenServer(root / "token")
    with start_registry(root, auth="token", token_server=server) as dest:
        destination = parse(f"{dest.host}/{unique('mirror/app')}:1")
        upload = httpx.URL(f"{dest.url}/v2/{destination.repository}/blobs/uploads/some-id")

        async def main() -> None:
            async with RegistryClient(
                credentials=credentials({dest.host: CREDENTIAL}),
                retry=fast_retry(2),
                allow_private_hosts=True,
            ) as client:
                assert await client.head_manifest(destination) is None  # challenged, pulled
                server.password = "rotated-since"  # the push token cannot be had now
                await client.earn(
                    destination.registry,
                    "PATCH",
                    upload,
                    what=f"resume an upload to {destination.name}",
                )

        with pytest.raises(CredentialsRefused) as refused:
            asyncio.run(asyncio.wait_for(main(), timeout=60))
    said = str(refused.value)
    assert f"resume an upload to {destination.name} (token request)" in said
    token_host = urlsplit(server.realm).netloc
    assert (
        f"{destination.registry} refused the credentials given (explicit credentials): "
        f"{token_host} answered 401 to GET /token"
    ) in said
    assert CREDENTIAL[1] not in said
