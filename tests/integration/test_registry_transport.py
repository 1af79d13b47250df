"""The registry client's transports in this process: through a real forward proxy (the
stand-in in infra/local/standins/forward_proxy.py), and pinned to the addresses the host
guard checked.

tests/integration/test_proxy.py drives most of this through the CLI, in a child
process; here the same paths run in process, the blocking transport of the blob
threads included, so each answer a proxy can give is seen where it is turned into an
error.  DNS is the one seam: the guard's resolver is a table (nothing here can serve
DNS), and the proxy resolves ``*.corp.test`` names from its own table.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpcore
import httpx
import pytest
from armirror.reference import destination_for, parse
from armirror.registry import Copier, RegistryClient
from armirror.registry.errors import HostRefused, PermanentError
from armirror.registry.hostguard import HostGuard
from armirror.registry.pinned import (
    GuardedAsyncBackend,
    GuardedSyncBackend,
    sync_transport,
    tls_context,
)
from armirror.registry.proxied import proxy_tls_context
from armirror.registry.proxied import sync_transport as routed_sync_transport
from armirror.registry.proxies import ProxyRoutes, parse_proxy
from registry_checks import credentials, fast_retry, head_manifest, unique, verify_image
from standins import images
from standins.forward_proxy import ForwardProxy
from standins.registry import Registry, start_registry
from standins.tls import make_certificates

PLAIN = "plain.corp.test"  # the proxy's name for the plain-HTTP source registry
TLS_NAME = "registry.corp.test"  # a name only an exemption lets through unresolved
USER, PASSWORD = "transport-user", "Tr4nsport-Pass-3d"
NEEDS_CREDENTIALS = "407 Proxy Authentication Required"
LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4)


def port_of(registry: Registry) -> int:
    return int(registry.host.rsplit(":", 1)[1])


def blocking_client(guard: HostGuard, routes: ProxyRoutes) -> httpx.Client:
    """The blob threads' client: the routed synchronous transport."""
    transport = routed_sync_transport(guard, routes, verify=tls_context(), limits=LIMITS)
    return httpx.Client(transport=transport)


@pytest.fixture
def refusing_proxy() -> Iterator[str]:
    """A proxy that answers every CONNECT with 403, as one with a deny list does."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(30)

    def answer() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(30)
                request = b""
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                connection.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    # close() alone does not wake an accept() blocked in another thread on Linux (the
    # teardown then waited out the 30 s timeout); shutdown() does.
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_an_in_process_copy_goes_through_the_http_proxy(
    source_registry: Registry, dest_registry: Registry
) -> None:
    """Control requests (async) and blob bytes (the blocking threads) to the source go
    through HTTP_PROXY in absolute form; the loopback destination is spoken to directly."""
    image = images.single_image(unique("library/routed"), "1", seed=20601)
    images.push(source_registry.url, image)
    source_url = f"http://{PLAIN}:{port_of(source_registry)}"
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    with ForwardProxy(hosts={PLAIN: "127.0.0.1"}) as proxy:

        async def copy() -> str:
            async with RegistryClient(
                upstreams={"docker.io": source_url},
                credentials=credentials(),
                retry=fast_retry(),
                allow_private_hosts=True,
                proxies=ProxyRoutes(http=parse_proxy(proxy.url, "HTTP_PROXY")),
            ) as client:
                source = parse(f"{image.repository}:1")
                result = await Copier(client).copy(source, destination_for(source, prefix))
                return result.status

        status = asyncio.run(copy())
        asked = list(proxy.asked)
    assert status == "copied"
    repository = f"{prefix.split('/', 1)[1]}/docker.io/{image.repository}"
    assert head_manifest(dest_registry.url, repository, "1") == image.digest
    assert verify_image(dest_registry.url, repository, image.digest)
    assert {a.host_port for a in asked} == {f"{PLAIN}:{port_of(source_registry)}"}
    fetched = {a.target.rsplit("/", 1)[1] for a in asked if "/blobs/" in a.target}
    assert fetched == {blob.digest for blob in image.blobs}


def test_a_forwarded_request_the_proxy_refuses_for_credentials(
    source_registry: Registry,
) -> None:
    """An http:// request is forwarded: the proxy's 407 arrives as an answer, async and
    blocking alike, and is a permanent error that says where the credentials go."""
    url = f"http://{PLAIN}:{port_of(source_registry)}"
    with ForwardProxy(hosts={PLAIN: "127.0.0.1"}, credentials=(USER, PASSWORD)) as proxy:
        routes = ProxyRoutes(http=parse_proxy(proxy.url, "http_proxy"))
        expected = (
            f"the proxy {proxy.url} wants credentials it was not given or refused them "
            f"({NEEDS_CREDENTIALS}); they go in http_proxy as http://USER:PASSWORD@HOST:PORT"
        )

        async def head() -> object:
            async with RegistryClient(
                upstreams={"docker.io": url},
                credentials=credentials(),
                retry=fast_retry(),
                proxies=routes,
            ) as client:
                return await client.head_manifest(parse("docker.io/library/any:1"))

        with pytest.raises(PermanentError) as caught:
            asyncio.run(head())
        assert str(caught.value) == expected

        guard = HostGuard(exempt=[(PLAIN, port_of(source_registry))])
        with blocking_client(guard, routes) as client, pytest.raises(PermanentError) as blocked:
            client.get(f"{url}/v2/")
        assert str(blocked.value) == expected
        asked = len(proxy.asked)
    assert asked == 2  # a 407 is not retried


def test_a_tunnel_the_proxy_refuses_for_credentials() -> None:
    """An https:// request asks for a tunnel: the 407 comes back as the proxy's refusal."""
    with ForwardProxy(credentials=(USER, PASSWORD)) as proxy:
        routes = ProxyRoutes(https=parse_proxy(proxy.url, "HTTPS_PROXY"))
        guard = HostGuard(exempt=[(TLS_NAME, 5000)])
        with blocking_client(guard, routes) as client, pytest.raises(PermanentError) as caught:
            client.get(f"https://{TLS_NAME}:5000/v2/")
        asked = [(a.method, a.target) for a in proxy.asked]
    assert str(caught.value) == (
        f"the proxy {proxy.url} wants credentials it was not given or refused them "
        f"({NEEDS_CREDENTIALS}); they go in HTTPS_PROXY as http://USER:PASSWORD@HOST:PORT"
    )
    assert asked == [("CONNECT", f"{TLS_NAME}:5000")]


def test_a_long_target_is_cut_in_the_refusal(refusing_proxy: str) -> None:
    host = "a" * 60 + "." + "b" * 60 + "." + "c" * 40 + ".test"
    routes = ProxyRoutes(https=parse_proxy(refusing_proxy, "HTTPS_PROXY"))
    guard = HostGuard(exempt=[(host, 5000)])
    with blocking_client(guard, routes) as client, pytest.raises(PermanentError) as caught:
        client.get(f"https://{host}:5000/v2/")
    assert str(caught.value) == (
        f"the proxy {refusing_proxy} refused to connect to {host[:99]}…:5000 (403 Forbidden)"
    )


def test_a_tunnel_the_proxy_forbids_names_the_target(refusing_proxy: str) -> None:
    routes = ProxyRoutes(https=parse_proxy(refusing_proxy, "HTTPS_PROXY"))
    guard = HostGuard(exempt=[(TLS_NAME, 5000)])
    with blocking_client(guard, routes) as client, pytest.raises(PermanentError) as caught:
        client.get(f"https://{TLS_NAME}:5000/v2/")
    assert str(caught.value) == (
        f"the proxy {refusing_proxy} refused to connect to {TLS_NAME}:5000 (403 Forbidden)"
    )

    async def head() -> object:
        async with RegistryClient(
            upstreams={"docker.io": f"https://{TLS_NAME}:5000"},
            credentials=credentials(),
            retry=fast_retry(),
            proxies=routes,
        ) as client:
            return await client.head_manifest(parse("docker.io/library/any:1"))

    with pytest.raises(PermanentError) as refused:
        asyncio.run(head())
    assert str(refused.value) == str(caught.value)


def test_a_proxy_that_cannot_reach_the_target_is_named_as_the_one_that_answered() -> None:
    """502 from the proxy is its failure, not the registry's: a ProxyError naming it."""
    with ForwardProxy() as proxy:  # resolves nothing: every target is a 502
        routes = ProxyRoutes(https=parse_proxy(proxy.url, "HTTPS_PROXY"))
        guard = HostGuard(exempt=[(TLS_NAME, 5000)])
        with blocking_client(guard, routes) as client, pytest.raises(httpx.ProxyError) as caught:
            client.get(f"https://{TLS_NAME}:5000/v2/")
    assert str(caught.value) == f"502 Bad Gateway (from the proxy {proxy.url})"


def test_a_blocking_request_to_a_proxy_that_does_not_answer_names_it() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
        routes = ProxyRoutes(https=parse_proxy(url, "HTTPS_PROXY"))
        guard = HostGuard(exempt=[(TLS_NAME, 5000)])
        with blocking_client(guard, routes) as client, pytest.raises(httpx.ConnectError) as caught:
            client.get(f"https://{TLS_NAME}:5000/v2/")
    assert str(caught.value).endswith(f"(through the proxy {url})")


def test_a_blocking_request_that_the_judge_refuses_never_reaches_the_proxy() -> None:
    with ForwardProxy(hosts={"internal.corp.test": "127.0.0.1"}) as proxy:
        routes = ProxyRoutes(https=parse_proxy(proxy.url, "HTTPS_PROXY"))
        guard = HostGuard(resolve=lambda host, port: [])
        with blocking_client(guard, routes) as client, pytest.raises(HostRefused) as caught:
            client.get("https://internal.corp.test:5000/v2/")
        asked = list(proxy.asked)
    assert "internal.corp.test:5000 refused: it does not resolve here" in str(caught.value)
    assert asked == []


# -- pinned connections: resolved once, checked, connected to the checked address --------


def pinned_get(guard: HostGuard, url: str) -> httpx.Response:
    with httpx.Client(transport=sync_transport(guard, verify=tls_context(), limits=LIMITS)) as c:
        return c.get(url)


async def pinned_get_async(guard: HostGuard, url: str) -> httpx.Response:
    from armirror.registry.pinned import async_transport

    transport = async_transport(guard, verify=tls_context(), limits=LIMITS)
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.get(url)


def test_each_checked_address_is_tried_in_turn(source_registry: Registry) -> None:
    """The name resolves to two loopback addresses; the registry listens on the second
    only: the first refuses, the second answers, whichever transport asks."""
    table = {"twice.corp.test": ["127.0.0.3", "127.0.0.1", "127.0.0.1"]}
    guard = HostGuard(allow_private=True, resolve=lambda host, port: table.get(host, []))
    url = f"http://twice.corp.test:{port_of(source_registry)}/v2/"
    assert pinned_get(guard, url).status_code == 200
    assert asyncio.run(pinned_get_async(guard, url)).status_code == 200


def test_when_every_address_refuses_the_last_refusal_is_raised(
    source_registry: Registry,
) -> None:
    table = {"nowhere.corp.test": ["127.0.0.3", "127.0.0.4"]}
    guard = HostGuard(allow_private=True, resolve=lambda host, port: table.get(host, []))
    url = f"http://nowhere.corp.test:{port_of(source_registry)}/v2/"
    with pytest.raises(httpx.ConnectError):
        pinned_get(guard, url)
    with pytest.raises(httpx.ConnectError):
        asyncio.run(pinned_get_async(guard, url))


def test_a_name_that_does_not_resolve_is_a_connect_error_naming_it() -> None:
    guard = HostGuard(resolve=lambda host, port: [])
    with pytest.raises(httpx.ConnectError) as caught:
        pinned_get(guard, "http://gone.corp.test:5000/v2/")
    assert str(caught.value) == "gone.corp.test:5000 does not resolve"
    with pytest.raises(httpx.ConnectError) as caught_async:
        asyncio.run(pinned_get_async(guard, "http://gone.corp.test:5000/v2/"))
    assert str(caught_async.value) == "gone.corp.test:5000 does not resolve"


def test_an_exempt_endpoint_is_connected_to_by_name(source_registry: Registry) -> None:
    """An endpoint the operator named is not resolved by the guard (its resolver would
    refuse everything here), and loopback passes without allow_private."""
    guard = HostGuard(exempt=[("localhost", port_of(source_registry))], resolve=lambda h, p: [])
    url = f"http://localhost:{port_of(source_registry)}/v2/"
    assert pinned_get(guard, url).status_code == 200
    assert asyncio.run(pinned_get_async(guard, url)).status_code == 200


def test_the_backends_open_no_unix_sockets_and_sleep_as_asked() -> None:
    guard = HostGuard()
    with pytest.raises(httpcore.ConnectError) as caught:
        GuardedSyncBackend(guard).connect_unix_socket("/var/run/docker.sock")
    assert str(caught.value) == "the registry client does not use unix sockets"
    GuardedSyncBackend(guard).sleep(0)

    async def unix() -> None:
        backend = GuardedAsyncBackend(guard)
        await backend.sleep(0)
        await backend.connect_unix_socket("/var/run/docker.sock")

    with pytest.raises(httpcore.ConnectError) as caught_async:
        asyncio.run(unix())
    assert str(caught_async.value) == "the registry client does not use unix sockets"


@pytest.fixture
def proxy_ca(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Path, Path]]:
    """A CA only SSL_CERT_FILE names, as a corporate proxy's often is.  The proxies' TLS
    context is built once per process; it is rebuilt here to read this file, and again
    after, so no other test sees this CA."""
    certificates = make_certificates(tmp_path_factory.mktemp("proxy-tls"))
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates[0]))
    proxy_tls_context.cache_clear()
    yield certificates
    proxy_tls_context.cache_clear()


def test_an_https_proxy_with_credentials_trusted_through_ssl_cert_file(
    source_registry: Registry, proxy_ca: tuple[Path, Path, Path]
) -> None:
    """HTTP_PROXY=https://USER:PASSWORD@…: the proxy's certificate is checked against
    SSL_CERT_FILE (not only certifi's bundle) and the credentials reach it, from the
    async client and the blob threads' blocking one alike."""
    url = f"http://{PLAIN}:{port_of(source_registry)}"
    with ForwardProxy(
        hosts={PLAIN: "127.0.0.1"}, credentials=(USER, PASSWORD), tls=proxy_ca[1:]
    ) as proxy:
        assert proxy.url.startswith("https://")
        routes = ProxyRoutes(http=parse_proxy(proxy.url_with(USER, PASSWORD), "HTTP_PROXY"))

        async def ping() -> int:
            async with RegistryClient(
                upstreams={"docker.io": url},
                credentials=credentials(),
                retry=fast_retry(2),
                proxies=routes,
            ) as client:
                answer = await client.request("docker.io", "GET", "/v2/", what="ping")
                return answer.status_code

        assert asyncio.run(ping()) == 200
        guard = HostGuard(exempt=[(PLAIN, port_of(source_registry))])
        with blocking_client(guard, routes) as client:
            assert client.get(f"{url}/v2/").status_code == 200
        asked = list(proxy.asked)
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert [(a.method, a.target, a.proxy_authorization) for a in asked] == [
        ("GET", f"{url}/v2/", f"Basic {basic}")
    ] * 2


@pytest.fixture
def registry_ca(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Path, Path]]:
    """A CA only SSL_CERT_FILE names; the registries' shared TLS context is rebuilt to
    read it, and again after, so no other test sees it."""
    certificates = make_certificates(tmp_path_factory.mktemp("registry-tls"))
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates[0]))
    tls_context.cache_clear()
    yield certificates
    tls_context.cache_clear()


def test_a_tls_registry_is_spoken_to_over_http2_where_it_offers_it(
    tmp_path_factory: pytest.TempPathFactory, registry_ca: tuple[Path, Path, Path]
) -> None:
    """Every control request to an endpoint shares one HTTP/2 connection (ALPN), through
    the pinned transport the guard judges, and through the routed one when proxies are
    set and this endpoint bypasses them."""
    root = tmp_path_factory.mktemp("h2-registry")
    with start_registry(root, tls=registry_ca[1:]) as registry:
        url = f"https://localhost:{port_of(registry)}"

        async def versions(routes: ProxyRoutes) -> set[str]:
            async with RegistryClient(
                upstreams={"docker.io": url},
                credentials=credentials(),
                retry=fast_retry(2),
                proxies=routes,
            ) as client:
                # the endpoint's own client: RegistrySession.request hands back a copy of
                # each answer, read whole, which no longer knows its protocol
                endpoint = client._client("docker.io")
                answers = [await endpoint.get("/v2/") for _ in range(3)]
                return {answer.http_version for answer in answers}

        assert asyncio.run(versions(ProxyRoutes())) == {"HTTP/2"}
        bypassing = ProxyRoutes(https=parse_proxy("http://127.0.0.1:9", "HTTPS_PROXY"))
        assert asyncio.run(versions(bypassing)) == {"HTTP/2"}  # localhost: never proxied
