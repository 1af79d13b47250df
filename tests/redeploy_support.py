"""What the redeploy tests share: a real mirror with some images in it, and a verify step
that reads it with armirror's registry client (the one the CLI uses)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from armirror.reference import Reference, destination_for, parse
from armirror.registry import RegistryClient, copy_images
from armirror.verify import ImageCheck, check_images
from registry_checks import unique
from standins import images
from standins.registry import Registry


@dataclass
class Mirror:
    """Images in a stand-in Docker Hub: ``ready`` copied to the mirror, ``absent`` not."""

    prefix: str
    upstreams: dict[str, str]
    ready: list[str]  # familiar names, as a workload writes them
    absent: list[str]

    def mirrored(self, image: str) -> str:
        return str(destination_for(parse(image), self.prefix))

    def check(self, pairs: list[tuple[Reference, Reference]]) -> list[ImageCheck]:
        async def run() -> list[ImageCheck]:
            async with RegistryClient(upstreams=self.upstreams, allow_private_hosts=True) as client:
                return await check_images(client, pairs)

        return asyncio.run(run())


def make_mirror(source: Registry, destination: Registry, *, ready: int = 3, absent: int = 1) -> Mirror:  # fmt: skip
    """Push ``ready + absent`` small images to ``source`` and copy the first ``ready``."""
    upstreams = {"docker.io": source.url}
    prefix = f"{destination.host}/{unique('mirror')}"
    names = []
    for n in range(ready + absent):
        image = images.single_image(unique(f"library/app{n}"), "1.0", seed=1700 + n)
        images.push(source.url, image)
        names.append(f"{image.repository.removeprefix('library/')}:1.0")
    pairs = [(parse(name), destination_for(parse(name), prefix)) for name in names[:ready]]

    async def copy() -> None:
        async with RegistryClient(upstreams=upstreams, allow_private_hosts=True) as client:
            results = await copy_images(pairs, client=client)
        assert all(r.status == "copied" for r in results), results

    asyncio.run(copy())
    return Mirror(prefix, upstreams, names[:ready], names[ready:])
