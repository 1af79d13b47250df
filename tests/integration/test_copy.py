"""``armirror copy`` against real local registries (distribution 2.8), checked with skopeo.

Every test pushes its own images under unique repository names and copies them under
its own destination prefix, so the session registries can be shared.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from armirror.reference import destination_for, parse
from faultproxy import FaultProxy
from registry_checks import (
    ROOT,
    cli_command,
    cli_env,
    docker_config_dir,
    head_manifest,
    run_cli,
    run_copy,
    skopeo_digest,
    skopeo_raw,
    skopeo_tags,
    unique,
    verify_image,
)
from standins import images
from standins.registry import Registry

BLOB_GET = r"/blobs/sha256:"


@pytest.fixture
def counting_proxy(source_registry: Registry) -> Iterator[FaultProxy]:
    """A proxy without faults in front of the source: it counts what reaches "Docker Hub"."""
    with FaultProxy(source_registry.url) as proxy:
        yield proxy


def _prefix(registry: Registry) -> str:
    return f"{registry.host}/{unique('mirror')}"


def _dest_repo(prefix: str, repository: str) -> str:
    return f"{prefix.split('/', 1)[1]}/docker.io/{repository}"


def _blob_gets(proxy: FaultProxy) -> Counter[str]:
    return Counter(p.rsplit("/", 1)[1] for m, p, _ in proxy.log if m == "GET" and BLOB_GET in p)


# -- what gets copied ------------------------------------------------------------------------


def test_all_manifest_kinds_with_shared_layers_each_blob_once(
    source_registry: Registry, dest_registry: Registry, counting_proxy: FaultProxy
) -> None:
    base = [images.generated_layer(seed=hash_seed, size=300_000) for hash_seed in (9101, 9102)]
    repo = unique("library/kinds")
    batch = [
        images.multi_arch_image(f"{repo}-oci-index", "1", seed=9110, shared=base),
        images.multi_arch_image(f"{repo}-docker-list", "1", seed=9120, shared=base, oci=False),
        images.single_image(f"{repo}-oci", "1", seed=9130, shared=base, oci=True),
        images.single_image(f"{repo}-docker", "1", seed=9140, shared=base),
    ]
    for image in batch:
        images.push(source_registry.url, image)
    # The OCI index carries buildx-style attestation manifests.
    index = json.loads(batch[0].top.raw)
    assert any(m["platform"]["os"] == "unknown" for m in index["manifests"])

    prefix = _prefix(dest_registry)
    names = [f"{image.repository}:1" for image in batch]
    results, client = run_copy(names, prefix, upstreams={"docker.io": counting_proxy.url})

    assert [r.status for r in results] == ["copied"] * 4, [r.error for r in results]
    for image, result in zip(batch, results, strict=True):
        assert result.digest == image.digest
        dest_repo = _dest_repo(prefix, image.repository)
        assert result.destination == f"{dest_registry.host}/{dest_repo}:1"
        assert skopeo_digest(dest_registry.host, f"{dest_repo}:1") == image.digest
        assert sorted(verify_image(dest_registry.url, dest_repo, image.digest)) == sorted(
            b.digest for b in image.blobs
        )
    # Every distinct blob left the source exactly once, shared base layers included:
    # the other three images mounted them.
    gets = _blob_gets(counting_proxy)
    every_blob = {b.digest: b.size for image in batch for b in image.all_blobs()}
    assert gets == Counter(dict.fromkeys(every_blob, 1))
    assert sum(r.bytes_copied for r in results) == sum(every_blob.values())
    # Manifests were read by digest once each; the tags were only HEADed.
    assert counting_proxy.count("GET", r"/manifests/1$") == 0
    assert client.request_counts.get(("docker.io", "PUT"), 0) == 0


def test_second_destination_repository_gets_a_mount(
    source_registry: Registry, dest_registry: Registry, counting_proxy: FaultProxy
) -> None:
    image = images.single_image(unique("library/mounted"), "2", seed=9201, oci=True)
    images.push(source_registry.url, image)
    source = parse(f"{image.repository}:2")
    first = destination_for(source, _prefix(dest_registry))
    second = destination_for(source, _prefix(dest_registry))

    results, _ = run_copy(
        [str(source), str(source)],
        "",
        upstreams={"docker.io": counting_proxy.url},
        destinations=[first, second],
        jobs=1,
    )
    assert [r.status for r in results] == ["copied", "copied"]
    size = sum(b.size for b in image.all_blobs())
    assert sorted(r.bytes_copied for r in results) == [0, size]
    assert set(_blob_gets(counting_proxy).values()) == {1}
    for destination in (first, second):
        assert head_manifest(dest_registry.url, destination.repository, "2") == image.digest
        verify_image(dest_registry.url, destination.repository, image.digest)


def test_same_registry_copy_mounts_from_the_source(source_registry: Registry) -> None:
    image = images.multi_arch_image(unique("library/local"), "3", seed=9301)
    images.push(source_registry.url, image)
    prefix = f"{source_registry.host}/{unique('mirror')}"
    results, _ = run_copy(
        [f"{image.repository}:3"], prefix, upstreams={"docker.io": source_registry.url}
    )
    assert results[0].status == "copied", results[0].error
    assert results[0].bytes_copied == 0
    dest_repo = _dest_repo(prefix, image.repository)
    assert skopeo_digest(source_registry.host, f"{dest_repo}:3") == image.digest
    verify_image(source_registry.url, dest_repo, image.digest)


def test_odd_whitespace_manifest_keeps_its_digest(
    source_registry: Registry, dest_registry: Registry
) -> None:
    image = images.single_image(unique("library/spaces"), "1", seed=9401, odd_whitespace=True)
    assert b"\t" in image.top.raw and image.top.raw.endswith(b"\r\n\n")
    images.push(source_registry.url, image)
    prefix = _prefix(dest_registry)
    results, _ = run_copy(
        [f"{image.repository}:1"], prefix, upstreams={"docker.io": source_registry.url}
    )
    assert results[0].status == "copied", results[0].error
    dest_repo = _dest_repo(prefix, image.repository)
    assert skopeo_raw(dest_registry.host, f"{dest_repo}:1") == image.top.raw
    assert skopeo_digest(dest_registry.host, f"{dest_repo}:1") == image.digest


def test_tag_plus_digest_pins_the_digest(
    source_registry: Registry, dest_registry: Registry
) -> None:
    repo = unique("library/pinned")
    old = images.single_image(repo, "stable", seed=9501)
    new = images.single_image(repo, "stable", seed=9502)
    images.push(source_registry.url, old)
    images.push(source_registry.url, new)  # the tag has moved on
    prefix = _prefix(dest_registry)
    results, _ = run_copy(
        [f"{repo}:stable@{old.digest}"], prefix, upstreams={"docker.io": source_registry.url}
    )
    result = results[0]
    assert result.status == "copied", result.error
    assert result.digest == old.digest
    dest_repo = _dest_repo(prefix, repo)
    assert result.destination == f"{dest_registry.host}/{dest_repo}:stable@{old.digest}"
    assert skopeo_digest(dest_registry.host, f"{dest_repo}:stable") == old.digest
    verify_image(dest_registry.url, dest_repo, old.digest)


def test_digest_only_reference(source_registry: Registry, dest_registry: Registry) -> None:
    image = images.multi_arch_image(unique("library/bydigest"), "x", seed=9601, oci=False)
    images.push(source_registry.url, image)
    prefix = _prefix(dest_registry)
    results, _ = run_copy(
        [f"{image.repository}@{image.digest}"], prefix, upstreams={"docker.io": source_registry.url}
    )
    result = results[0]
    assert result.status == "copied", result.error
    dest_repo = _dest_repo(prefix, image.repository)
    assert result.destination == f"{dest_registry.host}/{dest_repo}@{image.digest}"
    assert skopeo_digest(dest_registry.host, f"{dest_repo}@{image.digest}") == image.digest
    verify_image(dest_registry.url, dest_repo, image.digest)
    # No tag was invented at the destination.
    assert head_manifest(dest_registry.url, dest_repo, "x") is None
    assert head_manifest(dest_registry.url, dest_repo, "latest") is None


def test_signature_tags_travel(source_registry: Registry, dest_registry: Registry) -> None:
    image = images.sign(
        images.multi_arch_image(unique("library/signed"), "1", seed=9701),
        seed=9702,
        kinds=("sig", "att"),
    )
    images.push(source_registry.url, image)
    prefix = _prefix(dest_registry)
    results, _ = run_copy(
        [f"{image.repository}:1"], prefix, upstreams={"docker.io": source_registry.url}
    )
    assert results[0].status == "copied", results[0].error
    dest_repo = _dest_repo(prefix, image.repository)
    stem = image.digest.replace(":", "-")
    assert skopeo_tags(dest_registry.host, dest_repo) == sorted(["1", f"{stem}.att", f"{stem}.sig"])
    for tag, manifest in image.tagged.items():
        assert skopeo_digest(dest_registry.host, f"{dest_repo}:{tag}") == manifest.digest
        verify_image(dest_registry.url, dest_repo, manifest.digest)


def test_platform_signatures_travel_and_a_rerun_pulls_nothing(
    source_registry: Registry, dest_registry: Registry, counting_proxy: FaultProxy
) -> None:
    """``cosign sign --recursive`` also signs each platform's manifest: those tags are
    copied too, and a re-run finds them with HEADs (the platform digests come from the
    mirror's own copy of the index, not from a pull)."""
    image = images.sign(
        images.multi_arch_image(unique("library/signedall"), "1", seed=9711),
        seed=9712,
        kinds=("sig", "att"),
        platforms=True,
    )
    images.push(source_registry.url, image)
    prefix = _prefix(dest_registry)
    upstreams = {"docker.io": counting_proxy.url}
    results, _ = run_copy([f"{image.repository}:1"], prefix, upstreams=upstreams)
    assert results[0].status == "copied", results[0].error
    dest_repo = _dest_repo(prefix, image.repository)
    # .sig and .att for the index and each child (two platforms and their attestations)
    assert len(image.tagged) == 2 * (1 + len(image.children)) >= 6
    assert skopeo_tags(dest_registry.host, dest_repo) == sorted(["1", *image.tagged])
    for tag, manifest in image.tagged.items():
        assert skopeo_digest(dest_registry.host, f"{dest_repo}:{tag}") == manifest.digest

    counting_proxy.clear()
    again, client = run_copy([f"{image.repository}:1"], prefix, upstreams=upstreams)
    assert again[0].status == "up-to-date", again[0].error
    gets = [path for method, path, _ in counting_proxy.log if method == "GET"]
    assert [path.split("?")[0].rsplit("/", 2)[-2:] for path in gets] == [["tags", "list"]]
    assert client.request_counts.get((dest_registry.host, "GET")) == 1  # the mirrored index


def test_platform_signatures_added_upstream_later_are_copied_on_rerun(
    source_registry: Registry, dest_registry: Registry
) -> None:
    repo = unique("library/signedlater")
    first = images.sign(images.multi_arch_image(repo, "1", seed=9721), seed=9722)
    images.push(source_registry.url, first)
    prefix = _prefix(dest_registry)
    upstreams = {"docker.io": source_registry.url}
    results, _ = run_copy([f"{repo}:1"], prefix, upstreams=upstreams)
    assert results[0].status == "copied", results[0].error
    dest_repo = _dest_repo(prefix, repo)
    assert len(skopeo_tags(dest_registry.host, dest_repo)) == 2

    later = images.sign(images.multi_arch_image(repo, "1", seed=9721), seed=9722, platforms=True)
    assert later.digest == first.digest and len(later.tagged) == 1 + len(later.children)
    images.push(source_registry.url, later)
    again, _ = run_copy([f"{repo}:1"], prefix, upstreams=upstreams)
    assert again[0].status == "copied", again[0].error
    assert skopeo_tags(dest_registry.host, dest_repo) == sorted(["1", *later.tagged])
    for tag, manifest in later.tagged.items():
        assert skopeo_digest(dest_registry.host, f"{dest_repo}:{tag}") == manifest.digest
    assert run_copy([f"{repo}:1"], prefix, upstreams=upstreams)[0][0].status == "up-to-date"


@pytest.mark.parametrize("content_type", ["", "application/octet-stream"])
def test_platform_signatures_found_when_the_mirror_types_manifests_vaguely(
    source_registry: Registry, dest_registry: Registry, content_type: str
) -> None:
    """A mirror whose answers leave Content-Type out (or say octet-stream) may still
    hold an index: the re-run looks at its platforms, finds signatures added upstream
    since, and copies them."""
    repo = unique("library/signednotype")
    first = images.sign(images.multi_arch_image(repo, "1", seed=9731), seed=9732)
    images.push(source_registry.url, first)
    upstreams = {"docker.io": source_registry.url}
    with FaultProxy(dest_registry.url) as mirror:
        prefix = f"{mirror.url.removeprefix('http://')}/{unique('mirror')}"
        assert run_copy([f"{repo}:1"], prefix, upstreams=upstreams)[0][0].status == "copied"
        later = images.sign(
            images.multi_arch_image(repo, "1", seed=9731), seed=9732, platforms=True
        )
        images.push(source_registry.url, later)
        for method in ("HEAD", "GET"):
            vague = {"Content-Type": content_type}
            mirror.add(method, r"/manifests/", "headers", times=100, headers=vague)
        again, _ = run_copy([f"{repo}:1"], prefix, upstreams=upstreams)
        assert mirror.count("HEAD", r"/manifests/1$", "headers") == 1
    assert again[0].status == "copied", again[0].error
    dest_repo = _dest_repo(prefix, repo)
    assert skopeo_tags(dest_registry.host, dest_repo) == sorted(["1", *later.tagged])


def test_a_mirror_that_names_manifests_vaguely_still_finds_an_image_up_to_date(
    source_registry: Registry, dest_registry: Registry
) -> None:
    """A signed single-platform image, with another signed version in the repository,
    on a mirror that calls every manifest application/octet-stream: the re-run looks
    for platforms, finds a manifest it cannot type, and still says up-to-date."""
    repo = unique("library/vague")
    for tag, seed in (("1", 9741), ("2", 9743)):
        signed = images.sign(images.single_image(repo, tag, seed=seed), seed=seed + 1)
        images.push(source_registry.url, signed)
    upstreams = {"docker.io": source_registry.url}
    with FaultProxy(dest_registry.url) as mirror:
        prefix = f"{mirror.url.removeprefix('http://')}/{unique('mirror')}"
        assert run_copy([f"{repo}:1"], prefix, upstreams=upstreams)[0][0].status == "copied"
        vague = {"Content-Type": "application/octet-stream"}
        for method in ("HEAD", "GET"):
            mirror.add(method, r"/manifests/", "headers", times=100, headers=vague)
        again, _ = run_copy([f"{repo}:1"], prefix, upstreams=upstreams)
        assert mirror.count("GET", r"/manifests/sha256:", "headers") == 1
    assert again[0].status == "up-to-date", again[0].error


def test_rerun_does_nothing_and_only_heads_the_source(
    source_registry: Registry, dest_registry: Registry, counting_proxy: FaultProxy
) -> None:
    repo = unique("library/again")
    batch = [
        images.sign(images.multi_arch_image(f"{repo}-a", "1", seed=9801), seed=9802),
        images.single_image(f"{repo}-b", "1", seed=9803, oci=True),
    ]
    for image in batch:
        images.push(source_registry.url, image)
    prefix = _prefix(dest_registry)
    names = [f"{image.repository}:1" for image in batch] + [f"{repo}-b@{batch[1].digest}"]
    upstreams = {"docker.io": counting_proxy.url}
    first, _ = run_copy(names, prefix, upstreams=upstreams)
    assert [r.status for r in first] == ["copied"] * 3, [r.error for r in first]

    counting_proxy.clear()
    again, client = run_copy(names, prefix, upstreams=upstreams)
    assert [r.status for r in again] == ["up-to-date"] * 3
    assert [r.digest for r in again] == [r.digest for r in first]
    assert all(r.bytes_copied == 0 for r in again)
    # Nothing but HEADs and one tags/list per repository reached the source: no
    # manifest GET, so no Docker Hub pull.
    assert counting_proxy.log
    gets = [path for method, path, _ in counting_proxy.log if method == "GET"]
    assert all(path.split("?")[0].endswith("/tags/list") for path in gets), gets
    assert len(gets) == len({path for path in gets})
    assert {method for method, _, _ in counting_proxy.log} <= {"HEAD", "GET"}
    # And nothing was written to the destination.
    written = {m for (r, m) in client.request_counts if r == dest_registry.host}
    assert written == {"HEAD"}


def test_two_processes_copy_the_same_images_at_once(
    source_registry: Registry, dest_registry: Registry
) -> None:
    repo = unique("library/race")
    batch = [
        images.sign(
            images.multi_arch_image(f"{repo}-{n}", "1", seed=9901 + n, layer_sizes=(4096, 800_000)),
            seed=9950 + n,
        )
        for n in range(2)
    ]
    for image in batch:
        images.push(source_registry.url, image)
    prefix = _prefix(dest_registry)
    command = cli_command(
        *(f"{image.repository}:1" for image in batch),
        "--to",
        prefix,
        "--upstream",
        f"docker.io={source_registry.url}",
        "--format",
        "json",
    )
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, (stdout.decode(), stderr.decode())
        results = json.loads(stdout)
        assert [r["status"] in {"copied", "up-to-date"} for r in results] == [True] * 2
        assert [r["digest"] for r in results] == [image.digest for image in batch]
    for image in batch:
        dest_repo = _dest_repo(prefix, image.repository)
        assert skopeo_digest(dest_registry.host, f"{dest_repo}:1") == image.digest
        verify_image(dest_registry.url, dest_repo, image.digest)
        (sig_tag,) = image.tagged
        assert head_manifest(dest_registry.url, dest_repo, sig_tag) == image.tagged[sig_tag].digest


# -- credentials -----------------------------------------------------------------------------


def test_htpasswd_registry_via_docker_config(
    source_registry: Registry, htpasswd_registry: Registry, tmp_path: Path
) -> None:
    image = images.multi_arch_image(unique("library/basic"), "1", seed=10001)
    images.push(source_registry.url, image)
    config = docker_config_dir(
        tmp_path / "docker", {htpasswd_registry.host: ("armirror", "s3cret")}
    )
    env = cli_env(config)

    # Into the htpasswd registry ...
    prefix = f"{htpasswd_registry.host}/{unique('mirror')}"
    status, results, stderr = run_cli(
        f"{image.repository}:1",
        "--to",
        prefix,
        "--upstream",
        f"docker.io={source_registry.url}",
        env=env,
    )
    assert status == 0, stderr
    assert results[0]["status"] == "copied", results[0]["error"]
    dest_repo = _dest_repo(prefix, image.repository)
    assert skopeo_digest(htpasswd_registry.host, f"{dest_repo}:1", "armirror:s3cret") == (
        image.digest
    )
    verify_image(
        htpasswd_registry.url, dest_repo, image.digest, auth=httpx.BasicAuth("armirror", "s3cret")
    )

    # ... and out of it again, the htpasswd registry now playing quay.io.
    back = _prefix(htpasswd_registry)
    status, results, stderr = run_cli(
        f"quay.io/{dest_repo}:1",
        "--to",
        back,
        "--upstream",
        f"quay.io={htpasswd_registry.url}",
        env=env,
    )
    assert status == 0, (stderr, results[0]["error"])
    assert results[0]["status"] == "copied", results[0]["error"]
    assert results[0]["bytes_copied"] == 0  # same registry: every blob mounted
    assert results[0]["digest"] == image.digest


def test_wrong_credentials_fail_clearly(
    source_registry: Registry, htpasswd_registry: Registry, tmp_path: Path
) -> None:
    image = images.single_image(unique("library/denied"), "1", seed=10101)
    images.push(source_registry.url, image)
    config = docker_config_dir(tmp_path / "docker", {htpasswd_registry.host: ("armirror", "nope")})
    status, results, _ = run_cli(
        f"{image.repository}:1",
        "--to",
        f"{htpasswd_registry.host}/{unique('mirror')}",
        "--upstream",
        f"docker.io={source_registry.url}",
        env=cli_env(config),
    )
    assert status == 1
    (result,) = results
    assert result["status"] == "failed"
    # Issue 13 §1: "refused the credentials given" names where they came from, and is
    # not the "no credentials" message.
    expected = f"{htpasswd_registry.host} refused the credentials given (auths in {config}"
    assert expected in result["error"]
    assert "no credentials" not in result["error"] and "nope" not in result["error"]
    assert result["retryable"] is False

    # The same registry with no credentials at all says so, and where it looked.
    status, results, _ = run_cli(
        f"{image.repository}:1",
        "--to",
        f"{htpasswd_registry.host}/{unique('mirror')}",
        "--upstream",
        f"docker.io={source_registry.url}",
        env=cli_env(tmp_path / "empty-docker-config"),
    )
    assert status == 1
    error = results[0]["error"]
    assert f"no credentials for {htpasswd_registry.host} (looked in " in error
    assert str(tmp_path / "empty-docker-config" / "config.json") in error
    assert "refused the credentials" not in error


def test_token_registry_both_ways_with_few_token_requests(
    source_registry: Registry, dest_registry: Registry, token_registry: Registry
) -> None:
    token_server = token_registry.extras[0]
    image = images.sign(images.multi_arch_image(unique("library/bearer"), "1", seed=10201), seed=1)
    images.push(source_registry.url, image)

    # Push into the token registry: credentials are needed (anonymous is pull-only).
    to_prefix = f"{token_registry.host}/{unique('mirror')}"
    before = len(token_server.requests)  # type: ignore[attr-defined]
    results, client = run_copy(
        [f"{image.repository}:1"],
        to_prefix,
        upstreams={"docker.io": source_registry.url},
        explicit={token_registry.host: ("armirror", "s3cret")},
    )
    assert results[0].status == "copied", results[0].error
    issued = len(token_server.requests) - before  # type: ignore[attr-defined]
    assert issued == client.auth_for(token_registry.host).token_requests
    # One token per scope set (pull; pull,push), not one per request.
    assert 1 <= issued <= 4, issued
    pushed_repo = _dest_repo(to_prefix, image.repository)
    assert skopeo_digest(token_registry.host, f"{pushed_repo}:1", "armirror:s3cret") == (
        image.digest
    )

    # Anonymous pulls out of it, the token registry playing ghcr.io.
    from_prefix = _prefix(dest_registry)
    before = len(token_server.requests)  # type: ignore[attr-defined]
    results, client = run_copy(
        [f"ghcr.io/{pushed_repo}:1"], from_prefix, upstreams={"ghcr.io": token_registry.url}
    )
    assert results[0].status == "copied", results[0].error
    assert len(token_server.requests) - before <= 2  # type: ignore[attr-defined]
    dest_repo = f"{from_prefix.split('/', 1)[1]}/ghcr.io/{pushed_repo}"
    assert skopeo_digest(dest_registry.host, f"{dest_repo}:1") == image.digest
    verify_image(dest_registry.url, dest_repo, image.digest)
    stem = image.digest.replace(":", "-")
    assert f"{stem}.sig" in skopeo_tags(dest_registry.host, dest_repo)

    # Anonymous push is refused with a clear message: there were no credentials for it.
    results, _ = run_copy(
        [f"{image.repository}:1"],
        f"{token_registry.host}/{unique('anon')}",
        upstreams={"docker.io": source_registry.url},
    )
    assert results[0].status == "failed"
    assert f"no credentials for {token_registry.host}" in (results[0].error or "")


# -- failures --------------------------------------------------------------------------------


def test_missing_image_fails_clearly(source_registry: Registry, dest_registry: Registry) -> None:
    missing = unique("library/missing")
    prefix = _prefix(dest_registry)
    status, results, _ = run_cli(
        f"{missing}:1",
        f"{missing}@sha256:{'0' * 64}",
        "--to",
        prefix,
        "--upstream",
        f"docker.io={source_registry.url}",
    )
    assert status == 1
    assert [r["status"] for r in results] == ["failed", "failed"]
    for result in results:
        assert "not found" in result["error"]
        assert missing in result["error"]
        assert result["retryable"] is False
    assert head_manifest(dest_registry.url, _dest_repo(prefix, missing), "1") is None


def test_schema1_manifest_is_refused(source_registry: Registry, dest_registry: Registry) -> None:
    repo = unique("library/ancient")
    manifest = json.dumps(
        {
            "schemaVersion": 1,
            "name": repo,
            "tag": "1",
            "architecture": "amd64",
            "fsLayers": [{"blobSum": "sha256:" + "a" * 64}],
            "history": [{"v1Compatibility": "{}"}],
            "signatures": [],
        },
        indent=3,
    ).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    schema1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
    # distribution 2.8 refuses a raw (unsigned) schema 1 push, so it cannot be seeded:
    pushed = httpx.put(
        f"{source_registry.url}/v2/{repo}/manifests/1",
        content=manifest,
        headers={"Content-Type": schema1},
    )
    assert pushed.status_code == 400
    # ... instead the source answers as Docker Hub still does for very old images.
    with FaultProxy(source_registry.url) as proxy:
        for method in ("HEAD", "GET"):
            proxy.add(
                method,
                rf"/v2/{repo}/manifests/",
                "serve",
                times=10,
                headers={"Content-Type": schema1, "Docker-Content-Digest": digest},
                body=manifest,
            )
        status, results, _ = run_cli(
            f"{repo}:1", "--to", _prefix(dest_registry), "--upstream", f"docker.io={proxy.url}"
        )
    assert status == 1
    (result,) = results
    assert result["status"] == "failed"
    assert "schema 1" in result["error"]
    assert "not supported" in result["error"]


def test_bad_reference_is_a_usage_error(dest_registry: Registry) -> None:
    result = subprocess.run(
        cli_command("Not/Valid", "--to", _prefix(dest_registry)),
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert "repository name must be lowercase" in result.stderr


# -- output ----------------------------------------------------------------------------------


def test_cli_json_shape(source_registry: Registry, dest_registry: Registry) -> None:
    image = images.single_image(unique("library/shape"), "1", seed=10301)
    images.push(source_registry.url, image)
    prefix = _prefix(dest_registry)
    args = (
        f"{image.repository}:1",
        unique("library/absent"),
        "--to",
        prefix,
        "--upstream",
        f"docker.io={source_registry.url}",
    )
    status, results, _ = run_cli(*args)
    assert status == 1  # one image failed
    assert isinstance(results, list) and len(results) == 2
    copied, failed = results
    for result in results:
        assert {"source", "destination", "digest", "status", "bytes_copied", "error"} <= set(result)
        assert isinstance(result["bytes_copied"], int)
    assert copied["source"] == f"docker.io/{image.repository}:1"
    assert copied["destination"] == f"{prefix}/docker.io/{image.repository}:1"
    assert copied["status"] == "copied"
    assert copied["digest"] == image.digest
    assert copied["bytes_copied"] == sum(b.size for b in image.all_blobs())
    assert copied["error"] is None
    assert failed["status"] == "failed"
    assert failed["digest"] is None
    assert failed["bytes_copied"] == 0
    assert isinstance(failed["error"], str) and failed["error"]

    # The same through ARMIRROR_UPSTREAMS; the copied image is now up-to-date.
    status, results, _ = run_cli(
        f"{image.repository}:1",
        "--to",
        prefix,
        env=cli_env(ARMIRROR_UPSTREAMS=f"docker.io={source_registry.url}"),
    )
    assert status == 0
    assert [(r["status"], r["bytes_copied"], r["error"]) for r in results] == [
        ("up-to-date", 0, None)
    ]


@pytest.mark.slow
def test_layer_of_200_mb(source_registry: Registry, dest_registry: Registry) -> None:
    big = images.generated_layer(seed=424242, size=200 * 1024 * 1024, media_type=images.OCI_LAYER)
    image = images.single_image(
        unique("library/big"), "1", seed=10401, layer_sizes=(1024,), shared=[big], oci=True
    )
    images.push(source_registry.url, image)
    prefix = _prefix(dest_registry)
    results, _ = run_copy(
        [f"{image.repository}:1"], prefix, upstreams={"docker.io": source_registry.url}
    )
    result = results[0]
    assert result.status == "copied", result.error
    assert result.bytes_copied == sum(b.size for b in image.all_blobs())
    dest_repo = _dest_repo(prefix, image.repository)
    assert skopeo_digest(dest_registry.host, f"{dest_repo}:1") == image.digest
    # skopeo reads the layer back and checks it against its digest.
    manifest = json.loads(skopeo_raw(dest_registry.host, f"{dest_repo}:1"))
    assert manifest["layers"][0] == big.descriptor()
    layer = httpx.head(f"{dest_registry.url}/v2/{dest_repo}/blobs/{big.digest}")
    assert layer.status_code == 200
    assert int(layer.headers["Content-Length"]) == big.size
    assert layer.headers["Docker-Content-Digest"] == big.digest


@pytest.mark.parametrize(
    ("media_type", "body"),
    [
        (images.OCI_MANIFEST, b"{not json"),
        (images.OCI_MANIFEST, b'{"schemaVersion": 2, "layers": null}'),
        (images.OCI_INDEX, b'{"schemaVersion": 2, "manifests": 7}'),
    ],
)
def test_malformed_manifest_fails_that_image_only(
    source_registry: Registry, dest_registry: Registry, media_type: str, body: bytes
) -> None:
    good = images.single_image(unique("library/fine"), "1", seed=10501)
    images.push(source_registry.url, good)
    bad = unique("library/garbled")
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    headers = {"Content-Type": media_type, "Docker-Content-Digest": digest}
    with FaultProxy(source_registry.url) as proxy:
        for method in ("HEAD", "GET"):
            proxy.add(
                method, rf"/v2/{bad}/manifests/", "serve", times=10, headers=headers, body=body
            )
        status, results, stderr = run_cli(
            f"{bad}:1",
            f"{good.repository}:1",
            "--to",
            _prefix(dest_registry),
            "--upstream",
            f"docker.io={proxy.url}",
        )
    assert status == 1, stderr
    assert [r["status"] for r in results] == ["failed", "copied"], stderr
    assert "manifest" in results[0]["error"]
    assert results[1]["digest"] == good.digest


def test_one_job_at_a_time_does_not_deadlock(
    source_registry: Registry, dest_registry: Registry
) -> None:
    """With --jobs 1 each blob transfer needs two connections (GET and PUT) at once.

    The transfer pool once shared the --jobs connection limit, so a single transfer
    held the only connection for its GET and waited forever for its PUT.
    """
    image = images.single_image(unique("library/onejob"), "1", seed=811, layer_sizes=(5000, 7000))
    images.push(source_registry.url, image)
    prefix = _prefix(dest_registry)
    result = subprocess.run(
        cli_command(
            f"{image.repository}:1", "--to", prefix, "-j", "1",
            "--upstream", f"docker.io={source_registry.url}", "--format", "json",
        ),
        capture_output=True, text=True, env=cli_env(), cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["status"] == "copied"
    verify_image(dest_registry.url, _dest_repo(prefix, image.repository), image.digest)


def test_referrers_travel_where_the_source_has_the_referrers_api(
    source_registry: Registry, dest_registry: Registry
) -> None:
    """distribution 2.8 has no referrers API, so the proxy answers it as a 1.1 registry would."""
    image = images.single_image(unique("library/referred"), "1", seed=9801, oci=True)
    images.push(source_registry.url, image)
    # An SBOM artifact whose subject is the image, pushed by digest only (no tag).
    sbom_blob = images.blob_from_bytes(b'{"spdxVersion": "SPDX-2.3"}', "application/spdx+json")
    sbom, blobs = images.manifest_for([sbom_blob], oci=True, seed=9802)
    body = json.loads(sbom.raw)
    body["subject"] = image.top.descriptor()
    body["artifactType"] = "application/spdx+json"
    sbom = images.Manifest(images.OCI_MANIFEST, json.dumps(body).encode())
    images.push(
        source_registry.url,
        images.Image(image.repository, None, sbom, blobs=blobs),
    )
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [sbom.descriptor(artifactType="application/spdx+json")],
    }
    with FaultProxy(source_registry.url) as proxy:
        proxy.add(
            "GET", f"/v2/{image.repository}/referrers/{image.digest}", "serve", times=5,
            headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
            body=json.dumps(index).encode(),
        )  # fmt: skip
        prefix = _prefix(dest_registry)
        results, _ = run_copy([f"{image.repository}:1"], prefix, upstreams={"docker.io": proxy.url})
    assert results[0].status == "copied", results[0].error
    dest_repo = _dest_repo(prefix, image.repository)
    assert head_manifest(dest_registry.url, dest_repo, sbom.digest) == sbom.digest
    verify_image(dest_registry.url, dest_repo, sbom.digest)


def test_progress_hears_every_byte_once(source_registry: Registry, dest_registry: Registry) -> None:
    """A progress display sees the planned total, streamed bytes as they go, and the end."""
    import asyncio

    from armirror.registry import Copier, RegistryClient

    image = images.multi_arch_image(
        unique("library/progress"), "1", seed=9901, layer_sizes=(300_000, 5000)
    )
    images.push(source_registry.url, image)
    heard: dict[str, list[int]] = {"planned": [], "advanced": []}
    finished: list[str] = []

    class Recorder:
        def planned(self, source: str, total_bytes: int) -> None:
            heard["planned"].append(total_bytes)

        def advanced(self, source: str, nbytes: int) -> None:
            heard["advanced"].append(nbytes)

        def finished(self, result: object) -> None:
            finished.append(getattr(result, "status", ""))

    async def run() -> None:
        async with RegistryClient(
            upstreams={"docker.io": source_registry.url}, allow_private_hosts=True
        ) as client:
            source = parse(f"{image.repository}:1")
            await Copier(client, progress=Recorder()).copy(
                source, destination_for(source, _prefix(dest_registry))
            )

    asyncio.run(run())
    total = sum(blob.size for blob in image.all_blobs())
    assert heard["planned"] == [total]
    assert sum(heard["advanced"]) == total
    assert len(heard["advanced"]) > len(image.all_blobs())  # streamed in chunks, not per blob
    assert finished == ["copied"]
