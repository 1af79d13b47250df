"""In the cloud the BigQuery store checks for its tables and never creates them.

Terraform makes the dataset, tables and views, and the functions' accounts may only write
and read the tables they use: opening the store with create=False (what a cloud
deployment does) must make no call, create nothing, and name what is missing.  Against
the local BigQuery emulator.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from armirror.config import Settings
from armirror.registry.copy import CopyResult
from armirror.store import StoreError, open_store
from armirror.store.bigquery import BigQueryStore
from google.api_core import exceptions as api_exceptions

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra" / "local"))

from standins.bigquery import BigQueryEmulator, EmulatorUnavailable, start_bigquery  # noqa: E402

_datasets = itertools.count()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    try:
        running = start_bigquery(tmp_path_factory.mktemp("bigquery-check-only"))
    except EmulatorUnavailable as exc:
        pytest.fail(f"the BigQuery emulator is needed and could not start: {exc}")
    with running:
        yield running


@pytest.fixture
def dataset(emulator: BigQueryEmulator, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", emulator.url)
    return f"checkonly_{next(_datasets)}"


def test_a_cloud_store_creates_nothing_and_names_what_is_missing(dataset: str) -> None:
    store = open_store(f"bigquery://test-project/{dataset}", create=False)
    assert isinstance(store, BigQueryStore)
    try:
        with pytest.raises(StoreError, match="come only from Terraform"):
            store.record_copy(
                CopyResult("docker.io/library/nginx:1", "r.example/m/nginx:1", "copied")
            )
        with pytest.raises(StoreError, match="come only from Terraform"):
            store.check()
        with pytest.raises(StoreError, match=r"^query failed: not found \(.*come only from"):
            store.pull_count("nginx")
        # Nothing was created on the way.
        with pytest.raises(api_exceptions.NotFound):
            store.client.get_dataset(f"test-project.{dataset}")
    finally:
        store.close()


def test_a_cloud_store_uses_tables_terraform_made(dataset: str) -> None:
    provisioned = open_store(f"bigquery://test-project/{dataset}")  # stands in for Terraform
    provisioned.close()
    store = open_store(f"bigquery://test-project/{dataset}", create=False)
    try:
        store.check()  # type: ignore[attr-defined]
        store.record_copy(CopyResult("docker.io/library/nginx:1", "r.example/m/nginx:1", "copied"))
        assert store.mirrored("nginx:1") is not None
    finally:
        store.close()


def test_a_cloud_deployment_opens_its_store_check_only(dataset: str) -> None:
    """runtime.build_pipeline: a Cloud Tasks queue means the cloud, so create=False."""
    from armirror.runtime import build_pipeline

    settings = Settings(
        destination="europe-docker.pkg.dev/platform/armirror",
        store=f"bigquery://test-project/{dataset}",
        queue="cloudtasks://projects/test-project/locations/europe-west1/queues/copy",
        copy_url="http://127.0.0.1:9/copy_image",
    )
    pipeline = build_pipeline(settings)
    try:
        store = pipeline.store
        assert isinstance(store, BigQueryStore) and store.create is False
        with pytest.raises(api_exceptions.NotFound):
            store.client.get_dataset(f"test-project.{dataset}")
    finally:
        pipeline.store.close()
        pipeline.queue.close()
