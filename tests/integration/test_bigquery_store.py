"""One behavioural suite for both PullStore adapters: DuckDB, and BigQuery on the emulator.

The emulator (PyPI local-bigquery) is installed by infra/local/bigquery-emulator.sh and
started once per session on 127.0.0.1; each BigQuery test gets a dataset of its own.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from armirror.events import PullEvent, parse_json, parse_log_entry
from armirror.registry.copy import CopyResult
from armirror.store import PullStore, RedeployRecord, open_store

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(ROOT / "infra" / "local"))

from standins.bigquery import BigQueryEmulator, EmulatorUnavailable, start_bigquery  # noqa: E402

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
_datasets = itertools.count()


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    try:
        emulator = start_bigquery(tmp_path_factory.mktemp("bigquery-emulator"))
    except EmulatorUnavailable as exc:
        pytest.fail(f"the BigQuery emulator is needed and could not start: {exc}")
    with emulator:
        yield emulator


@pytest.fixture(params=["duckdb", "bigquery"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PullStore]:
    if request.param == "duckdb":
        opened = open_store(f"duckdb://{tmp_path}/armirror.duckdb")
    else:
        emulator = request.getfixturevalue("bigquery_emulator")
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", emulator.url)
        opened = open_store(f"bigquery://test-project/store_{next(_datasets)}")
    yield opened
    opened.close()


def fixture_events() -> list[PullEvent]:
    lines = (FIXTURES / "gke-pull-events.jsonl").read_text().splitlines()
    return [e for line in lines for e in parse_json(line).events]


def event(
    n: int,
    image: str,
    reason: str = "pulling",
    *,
    at: datetime = T0,
    cluster: str | None = "blue",
) -> PullEvent:
    base = parse_log_entry(
        {
            "insertId": f"id-{n}",
            "timestamp": at.isoformat(),
            "resource": {"type": "k8s_pod", "labels": {"cluster_name": "x"}},
            "jsonPayload": {"message": f'Pulling image "{image}"'},
        }
    ).events[0]
    return base._replace(reason=reason, cluster=cluster)


def test_recording_twice_counts_once(store: PullStore) -> None:
    events = fixture_events()
    assert store.record(events) == len(events)
    before = store.top_images(limit=None)
    store.record(events)
    store.record(events[:3] + events[:3])  # duplicates inside one batch too
    assert store.top_images(limit=None) == before
    assert store.pull_count("traefik:v3.1") == 1


def test_ranking_normalises_and_counts_each_reason(store: PullStore) -> None:
    store.record(
        [
            event(1, "nginx"),
            event(2, "docker.io/library/nginx:latest", cluster="green"),
            event(3, "index.docker.io/library/nginx"),
            event(4, "nginx", "present"),
            event(5, "nginx", "rate_limited", at=T0 + timedelta(hours=2)),
            event(6, "nginx", "failed"),
            event(7, "nginx", "backoff"),
            event(8, "quay.io/org/app:1"),
            event(9, "europe-docker.pkg.dev/p/r/app:1"),
            event(10, "europe-docker.pkg.dev/p/r/app:1"),
            event(11, "europe-docker.pkg.dev/p/r/app:1"),
        ]
    )
    ranking = store.top_images(limit=None)
    assert [r.reference for r in ranking] == [
        "docker.io/library/nginx:latest",
        "europe-docker.pkg.dev/p/r/app:1",
        "quay.io/org/app:1",
    ]
    nginx = ranking[0]
    assert (nginx.pulls, nginx.rate_limited, nginx.failures, nginx.clusters) == (3, 1, 2, 2)
    assert nginx.registry == "docker.io" and nginx.third_party
    assert nginx.first_seen == T0
    assert nginx.last_seen == T0 + timedelta(hours=2)
    assert ranking[1].third_party is False
    third = store.top_images(third_party_only=True, limit=None)
    assert [r.reference for r in third] == [
        "docker.io/library/nginx:latest",
        "quay.io/org/app:1",
    ]
    assert len(store.top_images(limit=1)) == 1


def test_time_window(store: PullStore) -> None:
    store.record(
        [
            event(1, "redis:7", at=T0),
            event(2, "redis:7", at=T0 + timedelta(days=1)),
            event(3, "redis:7", at=T0 + timedelta(days=2)),
            event(4, "memcached:1", at=T0),
        ]
    )
    window = store.top_images(since=T0 + timedelta(hours=1), until=T0 + timedelta(days=2))
    assert [(r.reference, r.pulls) for r in window] == [("docker.io/library/redis:7", 1)]
    assert store.pull_count("redis:7") == 3
    assert store.pull_count("redis:7", since=T0 + timedelta(days=1)) == 2
    assert store.pull_count("docker.io/library/redis:7", since=T0 + timedelta(days=3)) == 0


def test_daily_series_by_registry_class(store: PullStore) -> None:
    store.record(
        [
            event(1, "nginx", at=T0),
            event(2, "nginx", at=T0 + timedelta(hours=1)),
            event(3, "europe-docker.pkg.dev/p/r/nginx:1", at=T0 + timedelta(days=1)),
            event(4, "gcr.io/p/app:1", at=T0 + timedelta(days=1)),
            event(5, "nginx", "rate_limited", at=T0 + timedelta(days=1)),
            event(6, "nginx", "present", at=T0 + timedelta(days=1)),
        ]
    )
    rows = [(d.day.isoformat(), d.registry_class, d.pulls, d.rate_limited) for d in store.daily()]
    assert rows == [
        ("2026-10-01", "third_party", 2, 0),
        ("2026-10-02", "artifact_registry", 1, 0),
        ("2026-10-02", "container_registry", 1, 0),
        ("2026-10-02", "third_party", 0, 1),
    ]
    later = store.daily(since=T0 + timedelta(days=1))
    assert {d.day.isoformat() for d in later} == {"2026-10-02"}


def test_cloud_run_deployments_count_as_demand(store: PullStore) -> None:
    audit = json.loads((FIXTURES / "cloudrun-audit-replace-service.json").read_text())
    deployed = parse_log_entry(audit).events
    store.record(deployed)
    store.record(deployed)
    assert store.pull_count("nginxinc/nginx-unprivileged:1.27-alpine") == 1
    ranking = {r.reference: r for r in store.top_images(limit=None)}
    assert ranking["docker.io/nginxinc/nginx-unprivileged:1.27-alpine"].pulls == 0


def test_a_large_batch_counts_like_small_ones(store: PullStore) -> None:
    many = [
        event(n, f"ghcr.io/org/app-{n % 7}:1", at=T0 + timedelta(seconds=n)) for n in range(700)
    ]
    assert store.record(many) == 700
    store.record(many[:50])
    ranking = store.top_images(limit=None)
    assert sum(r.pulls for r in ranking) == 700
    assert {r.reference for r in ranking} == {f"ghcr.io/org/app-{i}:1" for i in range(7)}


def copy_result(
    source: str, status: str = "copied", digest: str = "sha256:" + "a" * 64, minute: int = 0
) -> CopyResult:
    return CopyResult(
        source=source,
        destination=f"europe-docker.pkg.dev/p/mirror/{source}",
        status=status,  # type: ignore[arg-type]
        digest=digest if status != "failed" else None,
        bytes_copied=10,
        error="boom" if status == "failed" else None,
        started_at=T0 + timedelta(minutes=minute),
        finished_at=T0 + timedelta(minutes=minute, seconds=30),
    )


def test_copies_and_mirrored(store: PullStore) -> None:
    assert store.mirrored("nginx:1.25") is None
    store.record_copy(copy_result("docker.io/library/nginx:1.25", "failed"))
    assert store.mirrored("nginx:1.25") is None
    store.record_copy(copy_result("docker.io/library/nginx:1.25", minute=1))
    newer = copy_result("docker.io/library/nginx:1.25", "up-to-date", "sha256:" + "b" * 64, 2)
    store.record_copy(newer)
    store.record_copy(newer)
    pinned = "docker.io/library/redis@sha256:" + "c" * 64
    store.record_copy(copy_result(pinned, digest="sha256:" + "c" * 64))
    record = store.mirrored("nginx:1.25")
    assert record is not None
    assert record.digest == "sha256:" + "b" * 64
    assert record.status == "up-to-date"
    assert record.finished_at == T0 + timedelta(minutes=2, seconds=30)
    assert store.mirrored(pinned) is not None
    assert store.mirrored_tags() == [("docker.io/library/nginx:1.25", "sha256:" + "b" * 64)]
    # The same result twice is one copy; each status counted once per attempt.
    assert store.copy_counts() == {"copied": 2, "failed": 1, "up-to-date": 1}


def redeploy_record(name: str, container: str, minutes: int, action: str = "moved") -> RedeployRecord:  # fmt: skip
    return RedeployRecord(
        run_id=f"run-{action}",
        platform="gke",
        target="https://cluster.example",
        namespace="shop",
        kind="Deployment",
        name=name,
        container=container,
        old_image=f"{container}:1",
        new_image=f"us-docker.pkg.dev/p/mirror/docker.io/library/{container}:1",
        action=action,
        changed_at=T0 + timedelta(minutes=minutes),
    )


def test_redeploys_are_recorded_once_and_read_by_time(store: PullStore) -> None:
    web, sidecar = redeploy_record("web", "nginx", 5), redeploy_record("web", "envoy", 5)
    later = redeploy_record("api", "redis", 90)
    undone = redeploy_record("web", "nginx", 24 * 60, "restored")
    store.record_redeploys([later, web, sidecar])
    store.record_redeploys([web, undone])  # web twice: one row
    got = store.redeploys()
    assert [(r.name, r.container, r.action) for r in got] == [
        ("web", "envoy", "moved"),
        ("web", "nginx", "moved"),
        ("api", "redis", "moved"),
        ("web", "nginx", "restored"),
    ]
    assert got[1] == web and got[1].workload == "Deployment shop/web"
    window = store.redeploys(T0 + timedelta(minutes=60), T0 + timedelta(hours=2))
    assert [r.name for r in window] == ["api"]


# -- BigQuery only ----------------------------------------------------------------------


def test_third_party_pulls_by_cluster_and_namespace(store: PullStore) -> None:
    """Who still pulls from Docker Hub: the report's breakdown (issue 15 §8)."""

    def at(
        n: int, image: str, cluster: str | None, namespace: str | None, **kw: object
    ) -> PullEvent:
        return event(n, image, **kw)._replace(cluster=cluster, namespace=namespace)  # type: ignore[arg-type]

    store.record(
        [
            at(1, "nginx", "blue", "payments"),
            at(2, "redis:7", "blue", "payments"),
            at(3, "nginx", "blue", "payments", reason="rate_limited"),
            at(4, "nginx", "green", "web"),
            at(5, "europe-docker.pkg.dev/p/r/nginx:1", "green", "web"),  # not third-party
            at(6, "nginx", "green", "web", reason="present"),  # not a pull
            at(7, "nginx", "blue", "payments", at=T0 + timedelta(days=3)),  # outside
        ]
    )
    rows = store.third_party_by_workload(T0, T0 + timedelta(days=1))
    assert rows == [
        {"cluster": "blue", "namespace": "payments", "pulls": 2, "rate_limited": 1, "images": 2},
        {"cluster": "green", "namespace": "web", "pulls": 1, "rate_limited": 0, "images": 1},
    ]
    assert len(store.third_party_by_workload(limit=1)) == 1


def test_bigquery_tables_are_partitioned_clustered_and_views_exist(
    bigquery_emulator: BigQueryEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from armirror.store.bigquery import BigQueryStore

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bigquery_emulator.url)
    with BigQueryStore("test-project", f"layout_{next(_datasets)}") as store:
        table = store.client.get_table(f"{store.project}.{store.dataset}.pull_events")
        assert table.time_partitioning.field == "event_time"
        assert table.time_partitioning.type_ == "DAY"
        assert table.clustering_fields == ["registry", "repository"]
        for view in ("pulls", "image_ranking", "pulls_daily", "mirrors"):
            assert store.client.get_table(f"{store.project}.{store.dataset}.{view}").view_query
        # Opening again finds everything in place and changes nothing.
        BigQueryStore("test-project", store.dataset).close()


def test_bigquery_duplicate_rows_past_the_dedup_window_are_not_counted(
    bigquery_emulator: BigQueryEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """insertAll deduplicates for about a minute; a redelivery after that leaves a second
    row, which the views must not count."""
    from armirror.store.bigquery import BigQueryStore
    from armirror.store.tables import event_row

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bigquery_emulator.url)
    with BigQueryStore("test-project", f"dupes_{next(_datasets)}") as store:
        events = fixture_events()
        store.record(events)
        later = datetime.now(UTC) + timedelta(minutes=5)
        rows = []
        for e in events:
            row = event_row(e, later)
            rows.append(
                {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
            )
        assert not store.client.insert_rows_json(
            f"{store.project}.{store.dataset}.pull_events", rows, row_ids=[None] * len(rows)
        )
        table = f"`{store.project}.{store.dataset}.pull_events`"
        (count,) = [
            row["n"] for row in store.client.query_and_wait(f"SELECT COUNT(*) AS n FROM {table}")
        ]
        assert count == 2 * len(events)  # the table holds both copies...
        ranking = {r.reference: r for r in store.top_images(limit=None)}
        assert ranking["docker.io/library/traefik:v3.1"].pulls == 1  # ...the ranking one
        assert store.pull_count("traefik:v3.1") == 1
        assert sum(d.pulls for d in store.daily()) == 3


# -- DuckDB only ------------------------------------------------------------------------


def test_duckdb_file_keeps_events_across_opens(tmp_path: Path) -> None:
    url = f"duckdb://{tmp_path}/sub/dir/armirror.duckdb"
    with open_store(url) as first:  # type: ignore[attr-defined]
        first.record(fixture_events())
    with open_store(url) as second:  # type: ignore[attr-defined]
        assert second.pull_count("traefik:v3.1") == 1
        assert second.record(fixture_events()) == 0


def test_default_store_is_under_xdg_data_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    store = open_store(None)
    store.close()
    assert (tmp_path / "armirror" / "armirror.duckdb").is_file()


@pytest.mark.parametrize("url", ["sqlite:///x", "bigquery://only-project", "duckdb"])
def test_unknown_store_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        open_store(url)


def test_upload_sessions_keep_the_latest_progress_until_forgotten(store: PullStore) -> None:
    """What a resumable upload records after each chunk (registry.resumable)."""
    destination = "https://us-docker.pkg.dev/p/r/docker.io/library/nginx"
    digest = "sha256:" + "a" * 64
    assert store.upload_session(destination, digest) is None
    store.save_upload_session(destination, digest, "/v2/x/blobs/uploads/1?_state=a", 8 << 20)
    store.save_upload_session(destination, digest, "/v2/x/blobs/uploads/1?_state=b", 16 << 20)
    store.save_upload_session(destination, digest, "/v2/x/blobs/uploads/1?_state=b", 16 << 20)
    assert store.upload_session(destination, digest) == ("/v2/x/blobs/uploads/1?_state=b", 16 << 20)
    # Another digest, or the same digest for another destination, is another session.
    assert store.upload_session(destination, "sha256:" + "b" * 64) is None
    assert store.upload_session(destination + "-other", digest) is None
    store.forget_upload_session(destination, digest)
    assert store.upload_session(destination, digest) is None
    store.save_upload_session(destination, digest, "/v2/x/blobs/uploads/2?_state=c", 8 << 20)
    assert store.upload_session(destination, digest) == ("/v2/x/blobs/uploads/2?_state=c", 8 << 20)


def test_many_copies_recorded_in_one_write_count_once_each(store: PullStore) -> None:
    results = [copy_result(f"docker.io/library/batch{n}:1", minute=n) for n in range(5)]
    store.record_copies(results)
    store.record_copies(results[:2])  # again: the same results are the same rows
    store.record_copies([])
    assert store.copy_counts() == {"copied": 5}
    assert store.mirrored("docker.io/library/batch3:1") is not None
