"""Fixtures the end-to-end tests share: `armirror serve` against the stand-in registries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_checks import unique
from serve_process import Serve
from standins.registry import Registry


@pytest.fixture
def serve_settings() -> dict[str, str]:
    """What a test module adds to the environment of :func:`serve` (override it there)."""
    return {}


@pytest.fixture
def serve(
    tmp_path: Path,
    source_registry: Registry,
    dest_registry: Registry,
    serve_settings: dict[str, str],
) -> Iterator[Serve]:
    """serve with docker.io at the source registry and a new mirror prefix (``.prefix``) in
    the destination; its log must hold no traceback when it stops."""
    prefix = f"{dest_registry.host}/{unique('mirror')}"
    env = {
        "ARMIRROR_DESTINATION": prefix,
        "ARMIRROR_UPSTREAMS": f"docker.io={source_registry.url}",
        **serve_settings,
    }
    server = Serve(tmp_path / "serve", env)
    server.prefix = prefix  # type: ignore[attr-defined]
    yield server
    assert "Traceback" not in server.stop()
