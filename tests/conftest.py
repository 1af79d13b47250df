"""Fixtures shared by every test: real local registries from infra/local/standins."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "infra" / "local"))

from faultproxy import FaultProxy  # noqa: E402
from standins.registry import Registry, start_registry  # noqa: E402
from standins.token_server import TokenServer  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def private_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Commands that default to $XDG_DATA_HOME/armirror/armirror.duckdb (copy records its
    results there) get a directory of this test run's own, never the user's file, which
    another run or `armirror serve` may hold open."""
    import os

    directory = tmp_path_factory.mktemp("xdg-data")
    previous = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(directory)
    yield directory
    if previous is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = previous


@pytest.fixture(scope="session")
def source_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous registry playing Docker Hub (map docker.io to its URL)."""
    with start_registry(tmp_path_factory.mktemp("source-registry")) as registry:
        yield registry


@pytest.fixture(scope="session")
def dest_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous registry playing Artifact Registry."""
    with start_registry(tmp_path_factory.mktemp("dest-registry")) as registry:
        yield registry


@pytest.fixture
def hub(source_registry: Registry) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the source registry: Docker Hub as armirror
    sees it, counting every request and failing the ones a test asks it to."""
    with FaultProxy(source_registry.url) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def htpasswd_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry that wants basic credentials (user armirror, password s3cret)."""
    with start_registry(tmp_path_factory.mktemp("htpasswd-registry"), auth="htpasswd") as registry:
        yield registry


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry behind a bearer token server; anonymous callers may pull only."""
    root = tmp_path_factory.mktemp("token-registry")
    server = TokenServer(root / "token", anonymous_pull=True)
    with start_registry(root, auth="token", token_server=server) as registry:
        yield registry
