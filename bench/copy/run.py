"""Copy benchmark: armirror vs a skopeo loop vs a bare parallel copier, in one run.

    .venv/bin/python bench/copy/run.py [--runs 3] [--skip-huge]

Each cold run copies the corpus into a fresh, empty destination registry.  Wall time and
peak RSS come from wait4() on each command.  Results go to bench/.work/copy-results.json
and a markdown table on stdout for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra" / "local"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import corpus, huge_layer_image, small_corpus  # noqa: E402
from standins import images  # noqa: E402
from standins.registry import Registry, start_registry  # noqa: E402

WORK = ROOT / "bench" / ".work" / "copy"
ARMIRROR = str(ROOT / ".venv" / "bin" / "armirror")
PYTHON = str(ROOT / ".venv" / "bin" / "python")
JOBS = 8


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command, which must succeed.

    GNU time reports the peak of the command and its children; wait4() from this
    process would not do, since a forked child starts with this process's RSS.
    """
    report = WORK / "time.txt"
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-o", str(report), "-f", "%M", *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {proc.stderr[-2000:]}")
    return wall, int(report.read_text().split()[-1]) / 1024


def names(imgs: list[images.Image]) -> list[str]:
    return [f"{i.repository}:{i.tag}" for i in imgs]


def armirror_cmd(src: Registry, dst: Registry, imgs: list[images.Image]) -> list[str]:
    listing = WORK / "images.txt"
    listing.write_text("\n".join(f"docker.io/{n}" for n in names(imgs)) + "\n")
    return [
        ARMIRROR, "copy", "-f", str(listing), "--to", f"{dst.host}/mirror",
        "--upstream", f"docker.io={src.url}", "--format", "json", "-j", str(JOBS),
    ]  # fmt: skip


def skopeo_cmd(src: Registry, dst: Registry, imgs: list[images.Image]) -> list[str]:
    lines = [
        "set -e",
        *(
            "skopeo copy -q --all --preserve-digests --src-tls-verify=false "
            f"--dest-tls-verify=false docker://{src.host}/{n} "
            f"docker://{dst.host}/mirror/docker.io/{n}"
            for n in names(imgs)
        ),
    ]
    return ["bash", "-c", "\n".join(lines)]


def bare_cmd(src: Registry, dst: Registry, imgs: list[images.Image]) -> list[str]:
    script = str(Path(__file__).resolve().parent / "bare_copier.py")
    return [PYTHON, script, src.url, dst.url, "mirror/docker.io", str(JOBS), *names(imgs)]


TOOLS = {"armirror": armirror_cmd, "skopeo loop": skopeo_cmd, "bare copier": bare_cmd}


def fresh_registry(name: str) -> Registry:
    root = WORK / name
    shutil.rmtree(root, ignore_errors=True)
    return start_registry(root)


def seed(src: Registry, imgs: list[images.Image]) -> None:
    for image in imgs:
        images.push(src.url, image)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-huge", action="store_true")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, list[float]]] = {}

    def record(section: str, tool: str, wall: float, rss: float) -> None:
        entry = results.setdefault(section, {}).setdefault(tool, [])
        entry.append(wall)
        results[section].setdefault(f"{tool} rss", []).append(rss)
        print(f"{section:6} {tool:12} {wall:7.2f}s {rss:7.1f} MB", file=sys.stderr)

    cold = corpus()
    small = small_corpus()
    total = sum({b.digest: b.size for i in cold for b in i.all_blobs()}.values())
    unique = len({b.digest for i in cold for b in i.all_blobs()})
    with start_registry(WORK / "source") as src:
        seed(src, cold + small)
        print(f"corpus: {len(cold)} images, {unique} blobs", file=sys.stderr)
        for _ in range(args.runs):
            for tool, make in TOOLS.items():
                with fresh_registry("dest") as dst:
                    record("cold", tool, *measure(make(src, dst, cold)))
        with fresh_registry("warm-dest") as dst:
            measure(armirror_cmd(src, dst, small))  # populate once
            for _ in range(args.runs):
                for tool in ("armirror", "skopeo loop"):
                    record("warm", tool, *measure(TOOLS[tool](src, dst, small)))
        if not args.skip_huge:
            huge = [huge_layer_image()]
            seed(src, huge)
            for _ in range(args.runs):
                for tool in ("armirror", "skopeo loop"):
                    with fresh_registry("huge-dest") as dst:
                        record("huge", tool, *measure(TOOLS[tool](src, dst, huge)))

    summary = {
        section: {tool: statistics.median(values) for tool, values in tools.items()}
        for section, tools in results.items()
    }
    (WORK / "copy-results.json").write_text(
        json.dumps({"runs": results, "median": summary, "corpus_bytes": total}, indent=2)
    )
    print(f"corpus: {len(cold)} images, {unique} distinct blobs, {total / 1e6:.0f} MB")
    for section, tools in summary.items():
        for tool, value in tools.items():
            unit = "MB" if tool.endswith("rss") else "s"
            print(f"| {section} | {tool} | {value:.2f} {unit} |")


if __name__ == "__main__":
    main()
