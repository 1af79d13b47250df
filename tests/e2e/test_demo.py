"""`make demo`, the README's first command, end to end as a script would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_passes_and_writes_plain_text_to_a_pipe(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARMIRROR_")}
    env.pop("NO_COLOR", None)  # not a terminal is reason enough for no colour
    env["ARMIRROR_DEMO_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "local" / "demo.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "demo passed" in done.stdout
    assert "\033" not in done.stdout + done.stderr  # no colour codes in a pipe or a log
    assert "<html" in (tmp_path / "report.html").read_text().lower()
