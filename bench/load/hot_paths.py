"""Checks of the ingest path's speed details, run before the load benchmark.

These are not behaviour a user sees, so they are not tests: they are why the load
benchmark's figures are what they are (bench/RESULTS.md "Load"), and a change that undoes
one shows here before it shows as a slower run.

- every RegistryClient shares one TLS context (building one reads the CA bundle, ~16 ms);
- the pipeline's "already mirrored" HEADs from many request threads share one client;
- the pull_count SQL is built once per reference and dialect, not per event.

    .venv/bin/python bench/load/hot_paths.py
"""

from __future__ import annotations

import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from armirror.config import Settings
from armirror.pipeline import Pipeline
from armirror.queue import CopyJob
from armirror.reference import parse
from armirror.registry import RegistryClient
from armirror.registry.pinned import tls_context
from armirror.store.duckdb import DuckDBStore
from armirror.store.queries import Queries


def shared_tls_context() -> bool:
    a, b = RegistryClient(), RegistryClient()
    contexts = [
        c._client(h)._transport._pool._ssl_context for c, h in ((a, "quay.io"), (b, "ghcr.io"))
    ]  # type: ignore[attr-defined]
    return all(context is tls_context() for context in contexts)


class _CountingClient:
    made = 0

    def __init__(self) -> None:
        _CountingClient.made += 1

    async def head_manifest(self, ref: Any) -> Any:
        return None


class _Queue:
    def enqueue(self, job: CopyJob) -> bool:
        return True

    def close(self) -> None:
        pass


def one_head_client() -> bool:
    _CountingClient.made = 0
    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBStore(Path(tmp) / "s.duckdb")
        settings = Settings(destination="127.0.0.1:1/m")
        pipeline = Pipeline(settings, store, _Queue(), _CountingClient)  # type: ignore[arg-type]
        threads = [
            threading.Thread(target=pipeline.is_mirrored, args=(parse(f"127.0.0.1:1/m/x{n}:1"),))
            for n in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        store.close()
    return _CountingClient.made == 1


def pull_count_sql_cached() -> bool:
    first = Queries("duckdb").pull_count("nginx", None)
    return (
        Queries("duckdb").pull_count("nginx", None) is first
        and Queries("bigquery", "p", "d").pull_count("nginx", None) != first
    )


CHECKS: dict[str, Callable[[], bool]] = {
    "one TLS context for every registry client": shared_tls_context,
    "one client for the pipeline's mirrored HEADs": one_head_client,
    "pull_count SQL built once per reference": pull_count_sql_cached,
}


def main() -> int:
    failed = 0
    for name, check in CHECKS.items():
        ok = check()
        failed += not ok
        print(f"{'ok  ' if ok else 'LOST'} {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
