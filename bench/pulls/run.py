"""Benchmark `armirror pulls FILE --format json` into a fresh DuckDB store, end to end,
beside the naive shell pipeline the usual guide's approach amounts to.

    .venv/bin/python bench/pulls/run.py [--runs 5] [--entries 500000]

Wall time and peak RSS come from /usr/bin/time -v per run; the medians are printed and
written to bench/.work/pulls/results.json.  The input is generated once, deterministically
(bench/pulls/generate.py, seed 4).
"""

from __future__ import annotations

import argparse
import json
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


def timed(command: list[str], stdout: Path) -> tuple[float, int]:
    with stdout.open("wb") as out:
        done = subprocess.run(
            ["/usr/bin/time", "-v", *command], stdout=out, stderr=subprocess.PIPE, check=True
        )
    err = done.stderr.decode()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", err)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    assert wall and rss, err[-2000:]
    hours, minutes, seconds = wall.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds), int(rss.group(1)) // 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--entries", type=int, default=500_000)
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
    results: dict[str, list[tuple[float, int]]] = {"armirror": [], "grep": []}
    for run in range(args.runs):
        store = WORK / f"run-{run}.duckdb"
        store.unlink(missing_ok=True)
        command = [
            str(ARMIRROR),
            "pulls",
            str(data),
            "--store",
            f"duckdb://{store}",
            "--format",
            "json",
        ]
        results["armirror"].append(timed(command, WORK / "armirror.json"))
        store.unlink(missing_ok=True)
        pipeline = ["bash", "-c", GREP.format(file=data)]
        results["grep"].append(timed(pipeline, WORK / "grep.txt"))
        print(
            f"run {run + 1}: armirror {results['armirror'][-1]}, grep {results['grep'][-1]}",
            file=sys.stderr,
        )
    summary = {}
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        rss = statistics.median(r for _, r in runs)
        summary[name] = {
            "median_wall_s": round(wall, 2),
            "median_peak_rss_mb": rss,
            "entries_per_s": round(args.entries / wall),
            "runs": runs,
        }
        print(
            f"{name:9} median wall {wall:6.2f} s  ({args.entries / wall:,.0f} entries/s)  "
            f"median peak RSS {rss} MB"
        )
    (WORK / "results.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
