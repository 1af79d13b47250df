"""CopyResult.to_json: what ``copy --format json`` and the copy_image handler answer."""

from __future__ import annotations

from datetime import UTC, datetime

from armirror.registry import CopyResult


def test_a_result_never_started_shows_its_times_as_null() -> None:
    """The copy_image handler answers a refused task with a result that never ran."""
    refused = CopyResult("docker.io/library/a:1", "mirror/a:1", "failed", error="refused")
    shown = refused.to_json()
    assert (shown["started_at"], shown["finished_at"]) == (None, None)
    assert (shown["status"], shown["error"]) == ("failed", "refused")


def test_a_result_shows_its_times_in_iso_8601() -> None:
    started = datetime(2026, 12, 1, 9, 30, 0, 250_000, tzinfo=UTC)
    finished = datetime(2026, 12, 1, 9, 30, 5, tzinfo=UTC)
    done = CopyResult("a", "b", "copied", started_at=started, finished_at=finished)
    shown = done.to_json()
    assert shown["started_at"] == "2026-12-01T09:30:00.250000+00:00"
    assert shown["finished_at"] == "2026-12-01T09:30:05+00:00"
