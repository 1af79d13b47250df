"""Small promises of the auth and credential code that a message or a cache shows:
where a logged URL is cut, how long a short-lived token is kept, and that a registry
reached under its own name is looked up (and its helper run) once."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from armirror.registry.auth import cache_seconds
from armirror.registry.credentials import CredentialStore, DockerConfig
from armirror.registry.redact import url_for_log

BIN = Path(__file__).resolve().parents[1] / "bin"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # Everything from the first "?" goes: a later one is part of the query.
        ("https://r.example/v2/u?state=abc?more=def", "https://r.example/v2/u"),
        # Everything from the first "#" goes, however many follow.
        ("https://r.example/token#one#two", "https://r.example/token"),
        ("https://r.example/token#frag?x=1", "https://r.example/token"),
    ],
)
def test_a_logged_url_ends_before_its_first_query_or_fragment(url: str, shown: str) -> None:
    assert url_for_log(url) == shown


@pytest.mark.parametrize(
    ("expires_in", "seconds"),
    [
        (1, 0.75),  # a token living one second is kept for three quarters of it
        (0.5, 0.375),
        (0.01, 0.0075),
    ],
)
def test_a_token_living_a_second_or_less_is_still_kept_for_most_of_it(
    expires_in: float, seconds: float
) -> None:
    assert cache_seconds({"expires_in": expires_in}) == seconds


@pytest.fixture
def helper_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tests/bin/docker-credential-armirror-test on PATH, knowing no credentials; the
    returned file lists every request it answered."""
    store, log = tmp_path / "helper-store.json", tmp_path / "helper.log"
    store.write_text("{}")
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ARMIRROR_TEST_HELPER_STORE", str(store))
    monkeypatch.setenv("ARMIRROR_TEST_HELPER_LOG", str(log))
    return log


class _NoGoogle:
    def token(self) -> str | None:
        return None


def _store(tmp_path: Path, body: dict[str, object]) -> tuple[CredentialStore, Path]:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(body))
    return CredentialStore(files=[DockerConfig(config)], google=_NoGoogle()), config  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["quay.io", "Quay.IO"])
def test_a_registry_reached_under_its_own_name_runs_its_helper_once(
    tmp_path: Path, helper_log: Path, host: str
) -> None:
    """The session asks for (endpoint host, registry); for a registry's own endpoint the
    two are one name, asked about once, not once as the host and again as the registry."""
    store, _ = _store(tmp_path, {"credHelpers": {"quay.io": "armirror-test"}})
    assert store.lookup(host, "quay.io") is None
    asked = [json.loads(line)["server"] for line in helper_log.read_text().splitlines()]
    assert asked == ["quay.io"]


def test_a_registry_reached_under_its_own_name_has_its_problem_told_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, config = _store(tmp_path, {"credHelpers": {"quay.io": "absent"}})
    caplog.set_level(logging.WARNING, logger="armirror.registry.credentials")
    assert store.lookup("quay.io", "quay.io") is None
    problem = f"docker-credential-absent is not on PATH (named in {config})"
    assert store.searched("quay.io", "quay.io") == f"looked in {config}; {problem}"
    assert [r.getMessage() for r in caplog.records] == [f"credentials for quay.io: {problem}"]
