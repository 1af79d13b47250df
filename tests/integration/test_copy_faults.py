"""Copies through a fault-injecting proxy in front of the source registry.

Each fault either heals within the retry budget (the copy succeeds, digest-exact) or
does not (the copy fails with a clear error).  Either way the destination tag is absent,
or names the right digest with every manifest and blob present and correct.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import httpx
import pytest
from armirror.reference import destination_for, parse
from armirror.registry import Copier, CopyResult, RegistryClient, RetryPolicy
from faultproxy import FaultProxy
from registry_checks import (
    assert_tag_sound,
    cli_env,
    credentials,
    fast_retry,
    head_manifest,
    run_cli,
    run_copy,
    unique,
)
from standins import images
from standins.registry import Registry

BLOB = r"/blobs/sha256:"


@pytest.fixture(scope="module")
def module_proxy(source_registry: Registry) -> Iterator[FaultProxy]:
    with FaultProxy(source_registry.url) as proxy:
        yield proxy


@pytest.fixture
def proxy(module_proxy: FaultProxy) -> Iterator[FaultProxy]:
    module_proxy.clear()
    yield module_proxy
    module_proxy.clear()


def _image(source_registry: Registry, stem: str, seed: int) -> images.Image:
    """A two-platform image with a 1 MB layer per platform, pushed straight to the source."""
    image = images.multi_arch_image(
        unique(f"library/{stem}"), "1", seed=seed, layer_sizes=(4096, 1_000_000)
    )
    images.push(source_registry.url, image)
    return image


def _big_blob(image: images.Image) -> str:
    return next(b.digest for b in image.blobs if b.size == 1_000_000)


def _copy(
    image: images.Image, dest: Registry, proxy: FaultProxy, retry: RetryPolicy | None = None
) -> tuple[CopyResult, str]:
    prefix = f"{dest.host}/{unique('mirror')}"
    results, _ = run_copy(
        [f"{image.repository}:1"], prefix, upstreams={"docker.io": proxy.url}, retry=retry
    )
    return results[0], f"{prefix.split('/', 1)[1]}/docker.io/{image.repository}"


def _assert_copied(result: CopyResult, image: images.Image, dest: Registry, repo: str) -> None:
    assert result.status == "copied", result.error
    assert result.digest == image.digest
    assert assert_tag_sound(dest.url, repo, "1", {image.digest}) == image.digest


def _assert_failed_cleanly(result: CopyResult, dest: Registry, repo: str) -> None:
    assert result.status == "failed"
    assert result.error
    assert assert_tag_sound(dest.url, repo, "1", {None}) is None


# -- faults that heal --------------------------------------------------------------------------


def test_429_with_retry_after_is_waited_out(
    source_registry: Registry, dest_registry: Registry, proxy: FaultProxy
) -> None:
    image = _image(source_registry, "busy", 20001)
    proxy.add("HEAD", rf"/{image.repository}/manifests/1$", "429", times=1, retry_after="1")
    proxy.add("GET", BLOB, "429", times=1, retry_after="1")
    result, repo = _copy(image, dest_registry, proxy)
    _assert_copied(result, image, dest_registry, repo)
    assert proxy.count("HEAD", "/manifests/1$", "429") == 1
    assert proxy.count("GET", BLOB, "429") == 1
    # Each retry came no sooner than the Retry-After asked (a lower bound, not a speed check).
    for method, pattern in (("HEAD", rf"/{image.repository}/manifests/1$"), ("GET", BLOB)):
        (path,) = [
            p for m, p, o in proxy.log if m == method and o == "429" and re.search(pattern, p)
        ]
        refused, retried = proxy.arrived(method, re.escape(path) + "$")[:2]
        assert retried - refused >= 1.0, (method, retried - refused)


def test_503_is_retried(
    source_registry: Registry, dest_registry: Registry, proxy: FaultProxy
) -> None:
    image = _image(source_registry, "flaky", 20101)
    proxy.add("GET", r"/manifests/sha256:", "503", times=2)
    proxy.add("GET", BLOB, "503", times=3)
    result, repo = _copy(image, dest_registry, proxy)
    _assert_copied(result, image, dest_registry, repo)
    assert proxy.count("GET", "", "503") == 5


@pytest.mark.parametrize("kind", ["reset", "truncate", "corrupt"])
def test_broken_blob_transfer_is_retried(
    source_registry: Registry, dest_registry: Registry, proxy: FaultProxy, kind: str
) -> None:
    image = _image(source_registry, f"once-{kind}", 20200 + len(kind))
    big = _big_blob(image)
    proxy.add("GET", rf"/blobs/{big}$", kind, times=2)
    result, repo = _copy(image, dest_registry, proxy)
    _assert_copied(result, image, dest_registry, repo)
    assert proxy.count("GET", rf"/blobs/{big}$", kind) == 2
    assert proxy.count("GET", rf"/blobs/{big}$", "ok") == 1


def test_reset_through_the_cli_upstream_option(
    source_registry: Registry, dest_registry: Registry, proxy: FaultProxy
) -> None:
    image = _image(source_registry, "cli-reset", 20301)
    proxy.add("GET", rf"/blobs/{_big_blob(image)}$", "reset", times=1)
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    status, results, stderr = run_cli(
        f"{image.repository}:1", "--to", prefix, "--upstream", f"docker.io={proxy.url}"
    )
    assert status == 0, stderr
    assert results[0]["status"] == "copied", results[0]["error"]
    assert proxy.count("GET", BLOB, "reset") == 1
    repo = f"{prefix.split('/', 1)[1]}/docker.io/{image.repository}"
    assert assert_tag_sound(dest_registry.url, repo, "1", {image.digest}) == image.digest


# -- faults that do not heal -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("503", "answered 503"),
        ("reset", "Connection reset by peer"),
        ("truncate", "without sending complete message body"),
        ("corrupt", "does not match its digest"),
    ],
)
def test_persistent_blob_fault_fails_without_a_tag(
    source_registry: Registry,
    dest_registry: Registry,
    proxy: FaultProxy,
    kind: str,
    message: str,
) -> None:
    image = _image(source_registry, f"broken-{kind}", 20400 + len(kind))
    big = _big_blob(image)
    proxy.add("GET", rf"/blobs/{big}$", kind, times=100)
    result, repo = _copy(image, dest_registry, proxy, retry=fast_retry(attempts=3))
    _assert_failed_cleanly(result, dest_registry, repo)
    assert message in (result.error or "")
    assert big in (result.error or "")  # the message says which blob
    assert proxy.count("GET", rf"/blobs/{big}$", kind) == 3  # bounded retries
    # No manifest was pushed, child or top, and the damaged blob was not committed.
    for child in image.children:
        assert head_manifest(dest_registry.url, repo, child.digest) is None
    assert httpx.head(f"{dest_registry.url}/v2/{repo}/blobs/{big}").status_code == 404


def test_failed_update_leaves_the_old_image_in_place(
    source_registry: Registry, dest_registry: Registry, proxy: FaultProxy
) -> None:
    old = _image(source_registry, "moving", 20501)
    result, repo = _copy(old, dest_registry, proxy)
    _assert_copied(result, old, dest_registry, repo)
    # The source tag moves to a new image; copying it breaks on its big layer.
    new = images.multi_arch_image(old.repository, "1", seed=20502, layer_sizes=(4096, 1_000_000))
    images.push(source_registry.url, new)
    proxy.add("GET", rf"/blobs/{_big_blob(new)}$", "truncate", times=100)
    prefix = f"{dest_registry.host}/{repo.rsplit('/docker.io/', 1)[0]}"
    results, _ = run_copy(
        [f"{new.repository}:1"],
        prefix,
        upstreams={"docker.io": proxy.url},
        retry=fast_retry(attempts=2),
    )
    assert results[0].status == "failed"
    assert results[0].retryable is True
    # The tag still names the old, complete image.
    assert assert_tag_sound(dest_registry.url, repo, "1", {old.digest}) == old.digest
    # Healed, the next run moves the tag.
    proxy.clear()
    results, _ = run_copy([f"{new.repository}:1"], prefix, upstreams={"docker.io": proxy.url})
    _assert_copied(results[0], new, dest_registry, repo)


def test_persistent_503_on_the_manifest(
    source_registry: Registry, dest_registry: Registry, proxy: FaultProxy
) -> None:
    image = _image(source_registry, "down", 20601)
    proxy.add("HEAD", r"/manifests/", "503", times=100)
    proxy.add("GET", r"/manifests/", "503", times=100)
    result, repo = _copy(image, dest_registry, proxy, retry=fast_retry(attempts=3))
    _assert_failed_cleanly(result, dest_registry, repo)
    assert "answered 503" in (result.error or "")
    assert result.retryable is True
    assert proxy.count("HEAD", r"/manifests/1$", "503") == 3


def test_persistent_429_with_long_retry_after_fails_fast(
    source_registry: Registry, dest_registry: Registry, proxy: FaultProxy
) -> None:
    image = _image(source_registry, "limited", 20701)
    proxy.add("HEAD", r"/manifests/", "429", times=100, retry_after="3600")
    proxy.add("GET", r"/manifests/", "429", times=100, retry_after="3600")
    source = parse(f"{image.repository}:1")
    destination = destination_for(source, f"{dest_registry.host}/{unique('mirror')}")

    async def main() -> CopyResult:
        async with RegistryClient(
            upstreams={"docker.io": proxy.url}, credentials=credentials(), allow_private_hosts=True
        ) as client:
            # The default retry policy; the bound only stops a broken build from hanging.
            return await asyncio.wait_for(Copier(client).copy(source, destination), timeout=60)

    result = asyncio.run(main())
    assert result.status == "failed"
    assert result.retryable is True
    assert result.retry_after == 3600
    assert "rate limiting (429)" in (result.error or "")
    assert proxy.count("HEAD", "", "429") == 1  # not retried: the wait is too long
    assert head_manifest(dest_registry.url, destination.repository, "1") is None


def test_cli_reports_rate_limit_in_json(
    source_registry: Registry, dest_registry: Registry, proxy: FaultProxy
) -> None:
    image = _image(source_registry, "limited-cli", 20801)
    proxy.add("HEAD", r"/manifests/", "429", times=100, retry_after="3600")
    status, results, _ = run_cli(
        f"{image.repository}:1",
        "--to",
        f"{dest_registry.host}/{unique('mirror')}",
        env=cli_env(ARMIRROR_UPSTREAMS=f"docker.io={proxy.url}"),
    )
    assert status == 1
    (result,) = results
    assert (result["status"], result["retryable"], result["retry_after"]) == ("failed", True, 3600)


def test_a_destination_that_stores_another_digest_fails_the_copy(
    source_registry: Registry, dest_registry: Registry
) -> None:
    """The digest a registry echoes for a pushed manifest must be the one pushed."""
    image = _image(source_registry, "echo", 20901)
    wrong = "sha256:" + "0" * 64
    with FaultProxy(dest_registry.url) as dest_proxy:
        dest_proxy.add(
            "PUT", r"/manifests/", "headers", times=100, headers={"Docker-Content-Digest": wrong}
        )
        prefix = f"{dest_proxy.url.removeprefix('http://')}/{unique('mirror')}"
        results, _ = run_copy(
            [f"{image.repository}:1"], prefix, upstreams={"docker.io": source_registry.url}
        )
    (result,) = results
    assert result.status == "failed"
    assert result.error is not None and wrong in result.error
    assert not result.retryable


# -- retry in one layer (issue 13 §6) ------------------------------------------------------------


def test_a_failing_upload_start_is_sent_once_per_attempt(
    source_registry: Registry, dest_registry: Registry, proxy: FaultProxy
) -> None:
    """copy_blob retries the whole transfer; its upload-start POST does not retry inside
    it, so 5 attempts send the POST 5 times, not 5 x 5."""
    image = images.single_image(unique("library/nopost"), "1", seed=20911)
    images.push(source_registry.url, image)
    with FaultProxy(dest_registry.url) as destination:
        destination.add("POST", r"/blobs/uploads/$", "503", times=1000)
        prefix = f"{destination.url.removeprefix('http://')}/{unique('mirror')}"
        results, _ = run_copy(
            [f"{image.repository}:1"],
            prefix,
            upstreams={"docker.io": proxy.url},
            retry=fast_retry(attempts=5),
            jobs=1,
        )
        assert results[0].status == "failed" and results[0].retryable
        blobs = len(image.blobs)
        # The first blob to fail spent its 5 attempts, one POST each; others may have
        # begun theirs before the copy gave up.  Retried in two layers it was 25 a blob.
        posts = destination.count("POST", r"/blobs/uploads/$", "503")
        assert 5 <= posts <= 5 * blobs, posts


def test_retry_after_on_one_job_holds_back_the_others_on_that_registry(
    source_registry: Registry, dest_registry: Registry, proxy: FaultProxy
) -> None:
    """A 429 with Retry-After answered to image A's copy delays image B's copy, which
    starts meanwhile on the same client: B asks the registry nothing until the wait is
    over (a lower bound on B's first request, not a speed check)."""
    first = images.single_image(unique("library/held-a"), "1", seed=20921)
    second = images.single_image(unique("library/held-b"), "1", seed=20922)
    for image in (first, second):
        images.push(source_registry.url, image)
    proxy.add("HEAD", rf"/{first.repository}/manifests/1$", "429", times=1, retry_after="1")
    prefix = f"{dest_registry.host}/{unique('mirror')}"

    async def main() -> list[CopyResult]:
        async with RegistryClient(
            upstreams={"docker.io": proxy.url},
            credentials=credentials(),
            retry=fast_retry(),
            allow_private_hosts=True,
        ) as client:
            copier = Copier(client)
            pairs = [
                (parse(f"{i.repository}:1"), destination_for(parse(f"{i.repository}:1"), prefix))
                for i in (first, second)
            ]
            started = asyncio.ensure_future(copier.copy(*pairs[0]))
            for _ in range(500):  # bounded: until the 429 has been answered
                if proxy.count("HEAD", rf"/{first.repository}/manifests/1$", "429"):
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # the answer reaches the client
            return list(await asyncio.gather(started, copier.copy(*pairs[1])))

    results = asyncio.run(asyncio.wait_for(main(), timeout=60))
    assert [r.status for r in results] == ["copied", "copied"], [r.error for r in results]
    refused = proxy.arrived("HEAD", rf"/{first.repository}/manifests/1$")[0]
    second_first = min(
        t for method in ("HEAD", "GET") for t in proxy.arrived(method, second.repository)
    )
    assert second_first - refused >= 1.0, second_first - refused


def test_a_long_retry_after_fails_the_other_jobs_fast_without_asking(
    source_registry: Registry, dest_registry: Registry, proxy: FaultProxy
) -> None:
    """Retry-After: 3600 on one image: the next image on that registry is reported rate
    limited with the time left, and the registry is not asked about it."""
    first = images.single_image(unique("library/long-a"), "1", seed=20931)
    second = images.single_image(unique("library/long-b"), "1", seed=20932)
    for image in (first, second):
        images.push(source_registry.url, image)
    proxy.add("HEAD", rf"/{first.repository}/manifests/1$", "429", times=1, retry_after="3600")
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    results, _ = run_copy(
        [f"{first.repository}:1", f"{second.repository}:1"], prefix,
        upstreams={"docker.io": proxy.url}, jobs=1, checks=1,  # one image after the other
    )  # fmt: skip
    assert [r.status for r in results] == ["failed", "failed"]
    assert all(r.rate_limited and r.retryable for r in results)
    assert results[1].retry_after is not None and 3500 < results[1].retry_after <= 3600
    assert not [p for _, _, p in proxy.arrivals if second.repository in p]
