"""What verify reports and redeploy requires: images whole in the mirror, and pullers
that may read them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from armirror.cli import make_registry_client

if TYPE_CHECKING:
    from armirror.iam import PermissionFinding
    from armirror.reference import Reference
    from armirror.verify import ImageCheck


def check_images(
    pairs: list[tuple[Reference, Reference]],
    upstreams: tuple[str, ...],
    insecure: tuple[str, ...],
    jobs: int,
) -> list[ImageCheck]:
    """verify.check_images over one registry client from the shared registry options."""
    from armirror.verify import check_images as check_all

    named = [ref for pair in pairs for ref in pair]

    async def run() -> list[ImageCheck]:
        async with make_registry_client(upstreams, insecure, jobs, named=named) as client:
            return await check_all(client, pairs, jobs=jobs)

    return asyncio.run(run())


def reader_checker(
    prefix: str, iam_endpoint: str | None
) -> Callable[[list[str]], list[PermissionFinding]]:
    """iam.check_readers on ``prefix``, with policy clients made once (at
    ``iam_endpoint``, the hidden --iam-endpoint, when given; else Google's)."""
    from armirror import iam

    kwargs: dict[str, Any] = {}
    if iam_endpoint:
        kwargs["ar_client"] = iam.artifact_registry_client(endpoint=iam_endpoint)
        kwargs["projects_client"] = iam.projects_client(endpoint=iam_endpoint)

    def check(consumers: list[str]) -> list[PermissionFinding]:
        return iam.check_readers(prefix, consumers, **kwargs)

    return check
