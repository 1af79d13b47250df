"""A badly configured deployment fails to start: functions-framework exits with the reason.

functions/main.py validates the configuration when imported.  Before, functions-framework
started and listened with ARMIRROR_STORE=nonsense:// and answered every request with a
500 ConfigError: in the cloud Pub/Sub would retry each event until it was dead-lettered,
and the deployment would look healthy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from standins.registry import free_port

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "ARMIRROR_DESTINATION": "europe-docker.pkg.dev/platform/armirror",
    "ARMIRROR_STORE": "bigquery://platform/armirror",
    "ARMIRROR_QUEUE": "cloudtasks://projects/platform/locations/europe-west1/queues/armirror-copy",
    "ARMIRROR_COPY_URL": "https://europe-west1-platform.cloudfunctions.net/armirror-copy-image",
    "ARMIRROR_TASKS_SERVICE_ACCOUNT": "armirror-tasks@platform.iam.gserviceaccount.com",
}


def start(target: str, signature: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).with_name("functions-framework")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARMIRROR_")}
    return subprocess.run(
        [
            str(binary),
            f"--target={target}",
            f"--source={ROOT / 'functions' / 'main.py'}",
            f"--signature-type={signature}",
            "--host=127.0.0.1",
            f"--port={free_port()}",
        ],
        cwd=ROOT / "functions",
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,  # a server that started would run until this kills it: a failure
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ARMIRROR_STORE": "nonsense://"}, "ARMIRROR_STORE: expected duckdb:///PATH or bigquery://PROJECT/DATASET, got 'nonsense://'"),
        ({"ARMIRROR_STORE": "bigquery://platform"}, "ARMIRROR_STORE: expected bigquery://PROJECT/DATASET"),
        ({"ARMIRROR_DESTINATION": ""}, "missing required setting(s): ARMIRROR_DESTINATION"),
        ({"ARMIRROR_QUEUE": "cloudtasks://projects/platform/queues/q"}, "ARMIRROR_QUEUE / ARMIRROR_COPY_URL: Cloud Tasks queue URL must be"),
        ({"ARMIRROR_COPY_URL": "copy-image"}, "copy URL must be an http(s) URL"),
        ({"ARMIRROR_MIRROR_THRESHOLD": "0"}, "ARMIRROR_MIRROR_THRESHOLD: must be at least 1"),
    ],
    ids=["nonsense-store", "store-without-dataset", "no-destination", "bad-queue", "bad-copy-url", "threshold"],
)  # fmt: skip
def test_a_bad_configuration_stops_the_function_at_start(
    change: dict[str, str], message: str
) -> None:
    result = start("request_copy", "http", {**GOOD, **change})
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"armirror: configuration error, not starting: {lines[-1].split(': ', 2)[-1]}"]
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_the_cloudevent_function_stops_too() -> None:
    result = start("on_pull_event", "cloudevent", {**GOOD, "ARMIRROR_STORE": "nonsense://"})
    assert result.returncode == 2
    assert "ARMIRROR_STORE" in result.stderr and "Traceback" not in result.stderr
