"""The copy benchmark's corpus: 12 images (3 multi-arch), shared base layers, ~500 MB.

Deterministic (seeded), so every run and every machine copies the same bytes.
"""

from __future__ import annotations

from standins import images

MB = 1_000_000


def corpus() -> list[images.Image]:
    debian = [images.generated_layer(7001, 30 * MB)]
    alpine = [images.generated_layer(7002, 4 * MB)]
    found: list[images.Image] = []
    for n in range(9):
        base = debian if n % 3 else alpine
        found.append(
            images.single_image(
                f"library/app{n}",
                "1.0",
                seed=100 + n,
                layer_sizes=(22 * MB, 9 * MB, 64_000),
                shared=base,
                oci=n % 2 == 0,
            )
        )
    for n in range(3):
        found.append(
            images.multi_arch_image(
                f"library/multi{n}",
                "2.0",
                seed=200 + n,
                layer_sizes=(21 * MB, 12 * MB),
                shared=debian,
                oci=n != 1,
            )
        )
    return found


def small_corpus(count: int = 100) -> list[images.Image]:
    """Many tiny images for the warm re-run benchmark."""
    return [
        images.single_image(f"library/small{n}", "1", seed=5000 + n, layer_sizes=(2048,))
        for n in range(count)
    ]


def huge_layer_image() -> images.Image:
    """One image with a single 1 GiB layer, for peak memory."""
    return images.single_image("library/huge", "1", seed=9001, layer_sizes=(1 << 30,), oci=True)
