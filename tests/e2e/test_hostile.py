"""Issue 12's attacks on `armirror serve` and `armirror copy`, with real processes.

A hostile registry (tests/hostile_registry.py) is the configured Docker Hub; an
"internal service" on another port plays the metadata server.  Each attack must be
refused cleanly: a failed copy, recorded, answered 200 (or a clear 4xx), the internal
service never asked, and no secret in any output: copy_image's JSON, the serve log,
``copies.error``, ``armirror copy``'s table and JSON.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import httpx
import pytest
from faultproxy import FaultProxy
from hostile_registry import HUGE, HostileRegistry, InternalService
from registry_checks import ROOT, cli_env, docker_config_dir, head_manifest, unique
from serve_process import Serve
from standins import images
from standins.logentries import cloud_event, kubelet_entry
from standins.registry import Registry

PASSWORD = "Sup3r-Secret-Passw0rd"
USER = "armirror"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SECRETS = (PASSWORD, BASIC, InternalService.SECRET)
WHEN = datetime(2026, 10, 1, 8, 0, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def internal() -> Iterator[InternalService]:
    with InternalService() as service:
        yield service  # type: ignore[misc]


@pytest.fixture(scope="module")
def hostile(internal: InternalService) -> Iterator[HostileRegistry]:
    with HostileRegistry(internal) as registry:
        yield registry  # type: ignore[misc]


@pytest.fixture(scope="module")
def serve(
    tmp_path_factory: pytest.TempPathFactory, hostile: HostileRegistry, dest_registry: Registry
) -> Iterator[Serve]:
    """serve with the hostile registry as docker.io, and its password in the Docker config."""
    root = tmp_path_factory.mktemp("hostile-serve")
    config = docker_config_dir(root / "docker", {hostile.host: (USER, PASSWORD)})
    env = {
        "ARMIRROR_DESTINATION": f"{dest_registry.host}/{unique('mirror')}",
        "ARMIRROR_UPSTREAMS": f"docker.io={hostile.url}",
        "DOCKER_CONFIG": str(config),
    }
    server = Serve(root / "serve", env)
    yield server
    server.stop()


def assert_no_secret(*outputs: str) -> None:
    for output in outputs:
        for secret in SECRETS:
            assert secret not in output, f"{secret!r} leaked into {output[:300]!r}"


def copies(serve: Serve) -> list[tuple[str, str, str]]:
    """(source, status, error) of every recorded copy (serve stopped: DuckDB locks)."""
    with duckdb.connect(str(serve.store_path), read_only=True) as db:
        rows = db.execute("SELECT source, status, error FROM copies").fetchall()
    return [(str(source), str(status), str(error)) for source, status, error in rows]


# Each case: the source copy_image is given, and what its error must say.
ATTACKS = [
    ("docker.io/redirect/app:1", "refused: it is a loopback address"),  # 307 to internal
    ("docker.io/realm/app:1", "plain HTTP"),  # Bearer realm on the internal service
    ("docker.io/echo/app:1", "DENIED"),  # error page echoing Authorization
    ("docker.io/echohtml/app:1", "answered 400"),  # raw HTML echoing it
    ("docker.io/huge/app:1", f"{HUGE} bytes, over 4194304"),  # 32 MiB manifest
    ("docker.io/hugechunked/app:1", "more than 4194304 bytes"),  # the same, chunked
    ("docker.io/nested/app:1", "nested too deeply"),
    ("docker.io/climbing/app:1", "has a malformed descriptor"),  # a digest of "../"
    ("docker.io/tokenjunk/app:1", "not JSON"),
    ("docker.io/tokenlist/app:1", "not an object"),
]


@pytest.mark.parametrize(("source", "says"), ATTACKS)
def test_a_hostile_registry_is_a_failed_recorded_copy(
    serve: Serve, internal: InternalService, hostile: HostileRegistry, source: str, says: str
) -> None:
    before = len(internal.requests)
    reply = serve.post("copy_image", json={"source": source})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "failed" and body["retryable"] is False
    assert says in body["error"]
    assert len(body["error"]) < 1500
    assert_no_secret(reply.text)
    assert internal.requests[before:] == []  # never reached, credentials never sent
    assert not [r for r in hostile.requests if "climbed" in str(r)]  # no path it named


def test_copy_cli_table_and_json_hold_no_secret(
    tmp_path: Path, hostile: HostileRegistry, dest_registry: Registry, internal: InternalService
) -> None:
    config = docker_config_dir(tmp_path / "docker", {hostile.host: (USER, PASSWORD)})
    sources = ["echo/app:1", "echohtml/app:1", "redirect/app:1", "realm/app:1"]
    outputs = []
    for fmt in ("table", "json"):
        result = subprocess.run(
            [sys.executable, "-m", "armirror.cli", "copy", *sources,
             "--to", f"{dest_registry.host}/{unique('mirror')}",
             "--upstream", f"docker.io={hostile.url}", "--format", fmt],
            capture_output=True, text=True, cwd=ROOT, timeout=120,
            env=cli_env(config, ARMIRROR_ALLOW_PRIVATE_HOSTS="false"),
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        outputs += [result.stdout, result.stderr]
        assert "Traceback" not in result.stderr
    assert_no_secret(*outputs)
    results = {r["source"]: r for r in json.loads(outputs[2])}
    assert "DENIED" in results["docker.io/echo/app:1"]["error"]
    # The registries the operator named are trusted, loopback or not, but never a hop
    # elsewhere: --upstream named only the hostile registry.
    assert "refused" in results["docker.io/redirect/app:1"]["error"]
    assert internal.requests == []


def test_a_pull_event_naming_an_internal_host_queues_nothing(
    serve: Serve, internal: InternalService
) -> None:
    entry = kubelet_entry(unique("id"), WHEN, "Pulling", f"{internal.host}/x/app:1")
    assert serve.event(entry).status_code == 204
    line = next(line for line in serve.log.read_text().splitlines() if "enqueued=" in line)
    assert "enqueued=0" in line and "loopback" in line
    reply = serve.post("copy_image", json={"source": f"{internal.host}/x/app:1"})
    assert reply.status_code == 200 and reply.json()["status"] == "failed"
    assert "loopback" in reply.json()["error"]
    assert internal.requests == []


def test_copy_image_writes_only_the_mapping_of_its_source(
    tmp_path: Path, source_registry: Registry, dest_registry: Registry
) -> None:
    """{"source": alpha:1, "destination": …alpha:9.9} once created tag 9.9 (issue 12 §4)."""
    image = images.single_image(unique("library/alpha"), "1", seed=1241)
    images.push(source_registry.url, image)
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    env = {"ARMIRROR_DESTINATION": prefix, "ARMIRROR_UPSTREAMS": f"docker.io={source_registry.url}"}
    server = Serve(tmp_path / "serve", env)
    source = f"docker.io/{image.repository}:1"
    mapped = f"{prefix}/{source}"
    forged = [
        mapped.replace(":1", ":9.9"),  # another tag
        f"{mapped}@{image.digest}",  # a digest the source did not name
        f"{prefix}/docker.io/library/other:1",  # another repository
    ]
    try:
        for destination in forged:
            reply = server.post("copy_image", json={"source": source, "destination": destination})
            assert reply.status_code == 200, reply.text
            assert reply.json()["status"] == "failed"
            assert "its own mapping" in reply.json()["error"]
        repo = f"{prefix.split('/', 1)[1]}/docker.io/{image.repository}"
        assert head_manifest(dest_registry.url, repo, "9.9") is None
        assert head_manifest(dest_registry.url, repo, "1") is None  # nothing copied at all
        exact = server.post("copy_image", json={"source": source, "destination": mapped})
        assert exact.json()["status"] == "copied"
    finally:
        server.stop()
    recorded = [(status, error) for s, status, error in copies(server) if s == source]
    refusals = [error for status, error in recorded if status == "failed"]
    assert len(refusals) == len(forged) and all("its own mapping" in e for e in refusals)
    assert ("copied", "None") in recorded


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("copy_image", b"[" * 5000 + b"]" * 5000, 400),
        ("request_copy", b"[" * 5000 + b"]" * 5000, 400),
        ("request_copy", b'{"images": ' + b"[" * 40 + b"]" * 40 + b"}", 400),
        ("copy_image", b"not json", 400),
        ("copy_image", b'{"source": ' + b'"x",' * 20_000 + b'"y"}', 413),
    ],
)
def test_request_bodies_that_are_too_deep_or_large(
    serve: Serve, path: str, body: bytes, status: int
) -> None:
    reply = serve.post(path, content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == status, reply.text


@pytest.mark.parametrize("path", ["copy_image", "request_copy", "on_pull_event"])
def test_chunked_bodies_over_the_cap_are_refused_not_cut(serve: Serve, path: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"images": ["'
        for _ in range(12 * 1024):
            yield b"a" * 1024
        yield b'"]}'

    reply = httpx.post(f"{serve.url}/{path}", content=chunks(), timeout=60)
    assert reply.status_code == 413, reply.text


def test_blob_redirect_to_an_internal_address_is_refused(
    source_registry: Registry, dest_registry: Registry, internal: InternalService
) -> None:
    """The transfer threads' connections are guarded too: a blob GET redirected to an
    internal address fails the copy without reaching it."""
    from registry_checks import run_copy

    image = images.single_image(unique("library/cdn"), "1", seed=1242)
    images.push(source_registry.url, image)
    with FaultProxy(source_registry.url) as proxy:
        proxy.add("GET", r"/blobs/sha256:", "serve", times=100, status=307,
                  headers={"Location": f"{internal.url}/blob"})  # fmt: skip
        results, _ = run_copy(
            [f"{image.repository}:1"],
            f"{dest_registry.host}/{unique('mirror')}",
            upstreams={"docker.io": proxy.url},
            allow_private=False,
            trusted=[dest_registry.host],
        )
    assert results[0].status == "failed"
    assert "refused" in (results[0].error or "")
    assert internal.requests == []


def test_poison_event_keeps_serving(serve: Serve) -> None:
    event = cloud_event(b"[" * 50_000)
    reply = serve.post(
        "on_pull_event", json=event, headers={"Content-Type": "application/cloudevents+json"}
    )
    assert reply.status_code in (204, 400)
    assert serve.post("copy_image", json={"source": "docker.io/ok/app:1"}).status_code == 200


def test_an_upstream_url_with_a_password_is_refused(tmp_path: Path) -> None:
    """docker.io=http://u:PASS@host once put PASS into every log line (issue 12 §2)."""
    upstream = f"docker.io=http://{USER}:{PASSWORD}@127.0.0.1:5000"
    env = cli_env(ARMIRROR_DESTINATION="127.0.0.1:5001/mirror", ARMIRROR_UPSTREAMS=upstream)
    env["ARMIRROR_STORE"] = f"duckdb:///{tmp_path / 'store.duckdb'}"
    commands = [
        ["serve", "--port", "0"],
        ["copy", "x/app:1", "--to", "127.0.0.1:5001/mirror"],
        ["copy", "x/app:1", "--to", "127.0.0.1:5001/mirror", "--upstream", upstream],
    ]
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", "armirror.cli", *command],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2, (command, result.stderr)
        assert "Docker config" in result.stderr
        assert_no_secret(result.stdout, result.stderr)


# Last: it stops the module's serve to read its store.
def test_the_log_and_the_store_hold_no_secret(
    serve: Serve, hostile: HostileRegistry, internal: InternalService
) -> None:
    for source, _ in ATTACKS:
        serve.post("copy_image", json={"source": source})
    # The echoing registry did receive the password (it is the configured docker.io).
    assert any(auth == f"Basic {BASIC}" for _, _, auth in hostile.requests)
    log = serve.stop()
    assert_no_secret(log)
    assert "Traceback" not in log
    recorded = copies(serve)
    for source, says in ATTACKS:
        errors = [error for s, status, error in recorded if s == source and status == "failed"]
        assert errors and all(says in error for error in errors), (source, errors)
    assert_no_secret(*(error for _, _, error in recorded))
    assert internal.requests == []


def test_serve_logs_one_line_per_request_and_per_copy(
    tmp_path: Path, source_registry: Registry, dest_registry: Registry
) -> None:
    """Without -v no registry request is logged; with -v each is, its URL without the
    query that holds upload state (issue 12 §2)."""
    image = images.single_image(unique("library/logged"), "1", seed=1243)
    images.push(source_registry.url, image)
    logs = []
    for n, args in enumerate([(), ("--verbose",)]):
        env = {
            "ARMIRROR_DESTINATION": f"{dest_registry.host}/{unique('mirror')}",
            "ARMIRROR_UPSTREAMS": f"docker.io={source_registry.url}",
        }
        server = Serve(tmp_path / f"serve{n}", env, args)
        try:
            source = f"docker.io/{image.repository}:1"
            assert server.post("copy_image", json={"source": source}).json()["status"] == "copied"
        finally:
            logs.append(server.stop())
    quiet, verbose = logs
    assert "HTTP Request" not in quiet
    assert len([line for line in quiet.splitlines() if "copy_image" in line]) == 2  # copy, request
    assert "POST /copy_image" in quiet
    requests = [line for line in verbose.splitlines() if "HTTP Request:" in line]
    assert any(" PUT " in line and "/blobs/uploads/" in line for line in requests), requests
    assert not any("?" in line.split('"')[0] for line in requests), requests
    assert "_state" not in verbose
