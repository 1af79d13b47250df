"""Time one ``refresh`` over the mirrored tags already recorded in a DuckDB store.

    python bench/copy/refresh_wan.py --store PATH --destination PREFIX \
        --upstream REGISTRY=URL [--upstream ...] [--concurrency 32]

Builds the pipeline the way ``armirror serve`` does (the DuckDB store, a local queue,
the registry client from the settings) and prints one JSON object: the seconds the
refresh call took, and its report's counts.  The queue is never started, so the
re-copies it queues are counted and not run.
"""

from __future__ import annotations

import argparse
import json
import time

from armirror.config import Settings, parse_upstreams
from armirror.pipeline import Pipeline
from armirror.queue.local import Attempt, LocalQueue
from armirror.store.duckdb import DuckDBStore


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--destination", required=True)
    parser.add_argument("--upstream", action="append", default=[])
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    settings = Settings(
        destination=args.destination,
        upstreams=parse_upstreams(args.upstream, "--upstream"),
        refresh_concurrency=args.concurrency,
    )
    store = DuckDBStore(args.store)
    queue = LocalQueue(lambda job: Attempt(done=True))
    pipeline = Pipeline(settings, store, queue)
    start = time.perf_counter()
    report = pipeline.refresh()
    seconds = time.perf_counter() - start
    store.close()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "checked": report["checked"],
                "changed": len(report["changed"]),
                "unchanged": report["unchanged"],
                "skipped": len(report["skipped"]),
            }
        )
    )


if __name__ == "__main__":
    main()
