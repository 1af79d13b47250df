"""Scan benchmark: `armirror scan` beside the grep pipeline on a generated 5,000-file tree,
and precision/recall of both on the test corpus.  Prints medians and the commands."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import accuracy  # noqa: E402
from generate import generate  # noqa: E402

ARMIRROR = ROOT / ".venv" / "bin" / "armirror"


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, check=False, timeout=600)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tree = ROOT / "bench" / ".work" / "scan-tree"
    generate(tree, args.files)

    scan_cmd = [str(ARMIRROR), "scan", ".", "--format", "json"]
    grep_cmd = ["bash", "-c", accuracy.GREP_PIPELINE]
    timed(scan_cmd, tree)  # warm the page cache
    scan_times = [timed(scan_cmd, tree) for _ in range(args.runs)]
    grep_times = [timed(grep_cmd, tree) for _ in range(args.runs)]
    scan_median, grep_median = statistics.median(scan_times), statistics.median(grep_times)

    expected = accuracy.truth()
    ours = accuracy.score(accuracy.armirror_hits(), expected)
    grep = accuracy.score(set(accuracy.grep_hits()), expected)

    print(f"tree: {args.files} files in bench/.work/scan-tree; {args.runs} runs, medians")
    print(
        f"armirror scan: {scan_median:.2f} s = {args.files / scan_median:,.0f} files/s "
        f"(whole process, JSON to /dev/null)  [{' '.join(scan_cmd)}]"
    )
    print(
        f"grep pipeline: {grep_median:.2f} s = {args.files / grep_median:,.0f} files/s  "
        f"[{accuracy.GREP_PIPELINE}]"
    )
    print(f"accuracy on the corpus ({len(expected)} third-party references):")
    print(f"  armirror scan: precision {ours[0]:.2f}, recall {ours[1]:.2f}")
    print(f"  grep pipeline: precision {grep[0]:.2f}, recall {grep[1]:.2f}")


if __name__ == "__main__":
    main()
