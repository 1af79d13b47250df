"""`armirror serve` under a sampling profiler (bench/load/run.py --profile).

cProfile follows one thread (and in Python 3.12 only one profiler may be active in a
process), while werkzeug serves each connection on its own thread; so this samples every
thread's stack each 5 ms instead.  When serve stops, the functions most often on a
request thread's stack (inclusive) and at its top (exclusive) are written to the file
named by ARMIRROR_BENCH_PROFILE.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter

from armirror import cli

INTERVAL = 0.005
inclusive: Counter[str] = Counter()
exclusive: Counter[str] = Counter()
samples = 0
stop = threading.Event()


def _sample() -> None:
    global samples
    me = threading.get_ident()
    names = {t.ident: t.name for t in threading.enumerate()}
    while not stop.wait(INTERVAL):
        for ident, frame in sys._current_frames().items():
            if ident == me or not names.get(ident, "Thread-").startswith("Thread-"):
                names = {t.ident: t.name for t in threading.enumerate()}
                if ident == me or not names.get(ident, "Thread-").startswith("Thread-"):
                    continue  # only werkzeug's request threads ("Thread-N (process_…)")
            seen = set()
            leaf = True
            while frame is not None:
                code = frame.f_code
                where = code.co_filename.split("site-packages/")[-1]
                key = f"{where}:{code.co_firstlineno}({code.co_name})"
                if leaf:
                    exclusive[key] += 1
                    leaf = False
                if key not in seen:
                    inclusive[key] += 1
                    seen.add(key)
                frame = frame.f_back
            samples += 1


def _dump() -> None:
    target = os.environ.get("ARMIRROR_BENCH_PROFILE")
    if not target:
        return
    lines = [f"{samples} request-thread samples every {INTERVAL * 1000:.0f} ms", "", "inclusive:"]
    lines += [f"{n:7d} {n / max(samples, 1):6.1%} {k}" for k, n in inclusive.most_common(60)]
    lines += ["", "exclusive:"]
    lines += [f"{n:7d} {n / max(samples, 1):6.1%} {k}" for k, n in exclusive.most_common(40)]
    with open(target, "w") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sampler = threading.Thread(target=_sample, name="sampler", daemon=True)
    sampler.start()
    try:
        cli.cli.main(sys.argv[1:], prog_name="armirror", standalone_mode=False)
    finally:
        stop.set()
        sampler.join(1)
        _dump()
