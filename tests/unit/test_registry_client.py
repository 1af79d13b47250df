"""RegistryClient decisions that read the registry's answer, through httpx.MockTransport.

The registry itself is played by a function here because these tests pin down one
decision each (which answers put_manifest retries, how options are checked); the
integration suites run the same client against real registries.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from armirror.config import Settings
from armirror.reference import parse
from armirror.registry import PermanentError, RegistryClient, RetryPolicy
from armirror.registry.factory import client_from_settings
from armirror.registry.manifest import OCI_MANIFEST, parse_manifest
from registry_checks import credentials

MANIFEST = parse_manifest(
    json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode(),
    OCI_MANIFEST,
    None,
)


def errors(code: str, message: str) -> dict[str, object]:
    return {"errors": [{"code": code, "message": message}]}


def push(answers: list[httpx.Response]) -> tuple[int, Exception | None]:
    """put_manifest against a registry giving ``answers`` in turn: (PUTs sent, error)."""
    puts = 0

    def registry(request: httpx.Request) -> httpx.Response:
        nonlocal puts
        puts += 1
        return answers[min(puts, len(answers)) - 1]

    async def main() -> Exception | None:
        async with RegistryClient(
            credentials=credentials(),
            retry=RetryPolicy(attempts=4, base_delay=0, max_delay=0),
            transport=httpx.MockTransport(registry),
        ) as client:
            try:
                await client.put_manifest(parse("registry.test/team/app:1"), "1", MANIFEST)
            except PermanentError as exc:
                return exc
        return None

    error = asyncio.run(main())
    return puts, error


def test_put_manifest_retries_manifest_blob_unknown_by_its_code() -> None:
    unknown = httpx.Response(400, json=errors("MANIFEST_BLOB_UNKNOWN", "blob unknown"))
    stored = httpx.Response(201, headers={"Docker-Content-Digest": MANIFEST.digest})
    assert push([unknown, unknown, stored]) == (3, None)


def test_put_manifest_does_not_read_the_message_text() -> None:
    # Another code whose message mentions BLOB_UNKNOWN is not retried (it once was:
    # the decision searched the message).
    invalid = httpx.Response(400, json=errors("MANIFEST_INVALID", "BLOB_UNKNOWN sha256:x"))
    puts, error = push([invalid])
    assert puts == 1
    assert error is not None and error.codes == ("MANIFEST_INVALID",)  # type: ignore[attr-defined]


def test_put_manifest_blob_unknown_stops_within_the_budget() -> None:
    unknown = httpx.Response(400, json=errors("MANIFEST_BLOB_UNKNOWN", "blob unknown"))
    puts, error = push([unknown])
    assert puts == 4 and error is not None


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"blob_threads": 0}, "blob_threads"),
        ({"max_connections": 0}, "max_connections"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_client_refuses_nonsense_options(kwargs: dict[str, int], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RegistryClient(**kwargs)  # type: ignore[arg-type]


def test_client_from_settings() -> None:
    settings = Settings(upstreams={"docker.io": "https://mirror.gcr.io"})
    client = client_from_settings(settings, jobs=3)
    assert client.base_url("docker.io") == "https://mirror.gcr.io"
    assert client.base_url("quay.io") == "https://quay.io"
    asyncio.run(client.aclose())
    with pytest.raises(ValueError, match="jobs"):
        client_from_settings(settings, jobs=0)
