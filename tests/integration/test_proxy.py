"""`armirror copy` behind a corporate proxy, against real processes on 127.0.0.1.

A forward proxy stand-in (infra/local/standins/forward_proxy.py) resolves names of its
own (``*.corp.test``, which do not resolve on this machine) to the registry stand-ins,
as a corporate proxy resolves the outside world; it records every CONNECT and forwarded
request.  So a copy that works by such a name went through the proxy, and the proxy's
record shows what it was asked, and what it never was.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from armirror.config import Settings
from armirror.pipeline import Pipeline
from armirror.queue.local import Attempt, LocalQueue
from armirror.reference import parse
from armirror.registry import RegistryClient
from armirror.registry.errors import HostRefused, TransientError
from armirror.registry.hostguard import HostGuard
from armirror.registry.proxies import ProxyRoutes, parse_proxy
from armirror.registry.retry import RetryPolicy
from armirror.store.duckdb import DuckDBStore
from hostile_registry import HostileRegistry, InternalService
from registry_checks import ROOT, cli_env, fast_retry, head_manifest, run_cli, unique, verify_image
from standins import images
from standins.forward_proxy import ForwardProxy
from standins.registry import Registry, start_registry
from standins.tls import make_certificates

USER = "proxyuser"
PASSWORD = "Pr0xy-Passw0rd-91c2"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
PROXIED = "registry.corp.test"  # what the proxy resolves to the TLS registry
BYPASSED = "bypassed.corp.test"  # the same registry, a name NO_PROXY names
PLAIN = "plain.corp.test"  # the plain-HTTP source registry
HOSTILE = "hostile.corp.test"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_certificates(tmp_path_factory.mktemp("tls"), names=[PROXIED, BYPASSED])


@pytest.fixture(scope="module")
def tls_registry(
    tmp_path_factory: pytest.TempPathFactory, tls: tuple[Path, Path, Path]
) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("tls-registry"), tls=tls[1:]) as registry:
        yield registry


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileRegistry]:
    """Redirects and realms at the metadata address (over HTTPS, so a realm passes the
    scheme check and only the guard stands in the way)."""
    with InternalService() as internal, HostileRegistry(internal, "https://169.254.169.254") as r:
        yield r  # type: ignore[misc]


def proxy_for(**kwargs: object) -> ForwardProxy:
    """A proxy that resolves the corp.test names (whatever their port) to 127.0.0.1."""
    names = (PROXIED, BYPASSED, PLAIN, HOSTILE)
    return ForwardProxy(hosts=dict.fromkeys(names, "127.0.0.1"), **kwargs)  # type: ignore[arg-type]


def seed_tls(registry: Registry, ca: Path, monkeypatch: pytest.MonkeyPatch) -> images.Image:
    image = images.multi_arch_image(unique("library/behind"), "1", seed=20500)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # images.push's client trusts the CA
    images.push(registry.url, image)
    return image


def assert_copied_exactly(
    image: images.Image, dest: Registry, prefix: str, source_host: str = "docker.io"
) -> None:
    repository = f"{prefix.split('/', 1)[1]}/{source_host}/{image.repository}"
    assert head_manifest(dest.url, repository, "1") == image.digest
    assert verify_image(dest.url, repository, image.digest)


@pytest.mark.parametrize("proxy_scheme", ["http", "https"])
def test_copy_goes_through_the_https_proxy_digest_exact(
    tls: tuple[Path, Path, Path],
    tls_registry: Registry,
    dest_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    proxy_scheme: str,
) -> None:
    """HTTPS_PROXY with credentials in it carries every request to the source (control
    requests and blob bytes, by a name only the proxy resolves); the loopback
    destination is spoken to directly; the proxy password shows nowhere, even with -v."""
    ca = tls[0]
    image = seed_tls(tls_registry, ca, monkeypatch)
    source = f"https://{PROXIED}:{tls_registry.url.rsplit(':', 1)[1]}"
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    proxy_tls = tls[1:] if proxy_scheme == "https" else None
    with proxy_for(credentials=(USER, PASSWORD), tls=proxy_tls) as proxy:
        url = proxy.url_with(USER, PASSWORD)
        env = cli_env(SSL_CERT_FILE=str(ca), HTTPS_PROXY=url, http_proxy=url)
        status, rows, stderr = run_cli(
            "-v", f"{image.repository}:1", "--to", prefix, "--upstream", f"docker.io={source}",
            env=env,
        )  # fmt: skip
        asked = list(proxy.asked)
    assert status == 0, stderr
    assert [r["status"] for r in rows] == ["copied"], rows
    assert_copied_exactly(image, dest_registry, prefix)
    assert asked and {(a.method, a.host_port) for a in asked} == {("CONNECT", source[8:])}
    assert {a.proxy_authorization for a in asked} == {f"Basic {BASIC}"}
    for secret in (PASSWORD, BASIC):
        assert secret not in stderr and secret not in str(rows)


def test_plain_http_goes_through_http_proxy_in_absolute_form(
    source_registry: Registry, dest_registry: Registry
) -> None:
    image = images.single_image(unique("library/plain"), "1", seed=20510)
    images.push(source_registry.url, image)
    source = f"http://{PLAIN}:{source_registry.host.rsplit(':', 1)[1]}"
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    with proxy_for() as proxy:
        env = cli_env(HTTP_PROXY=proxy.url)
        status, rows, stderr = run_cli(
            f"{image.repository}:1", "--to", prefix, "--upstream", f"docker.io={source}", env=env
        )
        asked = list(proxy.asked)
    assert status == 0, stderr
    assert [r["status"] for r in rows] == ["copied"], rows
    assert_copied_exactly(image, dest_registry, prefix)
    assert asked and all(a.target.startswith(f"{source}/v2/") for a in asked), asked
    assert {a.method for a in asked} >= {"GET"}


def test_no_proxy_names_are_spoken_to_directly(
    tls: tuple[Path, Path, Path],
    tls_registry: Registry,
    dest_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two upstreams name one registry: by a name the proxy resolves, and by one in
    NO_PROXY.  The first is copied through the proxy; the second is tried directly,
    where its name does not resolve, and the proxy never hears of it (it would have
    copied it: it resolves both)."""
    image = seed_tls(tls_registry, tls[0], monkeypatch)
    port = tls_registry.url.rsplit(":", 1)[1]
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    with proxy_for() as proxy:
        env = cli_env(
            SSL_CERT_FILE=str(tls[0]), HTTPS_PROXY=proxy.url, NO_PROXY=f"example.com,.{BYPASSED}"
        )
        status, rows, stderr = run_cli(
            f"docker.io/{image.repository}:1", f"quay.io/{image.repository}:1", "--to", prefix,
            "--upstream", f"docker.io=https://{PROXIED}:{port}",
            "--upstream", f"quay.io=https://{BYPASSED}:{port}",
            env=env,
        )  # fmt: skip
        targets = proxy.targets()
    by_source = {row["source"]: row for row in rows}
    assert status == 1, stderr
    assert by_source[f"docker.io/{image.repository}:1"]["status"] == "copied"
    assert_copied_exactly(image, dest_registry, prefix)
    bypassed = by_source[f"quay.io/{image.repository}:1"]
    assert bypassed["status"] == "failed" and "ConnectError" in bypassed["error"], bypassed
    assert targets and set(targets) == {f"{PROXIED}:{port}"}


@pytest.mark.parametrize("mode", ["redirect", "realm"])
def test_the_guard_still_refuses_through_the_proxy(
    hostile: HostileRegistry, dest_registry: Registry, mode: str
) -> None:
    """The hostile registry, reached through the proxy, sends the copier to the metadata
    address by a redirect or a token realm: refused before the proxy is asked."""
    source = f"http://{HOSTILE}:{hostile.port}"
    with proxy_for() as proxy:
        env = cli_env(HTTP_PROXY=proxy.url, HTTPS_PROXY=proxy.url)
        status, rows, stderr = run_cli(
            f"{mode}/app:1", "--to", f"{dest_registry.host}/{unique('mirror')}",
            "--upstream", f"docker.io={source}", env=env,
        )  # fmt: skip
        targets = proxy.targets()
    assert status == 1, stderr
    (row,) = rows
    assert row["status"] == "failed"
    assert "169.254.169.254:443 refused: it is a link-local (metadata) address" in row["error"]
    assert f"{HOSTILE}:{hostile.port}" in targets  # the registry was reached through it
    assert not [t for t in targets if "169.254" in t], targets


def test_a_hop_that_does_not_resolve_here_is_not_left_to_the_proxy(
    dest_registry: Registry,
) -> None:
    """A name this machine cannot resolve cannot be judged: refused, never sent to the
    proxy (which resolves it, to a loopback service the guard would have refused)."""
    with (
        InternalService() as internal,
        HostileRegistry(internal, "https://internal.corp.test") as hostile,
        ForwardProxy(hosts={HOSTILE: "127.0.0.1", "internal.corp.test": "127.0.0.1"}) as proxy,
    ):
        env = cli_env(HTTP_PROXY=proxy.url, HTTPS_PROXY=proxy.url)
        status, rows, stderr = run_cli(
            "redirect/app:1", "--to", f"{dest_registry.host}/{unique('mirror')}",
            "--upstream", f"docker.io=http://{HOSTILE}:{hostile.port}", env=env,
        )  # fmt: skip
        targets = proxy.targets()
    assert status == 1, stderr
    assert "internal.corp.test:443 refused: it does not resolve here" in rows[0]["error"]
    assert targets and not [t for t in targets if t.startswith("internal.")], targets


def test_a_name_that_resolves_here_to_a_private_address_is_refused_through_the_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The guard's resolver stands in for this machine's DNS (the one seam: DNS cannot
    be served here): the redirect's name resolves to 10.1.2.3 here, so the proxy, whose
    own DNS might say otherwise, is never asked."""
    hops = {"rebind.corp.test": ["10.1.2.3"]}
    with (
        InternalService() as internal,
        HostileRegistry(internal, "https://rebind.corp.test") as redirecting,
        proxy_for() as proxy,
    ):
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        client = RegistryClient(
            upstreams={"docker.io": f"http://{HOSTILE}:{redirecting.port}"},
            guard=HostGuard(resolve=lambda host, port: hops.get(host, [])),
        )

        async def head() -> object:
            async with client:
                return await client.head_manifest(parse("docker.io/redirect/app:1"))

        with pytest.raises(HostRefused, match=r"resolves to a private address \(10\.1\.2\.3\)"):
            asyncio.run(head())
        targets = proxy.targets()
    assert targets == [f"{HOSTILE}:{redirecting.port}"]


def test_a_proxy_that_refuses_the_credentials_fails_the_copy_without_showing_them(
    tls: tuple[Path, Path, Path], tls_registry: Registry, dest_registry: Registry
) -> None:
    port = tls_registry.url.rsplit(":", 1)[1]
    with proxy_for(credentials=(USER, "the-right-one")) as proxy:
        env = cli_env(SSL_CERT_FILE=str(tls[0]), HTTPS_PROXY=proxy.url_with(USER, PASSWORD))
        status, rows, stderr = run_cli(
            "-v", "library/any:1", "--to", f"{dest_registry.host}/{unique('mirror')}",
            "--upstream", f"docker.io=https://{PROXIED}:{port}", env=env,
        )  # fmt: skip
        asked = len(proxy.asked)
    assert status == 1, stderr
    (row,) = rows
    assert "proxy http://127.0.0.1:" in row["error"] and "407" in row["error"], row
    assert "HTTPS_PROXY" in row["error"]
    assert 0 < asked < RetryPolicy().attempts  # a 407 is not retried
    for secret in (PASSWORD, BASIC):
        assert secret not in stderr and secret not in str(rows)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("HTTPS_PROXY", f"socks5://{USER}:{PASSWORD}@127.0.0.1:1080", "only to HTTP proxies"),
        ("https_proxy", f"http://{USER}:{PASSWORD}@:3128", "names no host"),
        ("ALL_PROXY", f"ftp://{USER}:{PASSWORD}@proxy.corp.test", "only to HTTP proxies"),
        ("NO_PROXY", "example.com:http", "has a port that is not one"),
    ],
)
def test_a_proxy_variable_armirror_cannot_use_is_bad_input(
    dest_registry: Registry, variable: str, value: str, says: str
) -> None:
    env = cli_env(**{variable: value})
    if variable == "NO_PROXY":
        env["HTTPS_PROXY"] = "http://127.0.0.1:9"
    status, _, stderr = run_cli("library/any:1", "--to", f"{dest_registry.host}/m", env=env)
    assert status == 2, stderr
    assert says in stderr and variable.upper() in stderr.upper()
    assert PASSWORD not in stderr and "Traceback" not in stderr


def test_the_environment_is_read_when_no_routes_are_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    assert not RegistryClient().proxies
    monkeypatch.setenv("https_proxy", "proxy.corp.test:3128")
    client = RegistryClient()
    assert client.proxies.proxy_for(httpx.URL("https://quay.io/v2/")) is not None
    assert not RegistryClient(proxies=ProxyRoutes()).proxies


def test_the_pipeline_reads_the_proxies_at_start_and_copies_through_them(
    tmp_path: Path,
    source_registry: Registry,
    dest_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """copy_image (serve, the Cloud Function) goes through the proxy the environment
    named when the pipeline was built."""
    image = images.single_image(unique("library/piped"), "1", seed=20520)
    images.push(source_registry.url, image)
    source = f"http://{PLAIN}:{source_registry.host.rsplit(':', 1)[1]}"
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    settings = Settings(destination=prefix, upstreams={"docker.io": (source,)})
    store = DuckDBStore(tmp_path / "store.duckdb")
    with proxy_for() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        pipeline = Pipeline(settings, store, LocalQueue(lambda job: Attempt(done=True)))
        monkeypatch.delenv("HTTP_PROXY")  # read once, when the pipeline was built
        try:
            request = json.dumps({"source": f"docker.io/{image.repository}:1"}).encode()
            body, status, _ = pipeline.copy_image(request, {})
        finally:
            store.close()
        targets = proxy.targets()
    assert status == 200 and json.loads(body)["status"] == "copied", body
    assert_copied_exactly(image, dest_registry, prefix)
    assert targets and set(targets) == {source.removeprefix("http://")}


def test_serve_will_not_start_with_a_proxy_it_cannot_use(tmp_path: Path) -> None:
    env = cli_env(
        ARMIRROR_DESTINATION="127.0.0.1:5001/mirror",
        ARMIRROR_STORE=f"duckdb:///{tmp_path / 'store.duckdb'}",
        HTTPS_PROXY=f"socks5://{USER}:{PASSWORD}@127.0.0.1:1080",
    )
    result = subprocess.run(
        [sys.executable, "-m", "armirror.cli", "serve", "--port", "0"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "HTTPS_PROXY" in result.stderr and "only to HTTP proxies" in result.stderr
    assert PASSWORD not in result.stderr and "Traceback" not in result.stderr


def test_a_proxy_that_does_not_answer_is_named_in_the_error() -> None:
    """A refused connection is the proxy's, not the registry's: the error says which."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = unused.getsockname()[1]
        proxy = parse_proxy(f"http://{USER}:{PASSWORD}@127.0.0.1:{port}", "HTTPS_PROXY")
        client = RegistryClient(
            upstreams={"docker.io": f"https://{PROXIED}:5000"},
            proxies=ProxyRoutes(https=proxy),
            retry=fast_retry(2),
        )

        async def head() -> object:
            async with client:
                return await client.head_manifest(parse("docker.io/library/any:1"))

        with pytest.raises(TransientError) as caught:
            asyncio.run(head())
    message = str(caught.value)
    assert message.startswith("HEAD docker.io/library/any:1: ConnectError:"), message
    assert message.endswith(f"(through the proxy http://127.0.0.1:{port})"), message
    assert PASSWORD not in message and USER not in message
