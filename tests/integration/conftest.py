"""Fixtures the integration tests of the pipeline share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
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
