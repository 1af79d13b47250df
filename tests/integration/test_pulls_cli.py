"""`armirror pulls`: every input format, idempotent re-reads, every output format, and the
BigQuery paths (store and --sink-table) on the emulator."""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from armirror.cli import cli
from click.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
LINES = (FIXTURES / "gke-pull-events.jsonl").read_text().splitlines()
sys.path.insert(0, str(ROOT / "infra" / "local"))

from standins.bigquery import BigQueryEmulator, EmulatorUnavailable, start_bigquery  # noqa: E402

EXPECTED = [
    # reference, pulls, rate_limited, failures
    ("docker.io/grafana/grafana:11.2.0", 1, 1, 1),
    ("docker.io/library/traefik:v3.1", 1, 0, 0),
    ("europe-docker.pkg.dev/example-prod/mirror/docker.io/library/traefik:v3.1", 1, 0, 0),
    ("gcr.io/distroless/static:nonroot", 0, 0, 0),
    ("quay.io/jetstack/cert-manager-controller:v1.15.3", 0, 0, 0),
]


@pytest.fixture(scope="module")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    try:
        emulator = start_bigquery(tmp_path_factory.mktemp("bigquery-emulator-cli"))
    except EmulatorUnavailable as exc:
        pytest.fail(f"the BigQuery emulator is needed and could not start: {exc}")
    with emulator:
        yield emulator


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, ["pulls", *args], input=stdin, env=env)
    assert result.exit_code == 0, result.output + str(result.exception)
    return result


def ranking(result: Result) -> list[tuple[Any, ...]]:
    rows = json.loads(result.stdout)
    return [(r["reference"], r["pulls"], r["rate_limited"], r["failures"]) for r in rows]


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"duckdb://{tmp_path}/pulls.duckdb"


@pytest.fixture
def jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(LINES) + "\n")
    return path


def test_json_lines_are_ranked_and_skips_summarised(store: str, jsonl: Path) -> None:
    result = run(str(jsonl), "--store", store, "--format", "json")
    assert ranking(result) == EXPECTED
    assert "read 10 entries: 8 events, 8 new; skipped 2" in result.stderr
    assert "container_backoff 1" in result.stderr and "no_image 1" in result.stderr
    row = json.loads(result.stdout)[0]
    assert set(row) == {
        "reference",
        "registry",
        "third_party",
        "pulls",
        "rate_limited",
        "failures",
        "clusters",
        "first_seen",
        "last_seen",
    }
    assert (row["registry"], row["third_party"], row["clusters"]) == ("docker.io", True, 1)
    assert row["first_seen"] == "2026-10-01T08:00:04+00:00"


def test_reading_the_same_file_again_counts_nothing_twice(store: str, jsonl: Path) -> None:
    first = run(str(jsonl), "--store", store, "--format", "json")
    second = run(str(jsonl), str(jsonl), "--store", store, "--format", "json")
    assert ranking(second) == ranking(first)
    assert "16 events, 0 new" in second.stderr


def test_gcloud_json_array_gives_the_same_ranking(store: str, tmp_path: Path) -> None:
    path = tmp_path / "gcloud.json"
    path.write_text(json.dumps([json.loads(line) for line in LINES], indent=2))
    assert ranking(run(str(path), "--store", store, "--format", "json")) == EXPECTED


def test_bigquery_sink_export_gives_the_same_ranking(store: str, tmp_path: Path) -> None:
    """A sink table's NDJSON export: payload fields lower-cased, BigQuery timestamps."""
    lines = []
    for line in LINES:
        entry = json.loads(line)
        payload = entry["jsonPayload"]
        payload["involvedobject"] = payload.pop("involvedObject")
        entry["timestamp"] = entry["timestamp"].replace("T", " ").replace("Z", " UTC")
        lines.append(json.dumps(entry))
    path = tmp_path / "sink.json.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    assert ranking(run(str(path), "--store", store, "--format", "json")) == EXPECTED


def test_stdin_and_filters(store: str) -> None:
    result = run("-", "--store", store, "--format", "json", stdin="\n".join(LINES))
    assert ranking(result) == EXPECTED
    third = run("--store", store, "--format", "json", "--third-party-only", "--top", "2")
    assert [r[0] for r in ranking(third)] == [EXPECTED[0][0], EXPECTED[1][0]]
    late = run("--store", store, "--format", "json", "--since", "2026-10-01T08:00:08Z")
    assert [r[0] for r in ranking(late)] == [EXPECTED[2][0], EXPECTED[4][0]]
    none = run("--store", store, "--format", "json", "--until", "2026-10-01")
    assert ranking(none) == []


def test_csv_output(store: str, jsonl: Path) -> None:
    result = run(str(jsonl), "--store", store, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["reference"], int(r["rate_limited"])) for r in rows] == [
        (ref, limited) for ref, _, limited, _ in EXPECTED
    ]


def test_table_marks_rate_limited_images(store: str, jsonl: Path) -> None:
    result = run(str(jsonl), "--store", store)
    lines = result.stdout.splitlines()
    marked = [line for line in lines if "⚠" in line and "grafana" in line]
    assert marked, result.stdout
    assert not [line for line in lines if "⚠" in line and "traefik" in line]
    assert "1 image(s) rate-limited" in result.stderr  # a hint, not data


def test_bad_input_is_reported_not_a_traceback(store: str, tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text(json.dumps([json.loads(line) for line in LINES])[:-30])
    result = CliRunner().invoke(cli, ["pulls", str(path), "--store", store])
    assert result.exit_code == 2  # the input is wrong (issue 15 §3)
    assert "cut short" in result.stderr
    result = CliRunner().invoke(cli, ["pulls", "--store", store, "--since", "last tuesday"])
    assert result.exit_code == 2
    result = CliRunner().invoke(cli, ["pulls", "--store", "sqlite:///x"])
    assert result.exit_code == 2 and "unknown store" in result.stderr


def test_bigquery_store_on_the_emulator(bigquery_emulator: BigQueryEmulator, jsonl: Path) -> None:
    env = {"BIGQUERY_EMULATOR_HOST": bigquery_emulator.url}
    url = "bigquery://cli-project/pulls_cli"
    first = run(str(jsonl), "--store", url, "--format", "json", env=env)
    assert ranking(first) == EXPECTED
    again = run(str(jsonl), "--store", url, "--format", "json", env=env)
    assert ranking(again) == EXPECTED


def test_sink_table_on_the_emulator(bigquery_emulator: BigQueryEmulator) -> None:
    """The layout the guide's log sink creates: date-sharded events_YYYYMMDD tables."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    client = bigquery.Client(
        project="sink-project",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": bigquery_emulator.url},
    )
    client.create_dataset("sink-project.logs", exists_ok=True)
    field = bigquery.SchemaField
    schema = [
        field("insertId", "STRING"),
        field("logName", "STRING"),
        field("timestamp", "TIMESTAMP"),
        field(
            "resource",
            "RECORD",
            fields=[
                field("type", "STRING"),
                field(
                    "labels",
                    "RECORD",
                    fields=[
                        field(n, "STRING")
                        for n in (
                            "project_id",
                            "location",
                            "cluster_name",
                            "namespace_name",
                            "pod_name",
                        )
                    ],
                ),
            ],
        ),
        field(
            "jsonPayload",
            "RECORD",
            fields=[
                field("reason", "STRING"),
                field("message", "STRING"),
                field("involvedobject", "RECORD", fields=[field("kind", "STRING")]),
                field("source", "RECORD", fields=[field("host", "STRING")]),
            ],
        ),
    ]
    shards: dict[str, list[dict[str, Any]]] = {"20261001": [], "20260930": []}
    for line in LINES:
        entry = json.loads(line)
        payload = entry["jsonPayload"]
        row = {
            "insertId": entry["insertId"],
            "logName": entry["logName"],
            "timestamp": entry["timestamp"],
            "resource": entry["resource"],
            "jsonPayload": {
                "reason": payload["reason"],
                "message": payload["message"],
                "involvedobject": {"kind": "Pod"},
                "source": {"host": payload["source"]["host"]},
            },
        }
        shards["20261001"].append(row)
    old = dict(shards["20261001"][0], insertId="old", timestamp="2026-09-30T10:00:00Z")
    shards["20260930"].append(old)
    for suffix, rows in shards.items():
        table = f"sink-project.logs.events_{suffix}"
        client.create_table(bigquery.Table(table, schema=schema), exists_ok=True)
        assert not client.insert_rows_json(table, rows)
    env = {"BIGQUERY_EMULATOR_HOST": bigquery_emulator.url}
    result = run("--sink-table", "sink-project.logs.events_*", "--format", "json", env=env)
    assert ranking(result)[0] == ("docker.io/library/traefik:v3.1", 2, 0, 0)
    assert ranking(result)[1:] == [e for e in EXPECTED if e[0] != EXPECTED[1][0]]
    since = run(
        "--sink-table",
        "sink-project.logs.events_*",
        "--since",
        "2026-10-01",
        "--format",
        "json",
        env=env,
    )
    assert ranking(since) == EXPECTED
