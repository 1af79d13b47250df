"""The store options copy, pulls and report share, and the window pulls and report agree on.

Default window, for both ``pulls`` and ``report``: the last 30 days, unless the newest
recorded pull event is older than that: then the 30 days up to it, so importing last
month's logs shows last month rather than 30 empty days (and copies made today still
count while recent pulls exist).  ``--since``/``--until`` override either end.  A
window without data while the store holds data elsewhere says so, naming that range.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from armirror.cli import output

if TYPE_CHECKING:
    from armirror.store import PullStore

DEFAULT_DAYS = 30


def store_option[F: Callable[..., Any]](command: F) -> F:
    return click.option(
        "--store",
        "store_url",
        envvar="ARMIRROR_STORE",
        metavar="URL",
        help="duckdb:///PATH (default $XDG_DATA_HOME/armirror/armirror.duckdb) or "
        "bigquery://PROJECT/DATASET (env ARMIRROR_STORE).",
    )(command)


def open_store(url: str | None, *, hint: str = "") -> PullStore:
    """The store ``url`` names; a malformed URL is bad input, an unreachable store a failure.

    ``hint`` ends the message of a store that cannot be opened (another way to go on).
    """
    from armirror.store import StoreError
    from armirror.store import open_store as open_any

    try:
        return open_any(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--store") from None
    except StoreError as exc:
        output.failure(f"cannot open the store: {exc}" + (f"; {hint}" if hint else ""))
    except Exception as exc:
        if type(exc).__name__ == "DefaultCredentialsError":  # google.auth, imported lazily
            output.failure(
                "no Google credentials for the BigQuery store: run `gcloud auth "
                "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
            )
        raise


def check_store(url: str | None, *, hint: str = "") -> None:
    """Stop now if ``url`` is malformed or its store unreachable, holding nothing open.

    A DuckDB file is not opened (it has one writer at a time, and the command opens it
    when it writes); any other store is opened and closed, so missing credentials show
    before the work instead of after it.
    """
    if not url or url.startswith("duckdb:"):
        return
    open_store(url, hint=hint).close()


@dataclass(frozen=True)
class Window:
    """Whole UTC days ``first``..``last`` (inclusive), and whether the user chose them."""

    first: date
    last: date
    chosen: bool

    @property
    def since(self) -> datetime:
        return datetime(self.first.year, self.first.month, self.first.day, tzinfo=UTC)

    @property
    def until(self) -> datetime:
        return self.since + timedelta(days=(self.last - self.first).days + 1)

    def __str__(self) -> str:
        return f"{self.first} to {self.last}"


def data_range(store: PullStore) -> tuple[date, date] | None:
    """The first and last day with any pull event recorded, or None for an empty store."""
    days = [row.day for row in store.daily(None, None)]
    return (min(days), max(days)) if days else None


def window(since: datetime | None, until: datetime | None, store: PullStore) -> Window:
    """The window a command reports on (see the module docstring)."""
    if since and until and since.date() > until.date():
        output.bad_input(f"--since {since.date()} is after --until {until.date()}")
    chosen = since is not None or until is not None
    if until is not None:
        last = until.date()
    elif since is not None:
        last = datetime.now(UTC).date()
    else:
        today = datetime.now(UTC).date()
        found = data_range(store)
        last = today if found is None or (today - found[1]).days < DEFAULT_DAYS else found[1]
    first = since.date() if since else last - timedelta(days=DEFAULT_DAYS - 1)
    return Window(first, last, chosen)


def empty_window_note(store: PullStore, span: Window) -> str:
    """What to say when ``span`` holds no pull events."""
    found = data_range(store)
    if found is None:
        return "no pull events recorded yet (armirror pulls FILE records exported logs)"
    first, last = found
    return (
        f"no pull events from {span}; the store has events from {first} to {last} "
        f"(try --since {first} --until {last})"
    )
