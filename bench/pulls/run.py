"""Benchmark `armirror pulls FILE --format json` into a fresh DuckDB store, end to end,
beside the naive shell pipeline the usual guide's approach amounts to.

    .venv/bin/python bench/pulls/run.py [--runs 5] [--entries 500000] [--baseline DIR]

``--baseline DIR`` also times another checkout's code (``DIR/functions``, e.g. a
``git worktree add`` of the commit before a change; named by DIR's last part) in the
same runs, alternating with this one, so that a change is compared on the same machine
in the same minutes.

Wall time and peak RSS come from /usr/bin/time -v per run; the medians are printed and
written to bench/.work/pulls/results.json.  The input is generated once, deterministically
(bench/pulls/generate.py, seed 4).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "bench" / ".work" / "pulls"
ARMIRROR = ROOT / ".venv" / "bin" / "armirror"
# The pattern, 'Pulling image \"[^\"]*', finds nothing in JSON, where the quote is
# escaped (\"); this is the form that matches the escaped text.
GREP = "grep -o 'Pulling image \\\\\"[^\\\\]*' {file} | sort | uniq -c"


def timed(
    command: list[str], stdout: Path, env: dict[str, str] | None = None
) -> tuple[float, int, float]:
    """Wall seconds, peak RSS in MB (the largest process) and CPU seconds (user and
    system, the command and its children): on a busy machine the CPU time moves far
    less than the wall time, so it is the fairer figure for comparing two versions."""
    with stdout.open("wb") as out:
        done = subprocess.run(
            ["/usr/bin/time", "-v", *command],
            stdout=out,
            stderr=subprocess.PIPE,
            check=True,
            env=env,
        )
    err = done.stderr.decode()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", err)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    user = re.search(r"User time \(seconds\): ([\d.]+)", err)
    system = re.search(r"System time \(seconds\): ([\d.]+)", err)
    assert wall and rss and user and system, err[-2000:]
    hours, minutes, seconds = wall.groups()
    elapsed = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    cpu = float(user.group(1)) + float(system.group(1))
    return elapsed, int(rss.group(1)) // 1024, round(cpu, 2)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--entries", type=int, default=500_000)
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="another checkout to time alongside (repeatable)",
    )
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    data = WORK / f"entries-{args.entries}.jsonl"
    if not data.exists():
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench/pulls/generate.py"),
                str(data),
                "--entries",
                str(args.entries),
            ],
            check=True,
        )
    results: dict[str, list[tuple[float, int, float]]] = {"armirror": [], "grep": []}
    trees: dict[str, dict[str, str] | None] = {"armirror": None}
    for tree in args.baseline:
        results[tree.name] = []
        trees[tree.name] = {**os.environ, "PYTHONPATH": str(tree / "functions")}
    for run in range(args.runs):
        store = WORK / f"run-{run}.duckdb"
        command = [
            str(ARMIRROR),
            "pulls",
            str(data),
            "--store",
            f"duckdb://{store}",
            "--format",
            "json",
        ]
        for name, env in trees.items():
            store.unlink(missing_ok=True)
            results[name].append(timed(command, WORK / f"{name}.json", env))
            store.unlink(missing_ok=True)
        pipeline = ["bash", "-c", GREP.format(file=data)]
        results["grep"].append(timed(pipeline, WORK / "grep.txt"))
        done = ", ".join(f"{name} {runs[-1]}" for name, runs in results.items())
        print(f"run {run + 1}: {done}", file=sys.stderr)
    summary = {}
    for name, runs in results.items():
        wall = statistics.median(w for w, _, _ in runs)
        rss = statistics.median(r for _, r, _ in runs)
        cpu = statistics.median(c for _, _, c in runs)
        summary[name] = {
            "median_wall_s": round(wall, 2),
            "median_peak_rss_mb": rss,
            "median_cpu_s": round(cpu, 2),
            "entries_per_s": round(args.entries / wall),
            "runs": runs,
        }
        print(
            f"{name:9} median wall {wall:6.2f} s  ({args.entries / wall:,.0f} entries/s)  "
            f"median peak RSS {rss} MB  median CPU {cpu:.2f} s"
        )
    (WORK / "results.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
