"""`armirror copy` off a terminal: a plain progress line on stderr every few seconds.

The source sits behind the latency relay with its bandwidth capped, so the copy takes
at least two seconds whatever the machine: lines every 0.2 s must show up, each saying
how far the run is.  (The display itself is tested in tests/unit/test_cli_display.py.)
"""

from __future__ import annotations

import re
import subprocess

from registry_checks import cli_command, cli_env, unique
from standins import images
from standins.registry import Registry
from standins.relay import LatencyRelay

LINE = re.compile(
    r"^copying: [01]/1 images, [\d.]+ \w?B of [\d.]+ \w?B\+?, [\d.]+ \w?B/s, ETA \S+$"
)


def test_a_copy_without_a_terminal_prints_a_progress_line_every_interval(
    source_registry: Registry, dest_registry: Registry
) -> None:
    image = images.single_image(unique("library/slow"), "1", seed=1851, layer_sizes=(2_000_000,))
    images.push(source_registry.url, image)
    # 1 MB/s: the 2 MB layer alone takes two seconds to come through.
    with LatencyRelay(source_registry.host, delay=0.005, rate=1_000_000) as relay:
        done = subprocess.run(
            cli_command(
                f"docker.io/{image.repository}:1",
                "--to",
                f"{dest_registry.host}/{unique('mirror')}",
                "--upstream",
                f"docker.io={relay.url_for(source_registry.host)}",
                "--no-record",
            ),
            capture_output=True,
            text=True,
            timeout=120,
            env=cli_env(ARMIRROR_PROGRESS_INTERVAL="0.2"),
        )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("copying:")]
    assert len(lines) >= 5, done.stderr  # 2 s of transfer at one line per 0.2 s
    assert all(LINE.match(line) for line in lines), lines
    assert "\x1b[" not in done.stderr  # no terminal codes off a terminal
