"""`armirror serve` in a subprocess, for the end-to-end tests: the four functions in one
process on 127.0.0.1, with its own DuckDB store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from registry_checks import ROOT
from standins.logentries import cloud_event
from standins.ports import wait_for_ports


class Serve:
    """`armirror serve` in a subprocess, stopped with SIGTERM like Cloud Run stops it."""

    def __init__(self, workdir: Path, env: dict[str, str], args: tuple[str, ...] = ()) -> None:
        workdir.mkdir()
        self.store_path = workdir / "armirror.duckdb"
        self.log = workdir / "serve.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ARMIRROR_")}
        full_env.update({"ARMIRROR_STORE": f"duckdb:///{self.store_path}", **env})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "armirror.cli", "serve", "--port", "0", *args],
            env=full_env, cwd=ROOT, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        alive = lambda: self.process.poll() is None  # noqa: E731
        (self.port,) = wait_for_ports(self.process.pid, 1, alive=alive, timeout=30, what="serve")
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(f"{self.url}/{path}", timeout=60, **kwargs)

    def event(self, entry: dict[str, Any] | bytes, event_id: str = "1") -> httpx.Response:
        return self.post(
            "on_pull_event",
            json=cloud_event(entry, event_id),
            headers={"Content-Type": "application/cloudevents+json"},
        )

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)
        return self.log.read_text()
