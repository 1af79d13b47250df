"""Where a registry's requests go: its mapped endpoints, Docker Hub's API host, plain HTTP
for loopback and insecure hosts, and the (host, port) the host guard exempts."""

from __future__ import annotations

import pytest
from armirror.registry.endpoints import Endpoints, host_port, is_loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LocalHost", True),
        ("localhost:5000", True),
        ("127.0.0.1", True),
        ("127.9.9.9:5000", True),
        ("::1", True),
        ("[::1]", True),
        ("[::1]:5000", True),
        ("[fd00::1]:5000", False),
        ("10.0.0.1:5000", False),
        ("localhost.corp.test", False),
        ("localhost.corp.test:5000", False),
        ("registry.corp.test:5000", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://Registry.Corp.Test./v2/", ("registry.corp.test", 443)),
        ("http://registry.corp.test/v2/", ("registry.corp.test", 80)),
        ("https://registry.corp.test:5000", ("registry.corp.test", 5000)),
        ("http://127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("https://[fd00::1]", ("fd00::1", 443)),
    ],
)
def test_host_port(url: str, expected: tuple[str, int]) -> None:
    assert host_port(url) == expected


@pytest.mark.parametrize(
    ("registry", "base"),
    [
        ("docker.io", "https://registry-1.docker.io"),
        ("Docker.IO", "https://registry-1.docker.io"),
        ("quay.io", "https://quay.io"),
        ("localhost:5000", "http://localhost:5000"),
        ("127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("registry.corp.test:5000", "http://registry.corp.test:5000"),  # named insecure
        ("Registry.Corp.Test:5000", "http://Registry.Corp.Test:5000"),
        ("registry.corp.test", "https://registry.corp.test"),  # another port: not insecure
    ],
)
def test_base_url_of_an_unmapped_registry(registry: str, base: str) -> None:
    endpoints = Endpoints(insecure=["Registry.Corp.Test:5000"])
    assert endpoints.base_url(registry) == base
    assert endpoints.candidates(registry) == (base,)


def test_mapped_endpoints_are_tried_in_order_and_the_first_takes_writes() -> None:
    endpoints = Endpoints(
        {
            "Docker.io": ["https://mirror.gcr.io/", "https://registry-1.docker.io"],
            "ghcr.io": "http://127.0.0.1:5000//",
            "quay.io": ("https://Mirror.Corp.Test/QUAY-BOX/",),
        }
    )
    assert endpoints.candidates("docker.io") == (
        "https://mirror.gcr.io",
        "https://registry-1.docker.io",
    )
    assert endpoints.base_url("DOCKER.IO") == "https://mirror.gcr.io"
    assert endpoints.candidates("GHCR.io") == ("http://127.0.0.1:5000",)
    assert endpoints.base_url("ghcr.io") == "http://127.0.0.1:5000"
    # only trailing slashes are cut: the path of a mirror is kept as written
    assert endpoints.candidates("quay.io") == ("https://Mirror.Corp.Test/QUAY-BOX",)
    assert endpoints.base_url("gcr.io") == "https://gcr.io"


def test_a_registry_mapped_to_no_endpoint_is_refused() -> None:
    with pytest.raises(ValueError) as caught:
        Endpoints({"docker.io": []})
    assert str(caught.value) == "no endpoint for docker.io"
