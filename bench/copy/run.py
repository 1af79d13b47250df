"""Copy benchmark: armirror vs a skopeo loop vs a bare parallel copier, in one run.

    .venv/bin/python bench/copy/run.py [--runs 3] [--skip-huge] [--sections warm,huge]

Each cold run copies the corpus into a fresh, empty destination registry.  Wall time and
peak RSS come from wait4() on each command.  Results go to bench/.work/copy-results.json
and a markdown table on stdout for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
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


def cpu_seconds(registry: Registry) -> float:
    """CPU time (user + system) a registry process has used so far, from /proc."""
    fields = Path(f"/proc/{registry.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(cmd: list[str], *registries: Registry) -> tuple[float, float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds of one command, which must succeed,
    and the CPU seconds the given registries spent meanwhile.

    GNU time reports the peak of the command and its children; wait4() from this
    process would not do, since a forked child starts with this process's RSS.
    """
    report = WORK / "time.txt"
    before = sum(cpu_seconds(r) for r in registries)
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-o", str(report), "-f", "%M %U %S", *cmd],
        # armirror records its copies in a store of the benchmark's own, not the user's.
        env={**os.environ, "XDG_DATA_HOME": str(WORK / "xdg")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {proc.stderr[-2000:]}")
    served = sum(cpu_seconds(r) for r in registries) - before
    rss, user, system = report.read_text().split()[-3:]
    return wall, int(rss) / 1024, float(user) + float(system), served


def names(imgs: list[images.Image]) -> list[str]:
    return [f"{i.repository}:{i.tag}" for i in imgs]


def armirror_cmd(src: Registry, dst: Registry, imgs: list[images.Image]) -> list[str]:
    listing = WORK / "images.txt"
    listing.write_text("\n".join(f"docker.io/{n}" for n in names(imgs)) + "\n")
    return [
        ARMIRROR, "copy", "-f", str(listing), "--to", f"{dst.host}/mirror",
        "--upstream", f"docker.io={src.url}", "--format", "json", "-j", str(JOBS),
    ]  # fmt: skip


def armirror_no_record_cmd(src: Registry, dst: Registry, imgs: list[images.Image]) -> list[str]:
    """The copy alone: without recording the results in the store (which `copy` does by
    default, so that `report` counts them)."""
    return [*armirror_cmd(src, dst, imgs), "--no-record"]


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


def bare_verify_cmd(src: Registry, dst: Registry, imgs: list[images.Image]) -> list[str]:
    return [*bare_cmd(src, dst, imgs)[:2], "--verify", *bare_cmd(src, dst, imgs)[2:]]


def checker_cmd(src: Registry, dst: Registry, imgs: list[images.Image]) -> list[str]:
    script = str(Path(__file__).resolve().parent / "bare_checker.py")
    return [PYTHON, script, src.url, dst.url, "mirror/docker.io", str(JOBS), *names(imgs)]


def httpx_checker_cmd(src: Registry, dst: Registry, imgs: list[images.Image]) -> list[str]:
    return [*checker_cmd(src, dst, imgs)[:2], "--httpx", *checker_cmd(src, dst, imgs)[2:]]


def httpcore_checker_cmd(src: Registry, dst: Registry, imgs: list[images.Image]) -> list[str]:
    return [*checker_cmd(src, dst, imgs)[:2], "--httpcore", *checker_cmd(src, dst, imgs)[2:]]


TOOLS = {
    "armirror": armirror_cmd,
    "armirror --no-record": armirror_no_record_cmd,
    "skopeo loop": skopeo_cmd,
    "bare copier": bare_cmd,
    "bare copier --verify": bare_verify_cmd,
}
#: Yardsticks for the warm re-run: the same requests, on the standard library, on
#: httpx alone and on httpcore (the layer under httpx) alone (bench/copy/bare_checker.py).
WARM_TOOLS = {
    "armirror": armirror_cmd,
    "armirror --no-record": armirror_no_record_cmd,
    "skopeo loop": skopeo_cmd,
    "bare checker": checker_cmd,
    "bare checker --httpx": httpx_checker_cmd,
    "bare checker --httpcore": httpcore_checker_cmd,
}
SECTIONS = ("cold", "warm", "huge")


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
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated, of {', '.join(SECTIONS)} (default: all)",
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    if not sections <= set(SECTIONS):
        parser.error(f"--sections: unknown {', '.join(sorted(sections - set(SECTIONS)))}")
    if args.skip_huge:
        sections.discard("huge")
    WORK.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, list[float]]] = {}

    def record(section: str, tool: str, wall: float, rss: float, cpu: float, served: float) -> None:
        entry = results.setdefault(section, {}).setdefault(tool, [])
        entry.append(wall)
        results[section].setdefault(f"{tool} rss", []).append(rss)
        results[section].setdefault(f"{tool} client cpu", []).append(cpu)
        results[section].setdefault(f"{tool} registries cpu", []).append(served)
        print(
            f"{section:6} {tool:22} {wall:7.2f}s {rss:7.1f} MB  cpu: client {cpu:5.2f}s "
            f"registries {served:5.2f}s",
            file=sys.stderr,
        )

    cold = corpus()
    small = small_corpus()
    total = sum({b.digest: b.size for i in cold for b in i.all_blobs()}.values())
    unique = len({b.digest for i in cold for b in i.all_blobs()})
    with start_registry(WORK / "source") as src:
        seed(src, cold + small)
        print(f"corpus: {len(cold)} images, {unique} blobs", file=sys.stderr)
        for _ in range(args.runs if "cold" in sections else 0):
            for tool, make in TOOLS.items():
                with fresh_registry("dest") as dst:
                    record("cold", tool, *measure(make(src, dst, cold), src, dst))
        if "warm" in sections:
            with fresh_registry("warm-dest") as dst:
                measure(armirror_cmd(src, dst, small))  # populate once
                for _ in range(args.runs):
                    for tool, make in WARM_TOOLS.items():
                        record("warm", tool, *measure(make(src, dst, small), src, dst))
        if "huge" in sections:
            huge = [huge_layer_image()]
            seed(src, huge)
            for _ in range(args.runs):
                for tool in ("armirror", "skopeo loop"):
                    with fresh_registry("huge-dest") as dst:
                        record("huge", tool, *measure(TOOLS[tool](src, dst, huge), src, dst))

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
            unit = "MB" if tool.endswith("rss") else "CPU-s" if tool.endswith("cpu") else "s"
            print(f"| {section} | {tool} | {value:.2f} {unit} |")


if __name__ == "__main__":
    main()
