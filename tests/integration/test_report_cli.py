"""armirror report over a real DuckDB store filled by armirror pulls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def armirror(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "armirror.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_report_json_and_html_from_recorded_pulls(tmp_path: Path) -> None:
    store = f"duckdb:///{tmp_path / 'r.duckdb'}"
    recorded = armirror("pulls", str(FIXTURES / "gke-pull-events.jsonl"), "--store", store)
    assert recorded.returncode == 0, recorded.stderr
    html = tmp_path / "report.html"
    result = armirror(
        "report", "--store", store, "--since", "2026-09-30", "--until", "2026-10-02",
        "--html", str(html), "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    progress = json.loads(result.stdout)
    assert progress["days"] == ["2026-09-30", "2026-10-01", "2026-10-02"]
    # The sample: two third-party pulls and one Artifact Registry pull on 2026-10-01,
    # one rate-limited failure; "already present" is not a pull.
    assert progress["pulls"]["third_party"] == [0, 2, 0]
    assert progress["pulls"]["artifact_registry"] == [0, 1, 0]
    assert progress["rate_limited"] == [0, 1, 0]
    assert abs(progress["third_party_share"] - 2 / 3) < 1e-9
    top = {row["reference"]: row for row in progress["top_third_party"]}
    assert top["docker.io/grafana/grafana:11.2.0"]["rate_limited"] == 1
    page = html.read_text()
    assert page.startswith("<!doctype html>") and "<script" not in page
    assert 'id="pulls-chart"' in page


def test_report_refuses_an_inverted_window(tmp_path: Path) -> None:
    store = f"duckdb:///{tmp_path / 'r.duckdb'}"
    result = armirror("report", "--store", store, "--since", "2026-10-05", "--until", "2026-10-01")
    assert result.returncode == 2 and "after" in result.stderr
