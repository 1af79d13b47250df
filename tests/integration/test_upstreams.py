"""Docker Hub's limits as they are now (issue 13 §2): endpoint lists, few manifest GETs,
and a pull budget spent knowingly.

Two real registries play one registry name: "mirror" (mirror.gcr.io) and "hub"
(registry-1.docker.io), each behind a fault proxy that counts what reaches it and can
add Docker Hub's ``ratelimit-*`` headers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from armirror.config import ConfigError, Settings, load, parse_upstreams
from armirror.pipeline import Pipeline
from armirror.queue.local import Attempt, LocalQueue
from armirror.reference import destination_for, parse
from armirror.store.duckdb import DuckDBStore
from faultproxy import FaultProxy
from registry_checks import cli_env, head_manifest, run_cli, run_copy, unique, verify_image
from standins import images
from standins.registry import Registry, start_registry

MANIFEST_GET = r"/manifests/"


@pytest.fixture(scope="module")
def mirror_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("mirror-registry")) as registry:
        yield registry


@pytest.fixture
def mirror(mirror_registry: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(mirror_registry.url) as proxy:
        yield proxy


def _gets(proxy: FaultProxy) -> int:
    return proxy.count("GET", MANIFEST_GET)


def _both(mirror: FaultProxy, hub: FaultProxy) -> dict[str, tuple[str, ...]]:
    return {"docker.io": (mirror.url, hub.url)}


def _dest_repo(prefix: str, repository: str) -> str:
    return f"{prefix.split('/', 1)[1]}/docker.io/{repository}"


# -- the syntax ----------------------------------------------------------------------------


def test_endpoint_lists_parse_in_every_spelling() -> None:
    hub = ("https://mirror.gcr.io", "https://registry-1.docker.io")
    assert parse_upstreams(
        ["docker.io=https://mirror.gcr.io,https://registry-1.docker.io"], "x"
    ) == {"docker.io": hub}
    assert load(
        {"ARMIRROR_UPSTREAMS": "docker.io=https://mirror.gcr.io, https://registry-1.docker.io/;"
         " quay.io=https://quay.example"}
    ).upstreams == {"docker.io": hub, "quay.io": ("https://quay.example",)}  # fmt: skip
    # The older comma-separated form still reads as two registries.
    assert parse_upstreams(
        ["docker.io=http://127.0.0.1:5000,ghcr.io=http://127.0.0.1:5001"], "x"
    ) == {
        "docker.io": ("http://127.0.0.1:5000",),
        "ghcr.io": ("http://127.0.0.1:5001",),
    }
    # A later option replaces an earlier list for the same registry.
    assert parse_upstreams(["docker.io=https://a.example", "docker.io=https://b.example"], "x") == {
        "docker.io": ("https://b.example",)
    }


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("https://mirror.gcr.io", "expected REGISTRY=URL"),
        ("docker.io=", "names no endpoint"),
        ("docker.io=mirror.gcr.io", "must start with http"),
        ("docker.io=https://user:pw@mirror.gcr.io", "must not hold credentials"),
        ("docker.io=https://mirror.gcr.io/?x=1", "must not have a query"),
        ("docker.io=" + ",".join(f"https://m{n}.example" for n in range(9)), "at most 8"),
    ],
)
def test_bad_endpoint_lists_name_the_variable(value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"ARMIRROR_UPSTREAMS: .*{problem}") as caught:
        load({"ARMIRROR_UPSTREAMS": value})
    assert "pw" not in str(caught.value)


# -- which endpoint serves -----------------------------------------------------------------


def test_the_mirror_serves_what_it_has_and_docker_hub_is_not_pulled(
    source_registry: Registry, mirror_registry: Registry, dest_registry: Registry,
    mirror: FaultProxy, hub: FaultProxy,
) -> None:  # fmt: skip
    image = images.multi_arch_image(unique("library/cached"), "1", seed=13101)
    images.push(source_registry.url, image)
    images.push(mirror_registry.url, image)
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    (result,), _ = run_copy([f"{image.repository}:1"], prefix, upstreams=_both(mirror, hub))
    assert result.status == "copied", result.error
    assert result.endpoint == mirror.url
    assert _gets(hub) == 0 and hub.count("GET", r"/blobs/") == 0  # Docker Hub: HEADs only
    mirror_host = mirror.url.split("://", 1)[1]
    assert result.manifest_gets == {mirror_host: _gets(mirror)}
    verify_image(dest_registry.url, _dest_repo(prefix, image.repository), image.digest)


def test_docker_hub_serves_what_the_mirror_lacks(
    source_registry: Registry, dest_registry: Registry, mirror: FaultProxy, hub: FaultProxy
) -> None:
    image = images.single_image(unique("library/uncached"), "1", seed=13102)
    images.push(source_registry.url, image)
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    (result,), _ = run_copy([f"{image.repository}:1"], prefix, upstreams=_both(mirror, hub))
    assert result.status == "copied", result.error
    assert result.endpoint == hub.url
    assert _gets(mirror) == 0
    verify_image(dest_registry.url, _dest_repo(prefix, image.repository), image.digest)


def test_a_blob_the_mirror_lost_comes_from_docker_hub(
    source_registry: Registry, mirror_registry: Registry, dest_registry: Registry,
    mirror: FaultProxy, hub: FaultProxy,
) -> None:  # fmt: skip
    image = images.single_image(unique("library/partial"), "1", seed=13103)
    images.push(source_registry.url, image)
    images.push(mirror_registry.url, image)
    lost = image.blobs[-1].digest
    httpx.delete(f"{mirror_registry.url}/v2/{image.repository}/blobs/{lost}").raise_for_status()
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    (result,), _ = run_copy([f"{image.repository}:1"], prefix, upstreams=_both(mirror, hub))
    assert result.status == "copied", result.error
    assert result.endpoint == mirror.url
    assert hub.count("GET", f"/blobs/{lost}") == 1
    verify_image(dest_registry.url, _dest_repo(prefix, image.repository), image.digest)


def test_endpoints_that_disagree_are_an_error_not_a_fall_through(
    source_registry: Registry, mirror_registry: Registry, dest_registry: Registry,
    mirror: FaultProxy, hub: FaultProxy,
) -> None:  # fmt: skip
    repository = unique("library/moved")
    stale = images.single_image(repository, "1", seed=13104)
    fresh = images.single_image(repository, "1", seed=13105)
    images.push(mirror_registry.url, stale)
    images.push(source_registry.url, fresh)
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    (result,), _ = run_copy([f"{repository}:1"], prefix, upstreams=_both(mirror, hub))
    assert result.status == "failed" and result.retryable
    assert f"names {stale.digest} but" in (result.error or "")
    assert fresh.digest in (result.error or "")
    assert _gets(mirror) == 0 and _gets(hub) == 0
    assert head_manifest(dest_registry.url, _dest_repo(prefix, repository), "1") is None


def test_a_failing_mirror_is_an_error_not_a_fall_through(
    source_registry: Registry, mirror_registry: Registry, dest_registry: Registry,
    mirror: FaultProxy, hub: FaultProxy,
) -> None:  # fmt: skip
    image = images.single_image(unique("library/flaky"), "1", seed=13106)
    images.push(source_registry.url, image)
    images.push(mirror_registry.url, image)
    mirror.add("HEAD", f"/v2/{image.repository}/manifests/", "503", times=100)
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    (result,), _ = run_copy([f"{image.repository}:1"], prefix, upstreams=_both(mirror, hub))
    assert result.status == "failed" and result.retryable
    assert "503" in (result.error or "")
    assert _gets(hub) == 0 and hub.count("GET", r"/blobs/") == 0


# -- as few manifest GETs as possible ------------------------------------------------------


def test_only_what_the_destination_lacks_is_fetched(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    image = images.multi_arch_image(unique("library/partly"), "1", seed=13107, attestations=False)
    images.push(source_registry.url, image)
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    repo = _dest_repo(prefix, image.repository)
    # One platform is at the destination already (pushed by digest, with its blobs).
    present = image.children[0]
    blobs = [b for b in image.all_blobs() if b.digest in present.raw.decode()]
    images.push(dest_registry.url, images.Image(repo, present.digest, present, [], blobs))
    hub_host = hub.url.split("://", 1)[1]

    (result,), _ = run_copy([f"{image.repository}:1"], prefix, upstreams={"docker.io": hub.url})
    assert result.status == "copied", result.error
    # The index and the missing platform: two pulls, not three.
    assert result.manifest_gets == {hub_host: 2} and _gets(hub) == 2
    assert hub.count("GET", f"/manifests/{present.digest}") == 0
    verify_image(dest_registry.url, repo, image.digest)

    # The same image under another tag: its manifests all come from the destination.
    hub.clear()
    with httpx.Client(base_url=source_registry.url) as client:
        client.put(
            f"/v2/{image.repository}/manifests/2",
            content=image.top.raw,
            headers={"Content-Type": image.top.media_type},
        ).raise_for_status()
    (again,), _ = run_copy([f"{image.repository}:2"], prefix, upstreams={"docker.io": hub.url})
    assert again.status == "copied", again.error
    assert _gets(hub) == 0 and hub_host not in again.manifest_gets
    assert head_manifest(dest_registry.url, repo, "2") == image.digest


def test_the_json_output_says_where_each_image_came_from_and_what_it_cost(
    source_registry: Registry, mirror_registry: Registry, dest_registry: Registry,
    mirror: FaultProxy, hub: FaultProxy,
) -> None:  # fmt: skip
    cached = images.single_image(unique("library/json-cached"), "1", seed=13108)
    uncached = images.single_image(unique("library/json-uncached"), "1", seed=13109)
    for image in (cached, uncached):
        images.push(source_registry.url, image)
    images.push(mirror_registry.url, cached)
    env = cli_env(ARMIRROR_UPSTREAMS=f"docker.io={mirror.url},{hub.url}")
    status, rows, stderr = run_cli(
        f"{cached.repository}:1", f"{uncached.repository}:1",
        "--to", f"{dest_registry.host}/{unique('mirror')}", env=env,
    )  # fmt: skip
    assert status == 0, stderr
    by_source = {row["source"].split("/", 1)[1]: row for row in rows}
    first, second = by_source[f"{cached.repository}:1"], by_source[f"{uncached.repository}:1"]
    assert first["endpoint"] == mirror.url and second["endpoint"] == hub.url
    assert first["manifest_gets"] == {mirror.url.split("://", 1)[1]: 1}
    assert second["manifest_gets"] == {hub.url.split("://", 1)[1]: 1}
    json.dumps(rows)  # plain JSON


# -- the pull budget ------------------------------------------------------------------------


def _docker_hub_headers(proxy: FaultProxy, remaining: int) -> None:
    for method in ("HEAD", "GET"):
        proxy.add(
            method,
            MANIFEST_GET,
            "headers",
            times=1000,
            headers={
                "ratelimit-limit": "100;w=21600",
                "ratelimit-remaining": f"{remaining};w=21600",
            },
        )


def test_an_image_that_needs_more_pulls_than_remain_is_not_started(
    source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    image = images.multi_arch_image(unique("library/budget"), "1", seed=13110, attestations=False)
    images.push(source_registry.url, image)
    _docker_hub_headers(hub, remaining=1)  # an index needs itself and a platform at least
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    (result,), _ = run_copy([f"{image.repository}:1"], prefix, upstreams={"docker.io": hub.url})
    assert result.status == "failed" and result.rate_limited and result.retryable
    # One missing pull of 100 in a 6-hour window comes back in about 21600/100 s.
    assert result.retry_after == 216
    assert "allows 1 more in its 6-hour window" in (result.error or "")
    assert _gets(hub) == 0  # nothing spent


def test_copy_image_answers_429_with_the_budgets_retry_time(
    tmp_path: Path, source_registry: Registry, dest_registry: Registry, hub: FaultProxy
) -> None:
    image = images.single_image(unique("library/budget-task"), "1", seed=13111)
    images.push(source_registry.url, image)
    _docker_hub_headers(hub, remaining=0)
    settings = Settings(
        destination=f"{dest_registry.host}/{unique('mirror')}", upstreams={"docker.io": (hub.url,)}
    )
    store = DuckDBStore(tmp_path / "store.duckdb")
    pipeline = Pipeline(settings, store, LocalQueue(lambda job: Attempt(done=True)))
    try:
        source = f"docker.io/{image.repository}:1"
        body, status, headers = pipeline.copy_image(json.dumps({"source": source}).encode(), {})
    finally:
        store.close()
    assert status == 429
    assert headers["Retry-After"] == "216"
    answer = json.loads(body)
    assert answer["rate_limited"] is True and answer["manifest_gets"] == {}
    assert _gets(hub) == 0
    assert destination_for(parse(source), settings.destination or "")  # well-formed


# -- many checks in flight, over HTTPS ------------------------------------------------------


def test_a_warm_re_sync_checks_every_image_at_once_over_one_https_connection(
    tmp_path: Path, source_registry: Registry
) -> None:
    """Issue 13 §3: up-to-date checks do not wait for blob job slots (-j 2 here), and
    over HTTPS they share one HTTP/2 connection per registry instead of one each."""
    from standins.relay import LatencyRelay
    from standins.tls import make_certificates

    ca, cert, key = make_certificates(tmp_path / "tls")
    small = [
        images.single_image(unique("library/warm"), "1", seed=13200 + n, layer_sizes=(256,))
        for n in range(24)
    ]
    with (
        start_registry(tmp_path / "src", tls=(cert, key)) as src,
        start_registry(tmp_path / "dst", tls=(cert, key)) as dst,
    ):
        env = cli_env(SSL_CERT_FILE=str(ca))
        for image in small:
            _push_tls(src.url, image, ca)
        names = [f"{i.repository}:1" for i in small]
        args = ["--to", f"dest.example/{unique('mirror')}", "-j", "2"]
        direct = [f"docker.io={src.url}", f"dest.example={dst.url}"]
        status, rows, stderr = run_cli(*names, *args, *_upstreams(direct), env=env)
        assert status == 0 and {r["status"] for r in rows} == {"copied"}, stderr
        with LatencyRelay(src.host, dst.host, delay=0.05) as relay:
            relayed = [
                f"docker.io=https://{relay.url_for(src.host).split('://', 1)[1]}",
                f"dest.example=https://{relay.url_for(dst.host).split('://', 1)[1]}",
            ]
            status, rows, stderr = run_cli(*names, *args, *_upstreams(relayed), env=env)
            connections = [relay.stats(r.host).connections for r in (src, dst)]
    assert status == 0, stderr
    assert {r["status"] for r in rows} == {"up-to-date"}
    assert all(r["manifest_gets"] == {} for r in rows)
    assert connections == [1, 1], connections


def _upstreams(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--upstream", item)]


def _push_tls(url: str, image: images.Image, ca: Path) -> None:
    import os

    previous = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(ca)
    try:
        images.push(url, image)
    finally:
        if previous is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = previous


def test_the_cli_checks_many_images_at_once_whatever_the_jobs(
    source_registry: Registry, dest_registry: Registry
) -> None:
    """With -j 2, a warm re-sync of 12 images still asks about all of them at once: over
    plain HTTP (one request a connection) the source sees many connections, not the two
    that two images at a time would open."""
    from standins.relay import LatencyRelay

    small = [
        images.single_image(unique("library/many"), "1", seed=13300 + n, layer_sizes=(128,))
        for n in range(12)
    ]
    for image in small:
        images.push(source_registry.url, image)
    names = [f"{i.repository}:1" for i in small]
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    status, rows, stderr = run_cli(
        *names, "--to", prefix, "--upstream", f"docker.io={source_registry.url}", "-j", "2"
    )
    assert status == 0 and {r["status"] for r in rows} == {"copied"}, stderr
    with LatencyRelay(source_registry.host, delay=0.05) as relay:
        upstream = f"docker.io={relay.url_for(source_registry.host)}"
        status, rows, stderr = run_cli(*names, "--to", prefix, "--upstream", upstream, "-j", "2")
        connections = relay.stats(source_registry.host).connections
    assert status == 0 and {r["status"] for r in rows} == {"up-to-date"}, stderr
    # Each image asks the source two things at once (its HEAD and its tags/list); two
    # images at a time would need 4 connections at most.
    assert connections > 8, connections
