"""The HTML report in a real browser: headless Chromium renders the charts we expect."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from armirror.report import CLASS_COLOURS, Progress, html_report, terminal_summary
from PIL import Image

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def sample_progress() -> Progress:
    days = [date(2026, 10, 1) + timedelta(days=n) for n in range(7)]
    return Progress(
        since=days[0],
        until=days[-1],
        days=days,
        pulls={
            "third_party": [40, 38, 30, 12, 6, 3, 1],
            "artifact_registry": [0, 2, 10, 28, 34, 37, 39],
            "other_google": [5, 5, 5, 5, 5, 5, 5],
        },
        rate_limited=[4, 3, 0, 1, 0, 0, 0],
        top_third_party=[
            {
                "reference": "docker.io/library/nginx:1.27",
                "pulls": 21,
                "rate_limited": 5,
                "clusters": 2,
            },
        ],
        copies={"copied": 12, "failed": 1},
    )


def chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", f"--user-data-dir={user_data}", *args,
        ],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by make test")
def test_report_renders_its_charts_in_chromium(tmp_path: Path) -> None:
    progress = sample_progress()
    page = tmp_path / "report.html"
    page.write_text(html_report(progress))
    text = page.read_text()
    # Self-contained: nothing fetched, nothing run.
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org", "")
    assert "https://" not in text and "@import" not in text and "url(" not in text

    dom = chromium("--dump-dom", page.as_uri(), user_data=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr
    bars = re.findall(r'class="bar (\w+)"[^>]*data-day="([\d-]+)" data-value="(\d+)"', dom.stdout)
    rendered: dict[str, list[int]] = {}
    for series, _day, value in bars:
        rendered.setdefault(series, []).append(int(value))
    assert rendered["third_party"] == progress.pulls["third_party"]
    assert rendered["artifact_registry"] == [v for v in progress.pulls["artifact_registry"] if v]
    assert 'id="share-chart"' in dom.stdout and 'id="ratelimit-chart"' in dom.stdout
    assert "docker.io/library/nginx:1.27" in dom.stdout

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    taken = chromium(
        f"--screenshot={shot}", "--window-size=1100,1500", "--hide-scrollbars", page.as_uri(),
        user_data=tmp_path / "profile-shot",
    )  # fmt: skip
    assert taken.returncode == 0 and shot.exists(), taken.stderr
    # The bars were really painted: both registry colours appear in the screenshot.
    pixels = set(Image.open(shot).convert("RGB").get_flattened_data())
    for series in ("third_party", "artifact_registry"):
        colour = CLASS_COLOURS[series].lstrip("#")
        rgb = tuple(int(colour[i : i + 2], 16) for i in (0, 2, 4))
        assert rgb in pixels, f"{series} bars not painted"


def test_terminal_summary_shows_share_and_sparklines() -> None:
    summary = terminal_summary(sample_progress())
    assert "still third-party: 41%" in summary  # 130 of 315 pulls
    assert "▁" in summary and "█" in summary
    assert "docker.io/library/nginx:1.27" in summary and " 2 cluster(s)" in summary
    assert "12 copied" in summary and "1 failed" in summary
