"""RegistrySession, the one layer that retries, against a real registry behind the fault
proxy: what it counts and records, how a wait a registry asked for holds back the
other requests to that endpoint, and what a client is built from.

Every wait here is bounded by an outer timeout so that a broken one fails instead of
hanging; arrival times are compared only as lower bounds (a retry never comes before
the registry said it may).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re

import httpx
import pytest
from armirror.config import Settings
from armirror.reference import parse
from armirror.registry import RegistryClient, RetryPolicy
from armirror.registry.credentials import CredentialStore
from armirror.registry.errors import (
    CredentialsRefused,
    NoCredentials,
    RateLimited,
    RegistryError,
    TransientError,
    Unauthorized,
)
from armirror.registry.factory import client_from_settings
from armirror.registry.hostguard import HostGuard
from armirror.registry.proxies import ProxyRoutes
from armirror.registry.retry import NO_RETRY, Backoffs
from faultproxy import FaultProxy
from registry_checks import credentials
from standins.registry import Registry

PATIENT = RetryPolicy(attempts=3, base_delay=0, max_delay=0, max_retry_after=10)
#: A first endpoint that is never asked: the requests here name the later one.
FIRST = "http://127.0.0.1:9"
RATE_HEADERS = {"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "42;w=21600"}


def client_for(hub: FaultProxy, **kwargs: object) -> RegistryClient:
    options: dict[str, object] = {
        "upstreams": {"docker.io": hub.url},
        "credentials": credentials(),
        "retry": PATIENT,
        "allow_private_hosts": True,
    }
    options.update(kwargs)
    return RegistryClient(**options)  # type: ignore[arg-type]


def run[T](coroutine: asyncio.Future[T] | object) -> T:
    return asyncio.run(asyncio.wait_for(coroutine, timeout=60))  # type: ignore[arg-type]


def test_requests_are_counted_by_registry_and_method(hub: FaultProxy) -> None:
    async def main() -> dict[tuple[str, str], int]:
        async with client_for(hub) as client:
            for _ in range(3):
                await client.request("docker.io", "GET", "/v2/", what="ping")
            await client.request("docker.io", "HEAD", "/v2/", what="ping")
            return dict(client.request_counts)

    assert run(main()) == {("docker.io", "GET"): 3, ("docker.io", "HEAD"): 1}


def test_the_rate_limit_an_endpoint_reports_is_kept_by_endpoint(hub: FaultProxy) -> None:
    hub.add("GET", r"^/v2/$", "headers", headers=RATE_HEADERS)

    async def main() -> None:
        async with client_for(hub) as client:
            assert client.ratelimit("docker.io") is None
            assert client.ratelimit_remaining("docker.io") is None
            await client.request("docker.io", "GET", "/v2/", what="ping")
            seen = client.ratelimit("docker.io")
            assert seen is not None and (seen.limit, seen.remaining) == (100, 42)
            assert client.ratelimit(hub.url) == seen  # by endpoint URL as well
            assert client.ratelimit_remaining("docker.io") == 42
            assert client.ratelimit_remaining(hub.url) == 42
            assert client.ratelimit("quay.io") is None
            # an answer that reports nothing leaves the last report in place
            await client.request("docker.io", "GET", "/v2/", what="ping")
            assert client.ratelimit_remaining("docker.io") == 42

    run(main())


@pytest.mark.parametrize("status", ["429", "503"])
def test_a_retry_after_holds_back_the_next_request_to_that_endpoint(
    hub: FaultProxy, status: str
) -> None:
    """While the request that got 429 (or any answer with Retry-After) waits it out, the
    endpoint is held: the client says so, and the retry arrives no sooner than allowed."""
    hub.add("GET", r"^/v2/$", status, retry_after="1", times=1)

    async def main() -> float:
        async with client_for(hub, upstreams={"docker.io": [FIRST, hub.url]}) as client:
            request = asyncio.create_task(
                client.request("docker.io", "GET", "/v2/", what="ping", endpoint=hub.url)
            )
            while not hub.count("GET", r"^/v2/$", outcome=status):
                await asyncio.sleep(0.01)
            while not client.backoff_for("docker.io", hub.url).remaining():
                assert not request.done()
                await asyncio.sleep(0.01)
            held = client.backoff_for("docker.io", hub.url).remaining()
            others = [client.backoff_for("docker.io").remaining()]  # the first endpoint
            others.append(client.backoff_for("quay.io").remaining())
            await request
            assert others == [0, 0]
            return held

    held = run(main())
    assert 0 < held <= 1.1
    first, retry = hub.arrived("GET", r"^/v2/$")
    assert retry - first >= 1.0


def test_a_wait_too_long_to_sit_out_is_reported_and_held(hub: FaultProxy) -> None:
    """Retry-After 30 with a policy that waits at most 10: RateLimited at once, and the
    next request to the endpoint is refused without asking the registry again."""
    hub.add("GET", r"^/v2/$", "503", retry_after="30", times=1)

    async def main() -> None:
        async with client_for(hub, upstreams={"docker.io": [FIRST, hub.url]}) as client:
            with pytest.raises(TransientError) as first:
                await client.request("docker.io", "GET", "/v2/", what="ping", endpoint=hub.url)
            assert first.value.status == 503
            assert 25 < client.backoff_for("docker.io", hub.url).remaining() <= 30
            assert client.backoff_for("docker.io").remaining() == 0  # the first endpoint
            with pytest.raises(RateLimited) as second:
                await client.request(
                    "docker.io", "HEAD", "/v2/", what="the second ping", endpoint=hub.url
                )
            host = httpx.URL(hub.url).netloc.decode()
            left = second.value.retry_after
            assert left is not None and 25 < left <= 30
            assert second.value.status is None
            assert str(second.value) == (
                f"the second ping: {host} asked armirror to wait; {left:.0f} s left"
            )

    run(main())
    assert len(hub.arrived("GET", r"^/v2/$")) == 1
    assert hub.arrived("HEAD") == []


def test_an_answer_not_retried_still_holds_its_endpoint(hub: FaultProxy) -> None:
    """A caller that retries nothing itself (its own ``retryable``) still leaves the
    registry's Retry-After on the endpoint that gave it, for the other jobs."""
    hub.add("GET", r"^/v2/$", "429", retry_after="30", times=1)

    async def main() -> None:
        async with client_for(hub, upstreams={"docker.io": [FIRST, hub.url]}) as client:
            with pytest.raises(RateLimited):
                await client.request(
                    "docker.io", "GET", "/v2/", what="ping", endpoint=hub.url,
                    retryable=lambda error: False,
                )  # fmt: skip
            assert 25 < client.backoff_for("docker.io", hub.url).remaining() <= 30
            assert client.backoff_for("docker.io").remaining() == 0

    run(main())
    assert len(hub.arrived("GET", r"^/v2/$")) == 1


@pytest.mark.parametrize("fault", ["503", "reset"])
def test_a_request_given_its_own_policy_follows_it(hub: FaultProxy, fault: str) -> None:
    """The inner requests of a transfer retried as a whole pass NO_RETRY: one attempt,
    whatever the client's policy (here three attempts)."""
    hub.add("GET", r"^/v2/$", fault, times=5)

    async def main() -> None:
        async with client_for(hub) as client:
            await client.request("docker.io", "GET", "/v2/", what="ping", retry=NO_RETRY)

    with pytest.raises(TransientError):
        run(main())
    assert len(hub.arrived("GET", r"^/v2/$")) == 1


def test_a_hold_on_a_later_endpoint_names_that_endpoint(hub: FaultProxy) -> None:
    later = "http://127.0.0.1:9"  # never asked: the hold answers first

    async def main() -> None:
        async with client_for(hub, upstreams={"docker.io": [hub.url, later]}) as client:
            client.backoff_for("docker.io", later).hold(120)
            assert client.backoff_for("docker.io").remaining() == 0
            with pytest.raises(RateLimited) as caught:
                await client.request("docker.io", "GET", "/v2/", what="ping", endpoint=later)
            assert str(caught.value).startswith("ping: 127.0.0.1:9 asked armirror to wait; ")
            answer = await client.request("docker.io", "GET", "/v2/", what="ping")
            assert answer.status_code == 200

    run(main())


def test_a_hold_shorter_than_the_policy_allows_is_waited_out(hub: FaultProxy) -> None:
    async def main() -> None:
        async with client_for(hub) as client:
            client.backoff_for("docker.io").hold(0.3)
            await client.request("docker.io", "GET", "/v2/", what="ping")
            assert client.backoff_for("docker.io").remaining() == 0

    run(main())
    assert len(hub.arrived("GET", r"^/v2/$")) == 1


def test_clients_given_one_backoffs_hold_each_other_back(hub: FaultProxy) -> None:
    shared = Backoffs()
    one, two = client_for(hub, backoffs=shared), client_for(hub, backoffs=shared)
    one.backoff_for("docker.io").hold(30)
    assert two.backoff_for("docker.io").remaining() > 25
    assert client_for(hub).backoff_for("docker.io").remaining() == 0


def test_a_503_without_retry_after_holds_back_only_its_own_request(
    hub: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """Only a 429 or a Retry-After speaks for the whole endpoint; a plain 503 is this
    request's bad luck: while it waits to retry, the other jobs go on."""
    hub.add("HEAD", "/manifests/", "503")
    pausing = RetryPolicy(attempts=2, base_delay=0.5, max_delay=0.5, max_retry_after=10)
    ref = parse("docker.io/library/anything:1")

    async def main() -> float:
        async with client_for(hub, retry=pausing) as client:
            asked = asyncio.create_task(client.head_manifest(ref))
            for _ in range(500):  # until the client is pausing before its retry
                if any(r.getMessage().startswith("retrying in ") for r in caplog.records):
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the 503 was never retried")
            held = client.backoff_for("docker.io").remaining()
            with contextlib.suppress(RegistryError):
                await asked
            return held

    with caplog.at_level(logging.INFO, logger="armirror"):
        assert run(main()) == 0
    assert len(hub.arrived("HEAD", "/manifests/")) == 2  # the 503, then the retry
    (line,) = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert re.fullmatch(  # the pause (jittered), and the error it follows
        r"retrying in 0\.\d\ds after: HEAD docker\.io/library/anything:1: \S+ answered 503 .*", line
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_connections": 0}, "max_connections must be at least 1, got 0"),
        ({"timeout": 0}, "timeout must be positive, got 0"),
        ({"timeout": -1.5}, "timeout must be positive, got -1.5"),
    ],
)
def test_a_client_refuses_settings_that_cannot_work(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        RegistryClient(proxies=ProxyRoutes(), **kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_a_client_at_the_smallest_settings_works(hub: FaultProxy) -> None:
    async def main() -> int:
        async with client_for(hub, max_connections=1, timeout=0.5) as client:
            answer = await client.request("docker.io", "GET", "/v2/", what="ping")
            return answer.status_code

    assert run(main()) == 200


def test_a_registry_that_does_not_answer_in_time_is_a_transient_error(
    hub: FaultProxy,
) -> None:
    hub.add("GET", r"^/v2/$", "hang", times=1)

    async def main() -> None:
        async with client_for(hub, timeout=0.3, retry=RetryPolicy(attempts=1)) as client:
            await client.request("docker.io", "GET", "/v2/", what="ping")

    with pytest.raises(TransientError) as caught:
        run(main())
    assert "ReadTimeout" in str(caught.value)


def test_what_a_client_is_built_from(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard exempts every upstream endpoint and trusted registry (by host and
    port); given parts are used, not replaced."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.test:3128")
    for name in ("https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    store, policy, routes = credentials(), RetryPolicy(attempts=2), ProxyRoutes()
    client = RegistryClient(
        upstreams={"docker.io": ["https://mirror.corp.test:5000/", "http://hub.corp.test"]},
        insecure={"registry.corp.test:5000"},
        credentials=store,
        retry=policy,
        trusted_registries=["europe-docker.pkg.dev", "registry.corp.test:5000"],
        proxies=routes,
        allow_private_hosts=True,
    )
    exempt = [
        ("mirror.corp.test", 5000),
        ("hub.corp.test", 80),
        ("europe-docker.pkg.dev", 443),
        ("registry.corp.test", 5000),
    ]
    assert all(client.guard.is_exempt(*e) for e in exempt)
    assert not client.guard.is_exempt("hub.corp.test", 443)
    assert not client.guard.is_exempt("registry.corp.test", 443)
    assert client.guard.allow_private
    assert client.credentials is store and client.retry is policy and client.proxies is routes
    assert client.base_url("registry.corp.test:5000") == "http://registry.corp.test:5000"
    assert client.candidates("docker.io") == (
        "https://mirror.corp.test:5000",
        "http://hub.corp.test",
    )

    default = RegistryClient()
    assert default.retry == RetryPolicy()
    assert not default.guard.allow_private
    assert default.proxies.https is not None  # read from the environment
    assert os.environ["HTTPS_PROXY"] in default.proxies.https.url

    guard = HostGuard()
    assert RegistryClient(guard=guard, proxies=routes).guard is guard


def denial(registry: Registry, store: CredentialStore, name: str | None = None) -> Exception:
    """The error a GET /v2/ meets at ``registry``, asked for as ``name`` (default: its
    own host) mapped to it."""
    name = name or registry.host

    async def main() -> None:
        async with RegistryClient(
            upstreams={name: registry.url},
            credentials=store,
            retry=PATIENT,
            allow_private_hosts=True,
        ) as client:
            await client.request(name, "GET", "/v2/", what="ping")

    with pytest.raises(Unauthorized) as caught:
        run(main())
    return caught.value


def test_a_401_without_credentials_says_none_were_found(htpasswd_registry: Registry) -> None:
    error = denial(htpasswd_registry, credentials())
    assert isinstance(error, NoCredentials)
    host = htpasswd_registry.host
    assert (error.registry, error.status, error.method, error.path, error.host) == (
        host,
        401,
        "GET",
        "/v2/",
        host,
    )
    assert error.searched == "looked in /nonexistent/config.json"
    assert str(error).startswith(
        f"ping: no credentials for {host} (looked in /nonexistent/config.json); "
        f"{host} answered 401 to GET /v2/"
    )


def test_a_401_with_credentials_says_they_were_refused(htpasswd_registry: Registry) -> None:
    host = htpasswd_registry.host
    error = denial(htpasswd_registry, credentials({host: ("armirror", "not-the-password")}))
    assert isinstance(error, CredentialsRefused)
    assert (error.registry, error.source, error.status, error.method, error.path) == (
        host,
        "explicit credentials",
        401,
        "GET",
        "/v2/",
    )
    assert str(error).startswith(
        f"ping: {host} refused the credentials given (explicit credentials): "
        f"{host} answered 401 to GET /v2/"
    )


def test_a_client_from_settings_takes_every_part_it_is_given(hub: FaultProxy) -> None:
    """The settings' upstreams and destination, and every part passed in, reach the
    client: a request goes through the given transport, the destination and trusted
    registries are exempt from the guard, a shared Backoffs is shared."""
    settings = Settings(
        upstreams={"docker.io": ("https://mirror.corp.test", "https://registry-1.docker.io")},
        destination="europe-docker.pkg.dev/project/mirror",
        allow_private_hosts=True,
    )
    seen: list[str] = []

    def registry(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200)

    store, policy, shared, routes = (
        credentials(),
        RetryPolicy(attempts=2),
        Backoffs(),
        ProxyRoutes(),
    )
    client = client_from_settings(
        settings,
        insecure=["registry.corp.test:5000"],
        jobs=1,
        credentials=store,
        retry=policy,
        transport=httpx.MockTransport(registry),
        backoffs=shared,
        trusted=["trusted.corp.test"],
        proxies=routes,
    )
    assert client.candidates("docker.io") == (
        "https://mirror.corp.test",
        "https://registry-1.docker.io",
    )
    assert client.base_url("registry.corp.test:5000") == "http://registry.corp.test:5000"
    assert client.credentials is store and client.retry is policy and client.proxies is routes
    assert client.guard.allow_private
    for exempt in [("europe-docker.pkg.dev", 443), ("trusted.corp.test", 443)]:
        assert client.guard.is_exempt(*exempt)
    assert not client.guard.is_exempt("docker.io", 443)
    shared.for_endpoint("https://quay.io").hold(30)
    assert client.backoff_for("quay.io").remaining() > 25

    async def ping() -> int:
        async with client:
            answer = await client.request("docker.io", "GET", "/v2/", what="ping")
            return answer.status_code

    assert run(ping()) == 200
    assert seen == ["https://mirror.corp.test/v2/"]

    bare = client_from_settings(Settings(), proxies=routes)
    assert not bare.guard.allow_private
    assert not bare.guard.is_exempt("europe-docker.pkg.dev", 443)
    assert bare.retry == RetryPolicy()


@pytest.mark.parametrize("jobs", [0, -3])
def test_a_client_from_settings_needs_a_job(jobs: int) -> None:
    with pytest.raises(ValueError) as caught:
        client_from_settings(Settings(), jobs=jobs, proxies=ProxyRoutes())
    assert str(caught.value) == f"jobs must be at least 1, got {jobs}"


def test_credentials_kept_under_the_registry_name_are_the_ones_refused(
    htpasswd_registry: Registry,
) -> None:
    """docker.io mapped to a (loopback) endpoint: the credentials stored for docker.io
    were sent, so the answer is that they were refused, not that there were none."""
    store = credentials({"docker.io": ("armirror", "not-the-password")})
    error = denial(htpasswd_registry, store, "docker.io")
    assert isinstance(error, CredentialsRefused)
    assert (error.registry, error.source) == ("docker.io", "explicit credentials")


@pytest.mark.parametrize(
    ("name", "searched"),
    [
        ("docker.io", "looked in /nonexistent/config.json"),
        (
            "europe-docker.pkg.dev",
            "looked in /nonexistent/config.json and Google application default credentials",
        ),
    ],
)
def test_no_credentials_says_where_it_looked_for_the_registry_named(
    htpasswd_registry: Registry, name: str, searched: str
) -> None:
    """Google application default credentials are looked up for Google's registries
    only; the message follows the registry asked for, not the (loopback) endpoint."""
    error = denial(htpasswd_registry, credentials(), name)
    assert isinstance(error, NoCredentials)
    assert error.searched == searched
    assert str(error).startswith(f"ping: no credentials for {name} ({searched}); ")
