"""The BigQuery emulator (PyPI local-bigquery) on 127.0.0.1, for tests, demo and bench.

:func:`start_bigquery` installs it when needed (``infra/local/bigquery-emulator.sh``: its
own Python 3.13 virtualenv under .tools/, DuckDB extensions from PyPI wheels, so it works
offline), starts it on free ports with a data directory of its own and waits until it
answers.  Point google-cloud-bigquery at ``emulator.url`` with anonymous credentials, or
set ``BIGQUERY_EMULATOR_HOST`` to it (armirror's store does the rest).
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from standins.processes import stop_process

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "infra" / "local" / "bigquery-emulator.sh"


_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class EmulatorUnavailable(RuntimeError):
    """The emulator could not be installed or started; the message says why."""


@dataclass
class BigQueryEmulator:
    url: str
    root: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        stop_process(self.process, timeout=15)

    def __enter__(self) -> BigQueryEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def install() -> None:
    """Install the emulator if it is not (fast when it is)."""
    done = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True)
    if done.returncode != 0:
        raise EmulatorUnavailable(
            f"{SCRIPT.name} install failed ({done.returncode}):\n{done.stderr[-3000:]}"
        )


def start_bigquery(root: Path, *, timeout: float = 60.0) -> BigQueryEmulator:
    """Start the emulator with its data under ``root``; stop it with ``.stop()``."""
    install()
    root.mkdir(parents=True, exist_ok=True)
    log_path = root / "emulator.log"
    log_path.write_bytes(b"")
    # Both ports 0: the kernel picks them, so no other process can take them between a
    # check and the bind; uvicorn names the HTTP port it got in its start-up line.
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            ["bash", str(SCRIPT), "serve", "0", "0", str(root / "data")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    url = None
    while True:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise EmulatorUnavailable(f"local-bigquery exited ({process.returncode}):\n{tail}")
        if url is None:
            found = _LISTENING.search(log_path.read_text(errors="replace"))
            if found is None:
                if time.monotonic() > deadline:
                    process.kill()
                    process.wait()
                    raise EmulatorUnavailable("local-bigquery did not start listening")
                time.sleep(0.1)
                continue
            url = f"http://127.0.0.1:{found.group(1)}"
        try:
            httpx.get(f"{url}/bigquery/v2/projects/local/datasets", timeout=2)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise EmulatorUnavailable(f"local-bigquery did not answer on {url}") from None
            time.sleep(0.1)
    return BigQueryEmulator(url=url, root=root, process=process)
