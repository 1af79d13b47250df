"""What the pull store keeps, row by row: the bulk CSV path of the DuckDB store, the
default DuckDB path, a log sink's tables read on the BigQuery emulator, and the errors
each adapter gives when a table is not there.

Large batches of copies and redeploys (more than ``SMALL_BATCH`` rows, a CLI run's worth)
travel through a temporary CSV file; every value must come back exactly as it went in,
whatever it holds: commas, quotes, newlines, unicode, an empty string, ``\\N``, or None.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import locale
import os
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest
from armirror.events import PullEvent, parse_log_entry
from armirror.registry.copy import CopyResult
from armirror.store import CopyRecord, PullStore, RedeployRecord, StoreError, open_store
from armirror.store.duckdb import SMALL_BATCH, DuckDBStore
from armirror.store.tables import KEYS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra" / "local"))

from faultproxy import FaultProxy  # noqa: E402
from standins.bigquery import BigQueryEmulator, EmulatorUnavailable, start_bigquery  # noqa: E402

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
_datasets = itertools.count()

#: Error texts a registry may send back (hostile input), each needing care in a CSV file.
AWKWARD = [
    'manifest unknown: "nginx:1.25", tag not found',
    "line one\nline two\r\nline three",
    "\\N",  # the bulk path's old NULL marker, as text
    "",
    None,
    "naïve café — 镜像 🚀",
    '""',
    ",",
    " padded ",
]


def copy_result(n: int) -> CopyResult:
    """Copy attempt ``n``: a failure with an awkward error, or a success."""
    error = AWKWARD[n % len(AWKWARD)]
    failed = n % 2 == 0
    return CopyResult(
        source=f"docker.io/library/app{n}:1" if n % 5 else f"not a reference, {n}",
        destination=f"europe-docker.pkg.dev/p/mirror/app{n}:1",
        status="failed" if failed else "copied",
        digest=None if failed else f"sha256:{n:064x}",
        bytes_copied=n * 1000,
        error=error if failed else None,
        started_at=T0 + timedelta(seconds=n),
        finished_at=None if n % 3 == 0 else T0 + timedelta(seconds=n, microseconds=250_000),
    )


def stored_copies(path: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(
            "SELECT source, destination, registry, repository, status, digest, bytes_copied,"
            " error, requested_at, finished_at FROM copies ORDER BY requested_at"
        ).fetchall()


def expected_copy(n: int) -> tuple[Any, ...]:
    result = copy_result(n)
    parsed = n % 5 != 0
    return (
        f"docker.io/library/app{n}:1" if parsed else f"not a reference, {n}",
        result.destination,
        "docker.io" if parsed else "",
        f"library/app{n}" if parsed else "",
        result.status,
        result.digest,
        n * 1000,
        result.error,
        T0 + timedelta(seconds=n),
        result.finished_at,
    )


@pytest.mark.parametrize("batch", [SMALL_BATCH * 2, 50], ids=["csv-file", "insert"])
def test_copies_are_stored_exactly_whatever_the_batch_size(tmp_path: Path, batch: int) -> None:
    total = SMALL_BATCH * 2
    path = tmp_path / "armirror.duckdb"
    with DuckDBStore(path) as store:
        for start in range(0, total, batch):
            store.record_copies([copy_result(n) for n in range(start, min(start + batch, total))])
        # The same results again (in one large batch) are the same rows.
        store.record_copies([copy_result(n) for n in range(total)])
        assert store.count_rows("copies") == total
        counts = store.copy_counts()
    assert counts == {"failed": total // 2, "copied": total // 2}
    rows = stored_copies(path)
    assert rows == [expected_copy(n) for n in range(total)]
    # Spelled out, in case expected_copy and copy_result agree on a mistake:
    assert rows[2][7] == "\\N" and rows[12][7] == "" and rows[4][7] is None
    assert rows[10][7] == "line one\nline two\r\nline three"
    assert rows[0][:4] == ("not a reference, 0", rows[0][1], "", "")
    assert rows[0][9] is None and rows[1][9] == T0 + timedelta(seconds=1, microseconds=250_000)


def redeploy(n: int) -> RedeployRecord:
    return RedeployRecord(
        run_id=f"run-{n // 100}",
        platform="gke" if n % 2 else "cloudrun",
        target=f"https://cluster.example/{n}",
        namespace=f'ns, "quoted" {n}',
        kind="Deployment",
        name=f"web-{n}",
        container=f"app\n{n} ✓",
        old_image=f"nginx:{n}",
        new_image=f"europe-docker.pkg.dev/p/mirror/docker.io/library/nginx:{n}",
        action="moved" if n % 3 else "restored",
        changed_at=T0 + timedelta(minutes=n, microseconds=n),
    )


def test_many_redeploys_round_trip_through_the_csv_file(tmp_path: Path) -> None:
    records = [redeploy(n) for n in range(SMALL_BATCH + 44)]
    with DuckDBStore(tmp_path / "armirror.duckdb") as store:
        store.record_redeploys(reversed(records))
        store.record_redeploys(records)  # the same records twice: one row each
        assert store.count_rows("redeploys") == len(records)
        assert store.redeploys() == records
        window = store.redeploys(T0 + timedelta(minutes=10), T0 + timedelta(minutes=12))
    assert [r.name for r in window] == ["web-10", "web-11"]


@pytest.mark.parametrize("count", [2, SMALL_BATCH + 2], ids=["one INSERT", "csv file"])
def test_a_key_repeated_in_one_call_keeps_its_first_record(tmp_path: Path, count: int) -> None:
    """Two records with one redeploy_id (they differ only in time and images) in one
    call: the first is stored, as a later call's repeat is ignored, whichever way the
    batch is written; the single INSERT kept the last."""
    first = redeploy(1)
    again = dataclasses.replace(first, new_image="m/other:2", changed_at=T0 + timedelta(days=1))
    others = [redeploy(n) for n in range(2, count)]
    with DuckDBStore(tmp_path / "armirror.duckdb") as store:
        store.record_redeploys([first, again, *others])
        stored = store.redeploys()
    assert len(stored) == count - 1
    assert [r for r in stored if r.name == first.name] == [first]


# -- the default DuckDB file ---------------------------------------------------------------


@pytest.mark.parametrize("url", [None, "", "duckdb://", "duckdb:///"])
def test_a_url_without_a_path_opens_the_default_file(
    url: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with open_store(url) as store:  # type: ignore[attr-defined]
        store.record_copy(copy_result(1))
    default = tmp_path / ".local" / "share" / "armirror" / "armirror.duckdb"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["armirror.duckdb"]
    assert stored_copies(default) == [expected_copy(1)]


def test_duckdb_urls_name_files_as_a_shell_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    opened = {
        "duckdb://relative/dir/a.duckdb": cwd / "relative" / "dir" / "a.duckdb",
        "duckdb://~/stores/b.duckdb": home / "stores" / "b.duckdb",
        f"duckdb://{tmp_path}/with%20space/c.duckdb": tmp_path / "with space" / "c.duckdb",
    }
    for url, path in opened.items():
        with open_store(url) as store:  # type: ignore[attr-defined]
            store.record_copy(copy_result(1))
        assert stored_copies(path) == [expected_copy(1)], url
    files = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert files == set(opened.values())
    for url in ("duckdb:///:memory:", "duckdb://:memory:"):
        with open_store(url) as store:  # type: ignore[attr-defined]
            assert store.path == ":memory:"
            store.record_copy(copy_result(1))
            assert store.count_rows("copies") == 1
    assert {p for p in tmp_path.rglob("*") if p.is_file()} == files  # nothing written


def test_a_file_that_holds_something_is_never_replaced(tmp_path: Path) -> None:
    """Only an empty file is made whole; one byte of something else is an error, and the
    byte stays (it may be a user's file named by mistake)."""
    path = tmp_path / "armirror.duckdb"
    path.write_bytes(b"x")
    with pytest.raises(StoreError) as raised:
        DuckDBStore(path)
    assert str(raised.value).startswith(f"cannot open {path}: ")
    assert "not a valid DuckDB database" in str(raised.value)
    assert path.read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["armirror.duckdb"]


def test_a_new_file_is_made_beside_its_place_whatever_tmpdir_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new database is linked into place, and a link cannot cross file systems: it is
    made in the store's own directory, not in TMPDIR (often a tmpfs, here /dev/shm)."""
    import tempfile

    other_file_system = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=other_file_system) as elsewhere:
        monkeypatch.setattr(tempfile, "tempdir", elsewhere)
        with DuckDBStore(tmp_path / "stores" / "armirror.duckdb") as store:
            store.record_copy(copy_result(1))
        assert os.listdir(elsewhere) == []
    assert stored_copies(tmp_path / "stores" / "armirror.duckdb") == [expected_copy(1)]
    assert os.listdir(tmp_path / "stores") == ["armirror.duckdb"]


def test_bigquery_urls_name_project_dataset_and_location(monkeypatch: pytest.MonkeyPatch) -> None:
    from armirror.store.bigquery import BigQueryStore

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", "http://127.0.0.1:9")  # never called
    store = open_store("bigquery://my-project/my_dataset/?location=EU", create=False)
    assert isinstance(store, BigQueryStore)
    assert (store.project, store.dataset, store.location, store.create) == (
        "my-project",
        "my_dataset",
        "EU",
        False,
    )
    assert (store.client.project, store.client.location) == ("my-project", "EU")
    store.close()
    store = open_store("bigquery://my-project/XYZ_1X", create=False)  # only slashes trimmed
    assert isinstance(store, BigQueryStore) and store.location is None
    assert store.dataset == "XYZ_1X"
    store.close()


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("bigquery://p", "expected bigquery://PROJECT/DATASET, got 'bigquery://p'"),
        ("bigquery:///d", "expected bigquery://PROJECT/DATASET, got 'bigquery:///d'"),
        ("bigquery://p/d/e", "expected bigquery://PROJECT/DATASET, got 'bigquery://p/d/e'"),
        (
            "sqlite:///x",
            "unknown store 'sqlite:///x': expected duckdb:///PATH or bigquery://PROJECT/DATASET",
        ),
    ],
)
def test_store_urls_that_name_nothing_are_refused(url: str, complaint: str) -> None:
    with pytest.raises(ValueError) as raised:
        open_store(url)
    assert str(raised.value) == complaint


# -- BigQuery: errors that name what is missing --------------------------------------------


@pytest.fixture(scope="module")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    try:
        emulator = start_bigquery(tmp_path_factory.mktemp("bigquery-emulator-records"))
    except EmulatorUnavailable as exc:
        pytest.fail(f"the BigQuery emulator is needed and could not start: {exc}")
    with emulator:
        yield emulator


@pytest.fixture
def emulated(bigquery_emulator: BigQueryEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bigquery_emulator.url)
    return bigquery_emulator.url


def test_opening_makes_what_is_missing_and_keeps_the_rest(emulated: str) -> None:
    """What ``create=True`` (the CLI) makes: the dataset in its location, each table with
    its schema and layout, the views; opening again restores a dropped view or table."""
    from armirror.store.bigquery import BigQueryStore, make_client
    from armirror.store.tables import table_schemas

    dataset = f"made_{next(_datasets)}"
    nowhere = make_client("test-project")  # a client of no location: the store's counts
    with BigQueryStore("test-project", dataset, location="EU", client=nowhere) as store:
        client = store.client
        assert client.get_dataset(f"test-project.{dataset}").location == "EU"
        for name, fields in table_schemas().items():
            table = client.get_table(f"test-project.{dataset}.{name}")
            assert [(f.name, f.field_type, f.mode) for f in table.schema] == [
                (f["name"], f["type"], f.get("mode", "NULLABLE")) for f in fields
            ], name
        copies = client.get_table(f"test-project.{dataset}.copies")
        assert copies.time_partitioning.field == "requested_at"
        assert copies.clustering_fields == ["registry", "repository"]
        redeploys = client.get_table(f"test-project.{dataset}.redeploys")
        assert redeploys.time_partitioning is None and not redeploys.clustering_fields
        store.record_copy(copy_result(13))
        store.record_copy(copy_result(13))  # within the minute: insertAll drops it by id
        copies_rows = f"SELECT COUNT(*) AS n FROM `test-project.{dataset}.copies`"
        assert [row["n"] for row in client.query_and_wait(copies_rows)] == [1]
        with pytest.raises(StoreError) as refused:  # values BigQuery cannot take
            store.record_copies(
                [dataclasses.replace(copy_result(n), bytes_copied=2**64) for n in range(5)]
            )
        message = str(refused.value)
        assert message.startswith("inserting into copies: ") and "bytes_copied" in message
        assert len(message) == len("inserting into copies: ") + 500  # bounded
        client.delete_table(f"test-project.{dataset}.mirrors")
        client.delete_table(f"test-project.{dataset}.redeploys")
    with BigQueryStore("test-project", dataset, location="EU") as again:
        assert again.mirrored("app13:1") is not None  # the view is back, the rows kept
        again.record_redeploys([redeploy(1)])
        assert again.redeploys() == [redeploy(1)]
        again.check()


def test_opening_a_complete_dataset_asks_and_changes_nothing(
    bigquery_emulator: BigQueryEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second open finds every table and view and stops there: it does not drop and
    make the views again (a reader in between would find none), and 1,001 rows go to
    BigQuery in three insertAll requests of at most 500."""
    from armirror.store.bigquery import BigQueryStore
    from armirror.store.tables import table_schemas, view_templates

    dataset = f"again_{next(_datasets)}"
    with FaultProxy(bigquery_emulator.url) as proxy:
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", proxy.url)
        BigQueryStore("test-project", dataset).close()
        proxy.clear()
        with BigQueryStore("test-project", dataset) as store:
            # One GET for each table and view, nothing else.
            assert [m for _, m, _ in proxy.arrivals] == ["GET"] * (
                len(table_schemas()) + len(view_templates())
            )
            wanted = "registry.example/records/three-requests:1"
            store.record([pull(n, wanted, "c", "n") for n in range(1001)])
            assert proxy.count("POST", "/insertAll") == 3
            assert store.pull_count(wanted) == 1001


def test_the_queries_sent_to_bigquery_name_every_table_in_googlesql(
    bigquery_emulator: BigQueryEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each read is GoogleSQL naming its tables in full (`project`.`dataset`.`table`):
    the emulator also runs SQL real BigQuery refuses, such as "quoted" table names."""
    import sqlglot
    from armirror.store.bigquery import BigQueryStore
    from sqlglot import exp

    dataset = f"named_{next(_datasets)}"
    with FaultProxy(bigquery_emulator.url) as proxy:
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", proxy.url)
        with BigQueryStore("test-project", dataset) as store:
            proxy.clear()
            store.top_images()
            store.daily()
            store.pull_count("nginx:1")
            store.mirrored("nginx:1")
            store.redeploys()
            store.third_party_by_workload()
            store.upload_session("https://r.example/m/nginx", "sha256:" + "c" * 64)
        sent = [json.loads(body)["query"] for m, path, body in proxy.bodies
                if m == "POST" and path.split("?")[0].endswith("/queries")]  # fmt: skip
    assert len(sent) == 7
    for query in sent:
        tree = sqlglot.parse_one(query, read="bigquery")
        assert tree.sql(dialect="bigquery") == query
        named = {(t.catalog, t.db) for t in tree.find_all(exp.Table) if t.db}
        assert named == {("test-project", dataset)}, query


def test_the_client_outside_the_emulator_is_for_the_project_and_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No emulator: Application Default Credentials (a user's, here made up: nothing is
    called) and the project and location the URL names."""
    from armirror.store.bigquery import make_client

    adc = tmp_path / "adc.json"
    adc.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "made-up.apps.googleusercontent.com",
                "client_secret": "made-up",
                "refresh_token": "made-up",
            }
        )
    )
    monkeypatch.delenv("BIGQUERY_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    client = make_client("my-project", "EU")
    try:
        assert (client.project, client.location) == ("my-project", "EU")
        assert client._connection.API_BASE_URL == "https://bigquery.googleapis.com"
    finally:
        client.close()


# -- a log sink's own tables ---------------------------------------------------------------

SINK = "sink-project"


def sink_row(
    insert_id: str, at: str, message: str = 'Pulling image "nginx:1.27"'
) -> dict[str, Any]:
    """A kubelet event as a log sink stores it (payload fields lower-cased)."""
    return {
        "insertId": insert_id,
        "logName": f"projects/{SINK}/logs/events",
        "timestamp": at,
        "resource": {"type": "k8s_pod", "labels": {"cluster_name": "blue", "location": "eu"}},
        "jsonPayload": {"reason": "Pulling", "message": message},
    }


#: Shard suffix -> rows.  The sink files an entry under its own UTC day; the two
#: misfiled rows show whether a shard outside the window is read at all.
SHARDS: dict[str, list[dict[str, Any]]] = {
    "20260901": [sink_row("misfiled-early", "2026-10-01T21:30:00Z")],
    "20261001": [
        sink_row("oct1-morning", "2026-10-01T08:00:00Z"),
        sink_row("oct1-late", "2026-10-01T21:00:00Z"),
        sink_row("oct1-started", "2026-10-01T21:10:00Z", "Started container nginx"),
    ],
    "20261002": [
        sink_row("oct2-night", "2026-10-02T01:00:00Z"),
        sink_row("oct2-noon", "2026-10-02T12:00:00Z"),
    ],
    "20261103": [sink_row("misfiled-late", "2026-10-01T22:00:00Z")],
}


@pytest.fixture(scope="module")
def sink_dataset(bigquery_emulator: BigQueryEmulator) -> str:
    """Date-sharded ``events_YYYYMMDD`` tables and one partitioned table, ``kubelet``."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    client = bigquery.Client(
        project=SINK,
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": bigquery_emulator.url},
    )
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
                    fields=[field("cluster_name", "STRING"), field("location", "STRING")],
                ),
            ],
        ),
        field(
            "jsonPayload",
            "RECORD",
            fields=[field("reason", "STRING"), field("message", "STRING")],
        ),
    ]
    dataset = f"{SINK}.logs"
    client.create_dataset(dataset, exists_ok=True)
    tables = {f"events_{suffix}": rows for suffix, rows in SHARDS.items()}
    tables["kubelet"] = [row for rows in SHARDS.values() for row in rows]
    for name, rows in tables.items():
        client.create_table(bigquery.Table(f"{dataset}.{name}", schema=schema), exists_ok=True)
        assert not client.insert_rows_json(f"{dataset}.{name}", rows)
    client.close()
    return dataset


def read_ids(table: str, since: datetime | None = None, until: datetime | None = None) -> set[str]:
    from armirror.store.bigquery import read_sink_entries

    return {entry["insertId"] for entry in read_sink_entries(table, since=since, until=until)}


def test_sink_entries_come_back_as_log_entries(sink_dataset: str, emulated: str) -> None:
    from armirror.events import parse_log_entry
    from armirror.store.bigquery import read_sink_entries

    entries = sorted(read_sink_entries(f"{sink_dataset}.events_*"), key=lambda e: e["insertId"])
    assert [e["insertId"] for e in entries] == [
        "misfiled-early",
        "misfiled-late",
        "oct1-late",
        "oct1-morning",
        "oct2-night",
        "oct2-noon",
    ]  # "Started container" never mentions an image: not read
    morning = entries[3]
    assert morning == {
        "insertId": "oct1-morning",
        "logName": f"projects/{SINK}/logs/events",
        "timestamp": "2026-10-01T08:00:00+00:00",  # text, as in a LogEntry
        "resource": {"type": "k8s_pod", "labels": {"cluster_name": "blue", "location": "eu"}},
        "jsonPayload": {"reason": "Pulling", "message": 'Pulling image "nginx:1.27"'},
    }
    (event,) = parse_log_entry(morning).events
    assert (event.insert_id, event.event_time, event.reference) == (
        "oct1-morning",
        datetime(2026, 10, 1, 8, 0, tzinfo=UTC),
        "docker.io/library/nginx:1.27",
    )


@pytest.fixture(params=["Pacific/Kiritimati", "Etc/GMT+12", "UTC"])
def local_zone(request: pytest.FixtureRequest) -> Iterator[str]:
    """The machine's time zone (UTC+14, UTC-12, UTC): windows are UTC whatever it is."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    try:
        yield request.param
    finally:
        if previous is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = previous
        time.tzset()


@pytest.mark.usefixtures("local_zone")
def test_a_window_reads_its_shards_only_and_its_instants_only(
    sink_dataset: str, emulated: str
) -> None:
    since = datetime(2026, 10, 1, 21, 0, tzinfo=UTC)
    until = datetime(2026, 10, 2, 2, 0, tzinfo=UTC)
    sharded = f"{sink_dataset}.events_*"
    assert read_ids(sharded, since, until) == {"oct1-late", "oct2-night"}
    # One bound: the shards on the other side are all read.
    assert read_ids(sharded, since=since) == {
        "oct1-late",
        "oct2-night",
        "oct2-noon",
        "misfiled-late",
    }
    assert read_ids(sharded, until=until) == {
        "misfiled-early",
        "oct1-morning",
        "oct1-late",
        "oct2-night",
    }
    # Given in another zone, the same instants.
    tokyo = timezone(timedelta(hours=9))
    assert read_ids(sharded, since.astimezone(tokyo), until.astimezone(tokyo)) == {
        "oct1-late",
        "oct2-night",
    }
    # until is exclusive: an entry at exactly that instant is not read.
    noon = datetime(2026, 10, 2, 12, 0, tzinfo=UTC)
    assert read_ids(sharded, since, noon) == {"oct1-late", "oct2-night"}
    # One partitioned table: every row is in it, the window is by timestamp only.
    assert read_ids(f"{sink_dataset}.kubelet", since, until) == {
        "oct1-late",
        "oct2-night",
        "misfiled-early",
        "misfiled-late",
    }


@pytest.mark.parametrize(
    ("table", "complaint"),
    [
        ("events_*", "expected PROJECT.DATASET.TABLE or PROJECT.DATASET.PREFIX_*, got 'events_*'"),
        ("p.d.t-x", "expected PROJECT.DATASET.TABLE or PROJECT.DATASET.PREFIX_*, got 'p.d.t-x'"),
        ("p.d.ev*ents_*", "a wildcard may only end the table name: 'p.d.ev*ents_*'"),
        ("p.d.events**", "a wildcard may only end the table name: 'p.d.events**'"),
        ("p.d.*_x", "a wildcard may only end the table name: 'p.d.*_x'"),
    ],
)
def test_sink_table_names_are_checked_before_any_query(table: str, complaint: str) -> None:
    from armirror.store.bigquery import read_sink_entries

    with pytest.raises(ValueError) as raised:
        next(read_sink_entries(table))
    assert str(raised.value) == complaint


def test_a_missing_sink_table_is_named(sink_dataset: str, emulated: str) -> None:
    from armirror.store.bigquery import read_sink_entries

    with pytest.raises(StoreError) as raised:
        next(read_sink_entries(f"{sink_dataset}.nosuch"))
    assert str(raised.value).startswith(f"reading {sink_dataset}.nosuch: ")
    assert "nosuch" in str(raised.value).removeprefix(f"reading {sink_dataset}.nosuch: ")


def test_the_csv_file_carries_booleans_and_nulls_of_every_table(tmp_path: Path) -> None:
    """upload_sessions has the schemas' one BOOLEAN beside a NULLable location; no caller
    writes it in bulk today, but the bulk path serves every table."""
    from armirror.store.tables import upload_session_row

    destination = "https://us-docker.pkg.dev/p/r/docker.io/library/nginx"
    rows = [
        upload_session_row(
            destination, f"sha256:{n:064x}", None if n % 2 else f"/u/{n}", n, n % 2 == 1
        )
        for n in range(SMALL_BATCH + 1)
    ]
    with DuckDBStore(tmp_path / "armirror.duckdb") as store:
        store._insert_rows("upload_sessions", rows)
        assert store.count_rows("upload_sessions") == SMALL_BATCH + 1
        assert store.upload_session(destination, f"sha256:{4:064x}") == ("/u/4", 4)
        assert store.upload_session(destination, f"sha256:{5:064x}") is None
        (done,) = store._rows("SELECT COUNT(*) AS n FROM upload_sessions WHERE done")
    assert done["n"] == (SMALL_BATCH + 1) // 2


# -- reads in order, on both adapters ------------------------------------------------------


@pytest.fixture(params=["duckdb", "bigquery"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PullStore]:
    if request.param == "duckdb":
        opened = open_store(f"duckdb://{tmp_path}/armirror.duckdb")
    else:
        request.getfixturevalue("emulated")
        opened = open_store(f"bigquery://test-project/records_{next(_datasets)}")
    yield opened
    opened.close()


def pull(
    n: int, image: str, cluster: str, namespace: str, reason: str = "pulling", at: datetime = T0
) -> PullEvent:
    entry = {
        "insertId": f"id-{n}",
        "timestamp": at.isoformat(),
        "resource": {
            "type": "k8s_pod",
            "labels": {"cluster_name": cluster, "namespace_name": namespace, "pod_name": "p"},
        },
        "jsonPayload": {"message": f'Pulling image "{image}"'},
    }
    return parse_log_entry(entry).events[0]._replace(reason=reason)


def test_third_party_pulls_per_workload_in_order(store: PullStore) -> None:
    """Most pulls first, then most rate-limited, then by cluster and namespace; only
    third-party pulls and rate-limited pulls in [since, until) count."""
    ids = itertools.count()
    events: list[PullEvent] = []

    def pulls(cluster: str, namespace: str, pulled: int, limited: int, **kw: Any) -> None:
        for i in range(pulled):
            events.append(pull(next(ids), f"app{i}:1", cluster, namespace, **kw))
        for _ in range(limited):
            events.append(pull(next(ids), "app0:1", cluster, namespace, "rate_limited", **kw))

    pulls("a", "few", 1, 0)  # sorts first by name, last by pulls
    pulls("z", "most", 4, 0)
    pulls("z", "limited", 2, 2)  # ties on pulls with b/busy, more rate-limited
    pulls("b", "busy", 2, 0)
    for namespace in ("ns-f", "ns-d", "ns-b", "ns-e", "ns-a", "ns-c"):
        pulls("m", namespace, 3, 1)  # ties on both counts: by namespace
    for cluster in ("y", "w", "x"):
        pulls(cluster, "same", 3, 1)  # ties on both counts: by cluster
    # What never counts: other reasons, first-party images, outside the window.
    events.append(pull(next(ids), "other:1", "a", "few", "present"))
    events.append(pull(next(ids), "other:2", "a", "few", "failed"))
    events.append(pull(next(ids), "other:3", "q", "quiet", "present"))
    events.append(pull(next(ids), "europe-docker.pkg.dev/p/r/app:1", "q", "first-party"))
    pulls("a", "few", 5, 5, at=T0 - timedelta(seconds=1))
    pulls("a", "few", 5, 5, at=T0 + timedelta(days=1))
    store.record(events)

    rows = store.third_party_by_workload(T0, T0 + timedelta(days=1))
    assert [
        (r["cluster"], r["namespace"], r["pulls"], r["rate_limited"], r["images"]) for r in rows
    ] == [
        ("z", "most", 4, 0, 4),
        ("m", "ns-a", 3, 1, 3),
        ("m", "ns-b", 3, 1, 3),
        ("m", "ns-c", 3, 1, 3),
        ("m", "ns-d", 3, 1, 3),
        ("m", "ns-e", 3, 1, 3),
        ("m", "ns-f", 3, 1, 3),
        ("w", "same", 3, 1, 3),
        ("x", "same", 3, 1, 3),
        ("y", "same", 3, 1, 3),
        ("z", "limited", 2, 2, 2),
        ("b", "busy", 2, 0, 2),
        ("a", "few", 1, 0, 1),
    ]
    assert rows[0] == {
        "cluster": "z",
        "namespace": "most",
        "pulls": 4,
        "rate_limited": 0,
        "images": 4,
    }
    assert len(store.third_party_by_workload(T0, T0 + timedelta(days=1), limit=3)) == 3
    # Twenty rows unless told: 22 namespaces pulled on a later day.
    later = T0 + timedelta(days=7)
    store.record([pull(1000 + n, "nginx:1", "c", f"ns-{n:02}", at=later) for n in range(22)])
    rows = store.third_party_by_workload(since=later)
    assert [r["namespace"] for r in rows] == [f"ns-{n:02}" for n in range(20)]
    everything = store.third_party_by_workload(limit=100)  # no window: all of them count
    assert everything[0] == {
        "cluster": "a",
        "namespace": "few",
        "pulls": 11,
        "rate_limited": 10,
        "images": 5,
    }


def test_redeploys_at_one_moment_come_by_namespace_name_and_container(store: PullStore) -> None:
    names = ("b", "c", "a")
    records = [
        RedeployRecord(
            "run-1",
            "gke",
            "https://c",
            namespace,
            "Deployment",
            name,
            container,
            f"{container}:1",
            f"m/{container}:1",
            "moved",
            T0,
        )
        for namespace in names
        for name in names
        for container in names
    ]
    store.record_redeploys(records)
    got = [(r.namespace, r.name, r.container) for r in store.redeploys()]
    assert got == sorted(got) and len(got) == 27


# -- errors name what failed ---------------------------------------------------------------


def test_writes_to_a_closed_duckdb_store_fail_with_what_was_being_written(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "armirror.duckdb")
    store.close()
    writes = [
        ("recording pull events: ", lambda: store.record([pull(1, "nginx:1", "c", "n")])),
        ("recording copies: ", lambda: store.record_copies([copy_result(1)])),
        ("recording redeploys: ", lambda: store.record_redeploys([redeploy(1)])),
        (
            "recording upload_sessions: ",
            lambda: store.save_upload_session("d", "sha256:a", "/u", 1),
        ),
    ]
    for prefix, write in writes:
        with pytest.raises(StoreError) as raised:
            write()
        assert str(raised.value).startswith(prefix)
        assert "closed" in str(raised.value).removeprefix(prefix)


def test_tables_dropped_under_an_open_store_are_named(emulated: str) -> None:
    from armirror.store.bigquery import BigQueryStore

    with BigQueryStore("test-project", f"dropped_{next(_datasets)}") as store:
        for name in ("redeploys", "upload_sessions"):  # no view reads them
            store.client.delete_table(f"test-project.{store.dataset}.{name}")
        with pytest.raises(StoreError) as checked:
            store.check()
        with pytest.raises(StoreError) as written:
            store.record_redeploys([redeploy(1)])
    assert str(checked.value).startswith(
        f"test-project.{store.dataset} lacks redeploys, upload_sessions: "
    )
    message = str(written.value)
    assert message.startswith("inserting into redeploys: ")
    assert "redeploys" in message.removeprefix("inserting into redeploys: ")
    assert "Terraform" not in message  # the CLI's store creates; that hint is the cloud's


DENIED = json.dumps(
    {
        "error": {
            "code": 403,
            "message": "Access Denied: Permission denied for this account",
            "errors": [{"reason": "accessDenied", "message": "Access Denied"}],
        }
    }
).encode()


def test_a_refusal_from_bigquery_is_one_error_naming_the_step(
    bigquery_emulator: BigQueryEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not "not found": a 403 on each kind of call, through a proxy in front of the
    emulator, becomes a StoreError that says what the store was doing."""
    from armirror.store.bigquery import BigQueryStore

    with FaultProxy(bigquery_emulator.url) as proxy:
        monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", proxy.url)
        with BigQueryStore("test-project", f"denied_{next(_datasets)}") as store:
            place = f"test-project.{store.dataset}"
            calls = [
                ("GET", "/tables/", f"checking {place}: ", store.check),
                (
                    "POST",
                    "/insertAll",
                    "inserting into copies: ",
                    lambda: store.record_copy(copy_result(1)),
                ),
                ("POST", "/queries", "query failed: ", lambda: store.pull_count("nginx")),
            ]
            for method, path, prefix, call in calls:
                proxy.add(
                    method, path, "serve", status=403, body=DENIED,
                    headers={"Content-Type": "application/json"},
                )  # fmt: skip
                with pytest.raises(StoreError) as raised:
                    call()
                assert str(raised.value).startswith(prefix), str(raised.value)
                assert "Access Denied" in str(raised.value)
                proxy.clear()
        # Opening a new store: its dataset cannot be made.
        proxy.add(
            "POST", r"/projects/test-project/datasets(\?|$)", "serve", status=403, body=DENIED,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        dataset = f"denied_{next(_datasets)}"
        with pytest.raises(StoreError) as raised:
            BigQueryStore("test-project", dataset)
        assert str(raised.value).startswith(f"creating test-project.{dataset}: ")
        assert "Access Denied" in str(raised.value)


@pytest.fixture
def ascii_locale() -> Iterator[None]:
    """A process whose locale encodes text as ASCII (LC_CTYPE=C without UTF-8 mode): the
    default encoding of files opened without one."""
    previous = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, previous)


@pytest.mark.usefixtures("ascii_locale")
def test_bulk_files_are_utf8_whatever_the_locale(tmp_path: Path) -> None:
    """Pod, namespace and error texts are unicode; the CSV files DuckDB reads are UTF-8."""
    events = [pull(n, "nginx:1", "blue", f"espace-{n}-é") for n in range(SMALL_BATCH + 1)]
    results = [copy_result(n) for n in range(SMALL_BATCH + 1)]
    with DuckDBStore(tmp_path / "armirror.duckdb") as store:
        assert store.record(events) == SMALL_BATCH + 1
        store.record_copies(results)
        workloads = store.third_party_by_workload(limit=1)
    assert workloads[0]["namespace"] == "espace-0-é"
    assert stored_copies(tmp_path / "armirror.duckdb")[14][7] == "naïve café — 镜像 🚀"


@pytest.mark.usefixtures("local_zone")
def test_an_event_file_load_is_stamped_now_in_utc(tmp_path: Path) -> None:
    """recorded_at, when the caller gives no moment, is the load's time as an instant: a
    local wall-clock time would be read as UTC and be off by the machine's offset."""
    from armirror.ingest_worker import write_events_csv

    path = tmp_path / "events.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        write_events_csv(handle, [pull(1, "nginx:1", "c", "n")], DuckDBStore.event_csv_fields())
    with DuckDBStore(tmp_path / "armirror.duckdb") as store:
        before = datetime.now(UTC)
        assert store.record_events_csv(str(path)) == 1
        after = datetime.now(UTC)
        (row,) = store._rows("SELECT recorded_at FROM pull_events")
    assert before - timedelta(seconds=1) <= row["recorded_at"] <= after + timedelta(seconds=1)


def test_an_event_file_that_cannot_be_loaded_is_a_store_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "gone.csv"
    with DuckDBStore(tmp_path / "armirror.duckdb") as store, pytest.raises(StoreError) as failed:
        store.record_events_csv(str(missing))
    assert str(failed.value).startswith("recording pull events: ")
    assert "gone.csv" in str(failed.value)


# -- what the pipeline and the report ask --------------------------------------------------


def test_demand_is_counted_per_reference_and_since(store: PullStore) -> None:
    """The mirror threshold's question.  References no other test asks about: the built
    query is cached per reference for the life of the process."""
    wanted, sibling = "registry.example/records/count:1", "registry.example/records/count:2"
    ids = itertools.count()
    assert store.record([]) == 0
    store.record(
        [
            pull(next(ids), wanted, "c", "n", at=T0),
            pull(next(ids), wanted, "c", "n", at=T0 + timedelta(hours=1)),
            pull(next(ids), wanted, "c", "n", at=T0 + timedelta(days=2)),
            pull(next(ids), wanted, "c", "n", "deployed", at=T0),  # Cloud Run deployed it
            pull(next(ids), wanted, "c", "n", "present", at=T0),  # not demand
            pull(next(ids), wanted, "c", "n", "failed", at=T0),
            pull(next(ids), sibling, "c", "n", at=T0),  # same repository, another tag
            pull(next(ids), sibling, "c", "n", at=T0),
        ]
    )
    assert store.pull_count(wanted) == 4
    assert store.pull_count(wanted, since=T0 + timedelta(hours=1)) == 2
    assert store.pull_count(sibling) == 2
    assert store.pull_count("registry.example/records/count") == 0  # :latest
    assert store.pull_count("not a reference, at all") == 0
    # Per UTC day: the window's end is not in it.
    days = [(d.day.isoformat(), d.pulls) for d in store.daily(until=T0 + timedelta(days=1))]
    assert days == [("2026-10-01", 4)]
    assert [d.day.isoformat() for d in store.daily(since=T0 + timedelta(days=1))] == ["2026-10-03"]


@pytest.fixture
def far_east() -> Iterator[None]:
    """The machine's clock in UTC+14, where local and UTC days differ most."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Pacific/Kiritimati"
    time.tzset()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = previous
        time.tzset()


@pytest.mark.usefixtures("far_east")
def test_times_are_utc_whatever_the_machine_zone(tmp_path: Path) -> None:
    """A naive datetime given to a read is UTC; an aware one names its instant in any
    zone; recorded_at is the moment of recording (not local time read as UTC)."""
    wanted = "registry.example/records/zones:1"
    tokyo = timezone(timedelta(hours=9))
    with DuckDBStore(tmp_path / "armirror.duckdb") as store:
        before = datetime.now(UTC)
        store.record([pull(n, wanted, "c", "n", at=T0 + timedelta(hours=n)) for n in range(3)])
        after = datetime.now(UTC)
        since = T0 + timedelta(hours=1)
        assert store.pull_count(wanted, since=since.replace(tzinfo=None)) == 2
        assert store.pull_count(wanted, since=since.astimezone(tokyo)) == 2
        window = store.top_images(since=since.replace(tzinfo=None), until=T0 + timedelta(hours=2))
        assert [r.pulls for r in window] == [1]
        (recorded,) = {
            row["recorded_at"] for row in store._rows("SELECT recorded_at FROM pull_events")
        }
    assert before <= recorded <= after


def test_copies_counted_in_a_window(store: PullStore) -> None:
    results = [
        copy_result(0),  # failed, requested at T0
        copy_result(61),  # copied, T0 + 61 s
        copy_result(62),  # failed, T0 + 62 s
        copy_result(120),  # failed, T0 + 2 min: the end, not in it
    ]
    store.record_copies(results)
    window = store.copy_counts(T0 + timedelta(seconds=1), T0 + timedelta(minutes=2))
    assert window == {"copied": 1, "failed": 1}
    assert store.copy_counts(until=T0 + timedelta(seconds=61)) == {"failed": 1}
    assert store.copy_counts(since=T0 + timedelta(seconds=62)) == {"failed": 2}


def test_mirrored_answers_with_the_whole_record_of_that_source(store: PullStore) -> None:
    mirrored = copy_result(13)  # copied, docker.io/library/app13:1
    unparsed = copy_result(25)  # copied, a source that is no reference
    store.record_copies([copy_result(11), mirrored, unparsed])
    assert store.mirrored("app13:1") == CopyRecord(
        source="docker.io/library/app13:1",
        destination="europe-docker.pkg.dev/p/mirror/app13:1",
        status="copied",
        digest=f"sha256:{13:064x}",
        requested_at=T0 + timedelta(seconds=13),
        finished_at=T0 + timedelta(seconds=13, microseconds=250_000),
    )
    found = store.mirrored("not a reference, 25")
    assert found is not None and found.source == "not a reference, 25"
    assert store.mirrored("app12:1") is None


def test_ids_stay_what_earlier_versions_stored(tmp_path: Path) -> None:
    """A record's id is a hash of what identifies it.  Stores written by earlier versions
    hold ids made this way: the same record recorded again by this version must get the
    same id, or the views and counts, which deduplicate by id, would count it twice."""
    moved = RedeployRecord(
        "run-1", "gke", "https://c", "shop", "Deployment", "web", "app", "nginx:1", "m/nginx:1",
        "moved", T0,
    )  # fmt: skip
    copied = CopyResult(
        source="nginx:1.27",
        destination="europe-docker.pkg.dev/p/mirror/docker.io/library/nginx:1.27",
        status="copied",
        digest="sha256:" + "a" * 64,
        bytes_copied=5,
        started_at=T0,
        finished_at=T0,
    )
    path = tmp_path / "armirror.duckdb"
    with DuckDBStore(path) as store:
        store.record_redeploys([moved])
        store.record_copy(copied)
        with pytest.raises(ValueError, match="nope"):
            store.count_rows("nope")
        failed = CopyResult(
            source="nginx:1.27",
            destination="europe-docker.pkg.dev/p/mirror/docker.io/library/nginx:1.27",
            status="failed",
            error="boom",
            started_at=T0,
        )
        store.record_copy(failed)
        # An upload saved before an upgrade is found after it.
        store.save_upload_session("https://r.example/m/nginx", "sha256:" + "d" * 64, "/u/1", 5)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT redeploy_id FROM redeploys").fetchall() == [
            ("bb12a57e275662bee814aecd3d19de21c6d0a658",)
        ]
        assert sorted(con.execute("SELECT copy_id FROM copies").fetchall()) == [
            ("b49727a739827adde49bece22a81962cabe75a84",),
            ("e90464647d9af9c9f0646876efd39f54af4e3836",),
        ]
        assert con.execute("SELECT session_id FROM upload_sessions").fetchall() == [
            ("e5a89fdd0af0d0cf219d85e87628c763e5acc8f5",)
        ]


def test_a_copy_is_stamped_with_when_it_was_asked_for(tmp_path: Path) -> None:
    """requested_at: when the copy started; else when it finished; else now."""
    started, finished = T0, T0 + timedelta(minutes=5)
    results = [
        CopyResult(
            "docker.io/library/a:1", "m/a:1", "copied", started_at=started, finished_at=finished
        ),
        CopyResult("docker.io/library/b:1", "m/b:1", "copied", finished_at=finished),
        CopyResult("docker.io/library/c:1", "m/c:1", "copied", bytes_copied=None),  # type: ignore[arg-type]
    ]
    with DuckDBStore(tmp_path / "armirror.duckdb") as store:
        before = datetime.now(UTC)
        store.record_copies(results)
        after = datetime.now(UTC)
        rows = store._rows("SELECT source, requested_at, bytes_copied FROM copies ORDER BY source")
    assert [(r["source"], r["bytes_copied"]) for r in rows] == [
        ("docker.io/library/a:1", 0),
        ("docker.io/library/b:1", 0),
        ("docker.io/library/c:1", 0),
    ]
    assert rows[0]["requested_at"] == started and rows[1]["requested_at"] == finished
    assert before <= rows[2]["requested_at"] <= after


# -- small writes from many threads, combined ----------------------------------------------


def run_while_a_write_is_in_progress(store: DuckDBStore, calls: list[Any]) -> list[Any]:
    """Start each call in a thread while the store's lock is held (a write in progress),
    wait until every call has queued its rows, then let them go: the next writer writes
    them all in one INSERT.  Returns each call's result or exception, and the order the
    batches were queued in (their first keys)."""
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            outcomes[i] = calls[i]()
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with store._lock:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(store._pending) < len(calls):
            assert time.monotonic() < deadline, "the calls never queued their rows"
            time.sleep(0.001)
        queued = [ticket.rows[0][KEYS[ticket.table]] for ticket in store._pending]
    for thread in threads:
        thread.join(timeout=60)
    return [outcomes, queued]


def test_combined_writes_tell_each_caller_its_own_new_rows(tmp_path: Path) -> None:
    def events(*ns: int) -> list[PullEvent]:
        return [pull(n, "nginx:1", "c", "n") for n in ns]

    batches = {"A": events(1, 2, 3), "B": events(3, 4), "C": events(0, 4, 5)}
    with DuckDBStore(tmp_path / "armirror.duckdb") as store:
        assert store.record(events(0, 1)) == 2
        calls = [lambda b=b: store.record(b) for b in batches.values()]
        outcomes, queued = run_while_a_write_is_in_progress(store, calls)
        # Whoever queued first adds a key both bring; keys already stored add nothing.
        seen = {"id-0", "id-1"}
        expected = {}
        for first_key in queued:
            name = next(k for k, b in batches.items() if b[0].insert_id == first_key)
            new = {e.insert_id for e in batches[name]} - seen
            seen |= new
            expected[name] = len(new)
        assert dict(zip(batches, outcomes, strict=True)) == expected
        assert sum(expected.values()) == 4
        assert store.count_rows("pull_events") == 6


def test_a_bad_batch_fails_its_caller_only(tmp_path: Path) -> None:
    good, bad = copy_result(1), dataclasses.replace(copy_result(2), bytes_copied=2**63)
    with DuckDBStore(tmp_path / "armirror.duckdb") as store:
        calls = [lambda: store.record_copies([good]), lambda: store.record_copies([bad])]
        (ok, failed), _ = run_while_a_write_is_in_progress(store, calls)
        assert ok is None
        assert isinstance(failed, StoreError)
        assert str(failed).startswith("recording copies: ")
        assert "INT64" in str(failed) or "BIGINT" in str(failed)
        assert store.mirrored("app1:1") is not None
        assert store.count_rows("copies") == 1


def test_upload_progress_at_one_location_and_at_one_moment(tmp_path: Path) -> None:
    """Some registries keep one upload URL for every chunk: each chunk's progress still
    counts.  Two updates stamped with the same moment: the furthest counts.  A session
    saved without a location cannot be resumed."""
    from armirror.store.tables import upload_session_row

    destination, digest = "https://r.example/m/nginx", "sha256:" + "d" * 64
    with DuckDBStore(tmp_path / "armirror.duckdb") as store:
        store.save_upload_session(destination, digest, "/v2/m/nginx/blobs/uploads/1", 8 << 20)
        store.save_upload_session(destination, digest, "/v2/m/nginx/blobs/uploads/1", 16 << 20)
        assert store.upload_session(destination, digest) == (
            "/v2/m/nginx/blobs/uploads/1",
            16 << 20,
        )

        other = "sha256:" + "e" * 64
        rows = [
            upload_session_row(destination, other, "/u/2", n << 20, False) for n in (24, 32, 16)
        ]
        for row in rows:
            row["updated_at"] = T0
        store._insert_rows("upload_sessions", rows)
        assert store.upload_session(destination, other) == ("/u/2", 32 << 20)

        third = "sha256:" + "f" * 64
        store.save_upload_session(destination, third, "", 4 << 20)
        assert store.upload_session(destination, third) is None


@pytest.mark.usefixtures("local_zone")
def test_upload_progress_is_stamped_in_utc(tmp_path: Path) -> None:
    """updated_at orders a session's updates: a local wall-clock time would be stored as
    UTC, off by the machine's offset, and repeat itself when the clocks go back."""
    with DuckDBStore(tmp_path / "armirror.duckdb") as store:
        before = datetime.now(UTC)
        store.save_upload_session("https://r.example/m/nginx", "sha256:" + "c" * 64, "/u/1", 5)
        after = datetime.now(UTC)
        (row,) = store._rows("SELECT updated_at FROM upload_sessions")
    assert before - timedelta(seconds=1) <= row["updated_at"] <= after + timedelta(seconds=1)


@pytest.mark.usefixtures("local_zone")
def test_times_read_back_are_in_utc_whatever_the_machine_zone(store: PullStore) -> None:
    """What the report prints (isoformat) says +00:00, not the machine's offset."""
    store.record([pull(1, "nginx:1", "c", "n", at=T0)])
    store.record_copy(copy_result(1))
    store.record_redeploys([redeploy(1)])
    (ranked,) = store.top_images()
    copied = store.mirrored("docker.io/library/app1:1")
    assert copied is not None and copied.finished_at is not None
    (moved,) = store.redeploys()
    read = [ranked.first_seen, ranked.last_seen, copied.requested_at, copied.finished_at,
            moved.changed_at]  # fmt: skip
    assert [t.utcoffset() for t in read] == [timedelta(0)] * len(read)


@pytest.mark.usefixtures("local_zone")
def test_a_copy_result_without_times_is_requested_now_in_utc(tmp_path: Path) -> None:
    """A result that carries no time (neither started nor finished) is stamped with the
    moment it is recorded, as an instant."""
    with DuckDBStore(tmp_path / "armirror.duckdb") as store:
        before = datetime.now(UTC)
        store.record_copy(CopyResult("nginx:1", "r.example/m/nginx:1", "copied", digest="d"))
        after = datetime.now(UTC)
        copied = store.mirrored("nginx:1")
    assert copied is not None
    assert before - timedelta(seconds=1) <= copied.requested_at <= after + timedelta(seconds=1)


def test_more_rows_than_two_insert_requests_hold_are_all_stored(store: PullStore) -> None:
    """BigQuery takes rows 500 to a request: 1,001 events are three requests."""
    wanted = "registry.example/records/batched:1"
    assert store.record([pull(n, wanted, "c", "n") for n in range(1001)]) == 1001
    assert store.pull_count(wanted) == 1001


def test_an_upload_forgotten_again_after_a_new_start_stays_forgotten(store: PullStore) -> None:
    """The same blob uploaded to the same place twice (a second copy after the first
    finished): its second "forgotten" row is stored too.  It was the first one's row
    again (one update_id) and was ignored, so the second upload's last chunk counted and
    the next copy tried to resume an upload the registry had already closed."""
    destination, digest = "https://r.example/m/nginx", "sha256:" + "c" * 64
    store.save_upload_session(destination, digest, "/u/1", 5)
    store.forget_upload_session(destination, digest)
    store.save_upload_session(destination, digest, "/u/2", 7)
    assert store.upload_session(destination, digest) == ("/u/2", 7)
    store.forget_upload_session(destination, digest)
    assert store.upload_session(destination, digest) is None


def test_events_are_stored_field_by_field_on_either_path(tmp_path: Path) -> None:
    """Every field of a pull event lands in its column, through one INSERT and through
    the CSV file alike."""
    from armirror.events import parse_json

    line = (ROOT / "tests" / "fixtures" / "gke-pull-events.jsonl").read_text().splitlines()[1]
    (pulled,) = parse_json(line).events
    event = pulled._replace(service="checkout")  # every field set
    others = [pull(n, "nginx:1", "c", "n") for n in range(SMALL_BATCH)]
    for name, batch in (("insert", [event]), ("csv-file", [event, *others])):
        path = tmp_path / f"{name}.duckdb"
        with DuckDBStore(path) as store:
            before = datetime.now(UTC)
            assert store.record(batch) == len(batch)
            after = datetime.now(UTC)
            (row,) = store._rows("SELECT * FROM pull_events WHERE insert_id = 'sample002'")
        assert before <= row.pop("recorded_at") <= after, name
        assert row == event._asdict(), name
    assert event.image_bytes == 48213504 and event.pull_seconds == 3.402  # not None


def test_the_ranking_breaks_ties_by_rate_limits_failures_then_name(tmp_path: Path) -> None:
    ids = itertools.count()
    events: list[PullEvent] = []

    def image(name: str, pulls: int, limited: int = 0, failed: int = 0) -> None:
        for reason, times in (("pulling", pulls), ("rate_limited", limited), ("failed", failed)):
            for _ in range(times):
                events.append(pull(next(ids), f"ghcr.io/rank/{name}:1", "c", "n", reason))

    image("z-most", 3)
    image("y-limited", 2, limited=2)
    image("x-failing", 2, limited=1, failed=3)
    image("w-failing-less", 2, limited=1, failed=1)
    for name in ("f", "c", "e", "a", "d", "b"):
        image(name, 1)
    events.append(pull(next(ids), "europe-docker.pkg.dev/p/r/first-party:1", "c", "n"))
    with DuckDBStore(tmp_path / "armirror.duckdb") as store:
        store.record(events)
        ranking = store.top_images(third_party_only=True, limit=None)
        assert [r.reference.removeprefix("ghcr.io/rank/") for r in ranking] == [
            "z-most:1",
            "y-limited:1",
            "x-failing:1",
            "w-failing-less:1",
            "a:1",
            "b:1",
            "c:1",
            "d:1",
            "e:1",
            "f:1",
        ]
        assert len(store.top_images()) == 11  # first-party too
        assert [r.reference for r in store.top_images(limit=2)] == [
            "ghcr.io/rank/z-most:1",
            "ghcr.io/rank/y-limited:1",
        ]
        store.record([pull(1000 + n, f"ghcr.io/rank/more-{n}:1", "c", "n") for n in range(12)])
        assert len(store.top_images()) == 20  # unless told, twenty at most


def test_event_files_load_the_first_copy_of_each_event(tmp_path: Path) -> None:
    """``record_events_csv`` (armirror pulls' parallel ingest): of events with the same
    insert_id in several files, the earliest file's is kept, whether the caller names
    the later copies or not; one recorded_at for the whole load."""
    from armirror.ingest_worker import write_events_csv

    def file(name: str, events: list[PullEvent]) -> str:
        path = tmp_path / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            write_events_csv(handle, events, DuckDBStore.event_csv_fields())
        return str(path)

    first = file("1.csv", [pull(1, "nginx:1", "c", "first"), pull(2, "nginx:1", "c", "n")])
    second = file("2.csv", [pull(1, "nginx:1", "c", "second"), pull(3, "nginx:1", "c", "n")])
    loads = [
        ("ordered", [first, second], None, "first"),
        ("named", [first, second], [(second, "id-1")], "first"),
        ("reversed", [second, first], None, "second"),
    ]
    for name, paths, later, kept in loads:
        with DuckDBStore(tmp_path / f"{name}.duckdb") as store:
            assert store.record_events_csv(paths, T0, later_copies=later) == 3, name
            rows = store._rows("SELECT insert_id, namespace, recorded_at FROM pull_events")
            assert {r["insert_id"]: r["namespace"] for r in rows}["id-1"] == kept, name
            assert {r["recorded_at"] for r in rows} == {T0}, name
            assert store.record_events_csv(second) == 0  # a single file; all stored already
