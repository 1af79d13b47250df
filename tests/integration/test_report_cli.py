"""armirror report over a real DuckDB store filled by armirror pulls."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def armirror(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "armirror.cli", *args], capture_output=True, text=True, timeout=120
    )


def recorded_store(tmp_path: Path) -> str:
    store = f"duckdb:///{tmp_path / 'r.duckdb'}"
    recorded = armirror("pulls", str(FIXTURES / "gke-pull-events.jsonl"), "--store", store)
    assert recorded.returncode == 0, recorded.stderr
    return store


def test_report_json_and_html_from_recorded_pulls(tmp_path: Path) -> None:
    store = recorded_store(tmp_path)
    html = tmp_path / "report.html"
    result = armirror(
        "report", "--store", store, "--since", "2026-09-30", "--until", "2026-10-02",
        "--html", str(html), "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    progress = json.loads(result.stdout)
    assert progress["days"] == ["2026-09-30", "2026-10-01", "2026-10-02"]
    # The sample: two third-party pulls and one Artifact Registry pull on 2026-10-01,
    # one rate-limited failure; "already present" is not a pull.  The days around it
    # have no data at all: null, not zero.
    assert progress["pulls"]["third_party"] == [None, 2, None]
    assert progress["pulls"]["artifact_registry"] == [None, 1, None]
    assert progress["rate_limited"] == [None, 1, None]
    assert abs(progress["third_party_share"] - 2 / 3) < 1e-9
    assert progress["third_party_share_last_day"] is None  # 2026-10-02 has no data
    assert abs(progress["third_party_share_last_7_days"] - 2 / 3) < 1e-9
    top = {row["reference"]: row for row in progress["top_third_party"]}
    assert top["docker.io/grafana/grafana:11.2.0"]["rate_limited"] == 1
    assert top["docker.io/grafana/grafana:11.2.0"]["last_seen"].startswith("2026-10-01T08:00")
    assert {row["mirrored"] for row in top.values()} == {False}
    # who still pulls from Docker Hub: the sample's cluster and namespace
    assert progress["workloads"][0]["cluster"] == "blue"
    assert progress["workloads"][0]["namespace"] == "payments"
    assert progress["workloads"][0]["pulls"] == 2
    page = html.read_text()
    assert page.startswith("<!doctype html>") and "<script" not in page
    assert 'id="pulls-chart"' in page and 'id="workloads"' in page
    assert 'class="no-data" data-day="2026-09-30"' in page
    assert "HTML report:" in result.stderr  # a message, not data


def test_defaults_follow_the_data_and_agree_with_pulls(tmp_path: Path) -> None:
    """October logs imported in November: both commands show October by default."""
    store = recorded_store(tmp_path)
    result = armirror("report", "--store", store, "--format", "json")
    assert result.returncode == 0, result.stderr
    progress = json.loads(result.stdout)
    assert progress["until"] == "2026-10-01" and progress["since"] == "2026-09-02"
    assert sum(v or 0 for v in progress["pulls"]["third_party"]) == 2
    ranked = json.loads(
        armirror("pulls", "--store", store, "--format", "json", "--third-party-only").stdout
    )
    assert [r["reference"] for r in ranked][:3] == [
        r["reference"] for r in progress["top_third_party"]
    ][:3]


def test_an_empty_window_says_where_the_data_is(tmp_path: Path) -> None:
    store = recorded_store(tmp_path)
    today = datetime.now(UTC).date()
    result = armirror("report", "--store", store, "--since", "2026-11-01")
    assert result.returncode == 0, result.stderr
    assert "no data" in result.stdout
    assert f"no pull events from 2026-11-01 to {today}" in result.stderr
    assert "the store has events from 2026-10-01 to 2026-10-01" in result.stderr
    html = tmp_path / "empty.html"
    result = armirror("report", "--store", store, "--since", "2026-11-01", "--html", str(html))
    page = html.read_text()
    assert 'id="no-data"' in page and "No data" in page and "2026-10-01" in page
    assert 'id="pulls-chart"' not in page
    # the same from pulls
    ranked = armirror("pulls", "--store", store, "--since", "2026-11-01")
    assert ranked.returncode == 0 and ranked.stdout == ""
    assert "the store has events from 2026-10-01 to 2026-10-01" in ranked.stderr


def test_mirrored_images_are_marked(tmp_path: Path) -> None:
    from armirror.registry import CopyResult
    from armirror.store import open_store

    store = recorded_store(tmp_path)
    opened = open_store(store)
    try:
        opened.record_copy(
            CopyResult(
                "docker.io/grafana/grafana:11.2.0",
                "us-docker.pkg.dev/p/m/docker.io/grafana/grafana:11.2.0",
                "copied",
                digest="sha256:" + "a" * 64,
                started_at=datetime(2026, 10, 1, 9, tzinfo=UTC),
                finished_at=datetime(2026, 10, 1, 9, 1, tzinfo=UTC),
            )
        )
    finally:
        opened.close()
    progress = json.loads(armirror("report", "--store", store, "--format", "json").stdout)
    mirrored = {row["reference"]: row["mirrored"] for row in progress["top_third_party"]}
    assert mirrored["docker.io/grafana/grafana:11.2.0"] is True
    assert mirrored["docker.io/library/traefik:v3.1"] is False
    assert progress["copies"] == {"copied": 1}
    text = armirror("report", "--store", store).stdout
    assert "docker.io/grafana/grafana:11.2.0  (mirrored)" in text
    assert "copies: 1 copied" in text


def test_report_refuses_bad_input_before_printing(tmp_path: Path) -> None:
    store = f"duckdb:///{tmp_path / 'r.duckdb'}"
    result = armirror("report", "--store", store, "--since", "2026-10-05", "--until", "2026-10-01")
    assert result.returncode == 2 and "after" in result.stderr
    result = armirror("report", "--store", store, "--html", "/nonexistent/dir/r.html")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "/nonexistent/dir" in result.stderr
    result = armirror("report", "--store", "/path")
    assert result.returncode == 2 and "--store" in result.stderr
