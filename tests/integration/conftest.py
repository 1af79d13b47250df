"""Fixtures the integration tests share: the pipeline harness, and the registries behind
the fault proxy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FaultProxy
from pipeline_support import Harness
from standins.registry import Registry


@pytest.fixture
def harness(
    tmp_path: Path, source_registry: Registry, dest_registry: Registry
) -> Iterator[Callable[..., Harness]]:
    """Makes pipelines (see :class:`pipeline_support.Harness`): upstream docker.io is the
    source registry unless ``upstream`` names another URL (a fault proxy, a relay); the
    mirror lives on the destination registry unless ``destination`` names another host."""
    made: list[Harness] = []

    def make(
        threshold: int = 1,
        upstream: str | None = None,
        destination: str | None = None,
        **settings: Any,
    ) -> Harness:
        made.append(
            Harness(
                tmp_path,
                upstream or source_registry.url,
                destination or dest_registry.host,
                threshold,
                **settings,
            )
        )
        return made[-1]

    yield make
    for harness_ in made:
        harness_.close()


@pytest.fixture
def dest_proxy(dest_registry: Registry) -> Iterator[FaultProxy]:
    """The destination behind the fault proxy, its upload locations pointing back at it."""
    with FaultProxy(dest_registry.url, rewrite_location=True) as proxy:
        yield proxy


@pytest.fixture
def source_proxy(source_registry: Registry) -> Iterator[FaultProxy]:
    """The source behind the fault proxy."""
    with FaultProxy(source_registry.url) as proxy:
        yield proxy
