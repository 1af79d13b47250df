"""The HTML report in a real browser: headless Chromium renders the charts we expect."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from armirror.report import CLASS_COLOURS, Progress, html_report, terminal_summary
from armirror.report.charts import nice_ticks
from PIL import Image

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def sample_progress() -> Progress:
    """Eight days; the fourth has no data at all (the log export missed it)."""
    days = [date(2026, 10, 1) + timedelta(days=n) for n in range(8)]
    return Progress(
        since=days[0],
        until=days[-1],
        days=days,
        pulls={
            "third_party": [40, 38, 30, None, 12, 6, 3, 1],
            "artifact_registry": [0, 2, 10, None, 28, 34, 37, 39],
            "other_google": [5, 5, 5, None, 5, 5, 5, 5],
        },
        rate_limited=[4, 3, 0, None, 1, 0, 0, 0],
        top_third_party=[
            {
                "reference": "docker.io/library/nginx:1.27",
                "pulls": 21,
                "rate_limited": 5,
                "clusters": 2,
                "last_seen": "2026-10-08T09:12:00+00:00",
                "mirrored": True,
            },
            {
                "reference": "quay.io/prometheus/node-exporter:v1.8.0",
                "pulls": 9,
                "rate_limited": 0,
                "clusters": 1,
                "last_seen": "2026-10-07T17:40:00+00:00",
                "mirrored": False,
            },
        ],
        workloads=[
            {
                "cluster": "blue",
                "namespace": "payments",
                "pulls": 80,
                "rate_limited": 6,
                "images": 3,
            },
            {"cluster": "green", "namespace": "web", "pulls": 50, "rate_limited": 2, "images": 2},
        ],
        copies={"copied": 12, "failed": 1},
        redeploys=[
            {
                "day": "2026-10-05",
                "at": "2026-10-05T09:30:00+00:00",
                "workload": "Deployment shop/web",
                "platform": "gke",
                "action": "moved",
                "containers": 2,
            },
        ],
        data_first=days[0],
        data_last=days[-1],
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
    assert rendered["third_party"] == [v for v in progress.pulls["third_party"] if v]
    assert rendered["artifact_registry"] == [v for v in progress.pulls["artifact_registry"] if v]
    assert 'id="share-chart"' in dom.stdout and 'id="ratelimit-chart"' in dom.stdout
    assert "docker.io/library/nginx:1.27" in dom.stdout
    # The day without data is a gap: a pale band, no bar, and each line breaks there.
    assert re.findall(r'class="no-data" data-day="([\d-]+)"', dom.stdout) == ["2026-10-04"]
    assert len(re.findall(r'<polyline class="series" data-series="share-chart"', dom.stdout)) == 2
    # Headline shares: last day, last 7 days (one of them without data), window.
    assert re.search(r'id="kpi-share-day"><b>2%</b>', dom.stdout)  # 1 of 45
    assert re.search(r'id="kpi-share-week"><b>33%</b>', dom.stdout)  # 90 of 270
    assert re.search(r'id="kpi-share"><b>41%</b>', dom.stdout)  # 130 of 315
    # Top images: the mirrored one is marked, each shows when it was last seen.
    assert re.search(r"nginx:1.27 <span class=\"tag\">mirrored</span>", dom.stdout)
    assert "2026-10-08 09:12" in dom.stdout
    # The day a workload moved onto the mirror is marked on the pulls chart.
    assert re.findall(r'<line class="mark" data-day="([\d-]+)"', dom.stdout) == ["2026-10-05"]
    assert "moved onto the mirror: Deployment shop/web" in dom.stdout
    # Who still pulls from third-party registries.
    assert re.search(r"<td>blue</td><td>payments</td><td class=\"?n\"?>80</td>", dom.stdout)
    # The y axis is labelled with round numbers only.
    ticks = re.findall(r'<text class="tick"[^>]*>([^<]+)</text>', dom.stdout)
    assert ticks and all(re.fullmatch(r"\d+%?|0", t.replace(",", "")) for t in ticks), ticks

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
    assert "still third-party: 2% on 2026-10-08" in summary
    assert "33% last 7 days, 41% window" in summary  # 90 of 270, 130 of 315 pulls
    assert "▁" in summary and "█" in summary
    assert "docker.io/library/nginx:1.27" in summary and " 2 cluster(s)" in summary
    assert "12 copied" in summary and "1 failed" in summary


@pytest.mark.parametrize(
    ("top", "ticks"),
    [
        (0, [0, 1]),
        (1, [0, 0.25, 0.5, 0.75, 1]),
        (7, [0, 2, 4, 6, 8]),
        (40, [0, 10, 20, 30, 40]),
        (45, [0, 20, 40, 60]),
        (99, [0, 25, 50, 75, 100]),
        (1234, [0, 500, 1000, 1500]),
    ],
)
def test_axis_ticks_are_round(top: float, ticks: list[float]) -> None:
    assert nice_ticks(top) == ticks


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by make test")
def test_an_empty_window_says_no_data(tmp_path: Path) -> None:
    days = [date(2026, 11, 1) + timedelta(days=n) for n in range(3)]
    empty = Progress(
        since=days[0],
        until=days[-1],
        days=days,
        pulls={c: [None] * 3 for c in CLASS_COLOURS},
        rate_limited=[None] * 3,
        data_first=date(2026, 10, 1),
        data_last=date(2026, 10, 9),
    )
    page = tmp_path / "empty.html"
    page.write_text(html_report(empty))
    dom = chromium("--dump-dom", page.as_uri(), user_data=tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr
    assert re.search(r'id="no-data"><b>No data</b> from 2026-11-01 to 2026-11-03', dom.stdout)
    assert "from 2026-10-01 to 2026-10-09" in dom.stdout
    assert "<svg" not in dom.stdout
    assert "no data" in terminal_summary(empty)
