"""Reading a LogEntry's fields, which may come in any shape: every accessor checks the
type it gets, and a BigQuery sink export's lower-cased names are read as the originals."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from armirror.events.columns import fit_insert_id, fit_name
from armirror.events.model import Skip
from armirror.events.timestamps import parse_timestamp
from armirror.reference import InvalidReference, parse

EMPTY: Mapping[str, Any] = {}


def field(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]``, also under the lower-cased name a BigQuery sink export uses."""
    value = obj.get(name)
    if value is None and name != name.lower():
        value = obj.get(name.lower())
    return value


def mapping(obj: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """``obj[name]`` when it is an object, else an empty one."""
    value = field(obj, name)
    return value if isinstance(value, dict) else EMPTY


def entry_time(entry: Mapping[str, Any], fallback: Any = None) -> datetime | Skip:
    """The entry's timestamp (else its receiveTimestamp, else ``fallback``)."""
    raw = field(entry, "timestamp") or field(entry, "receiveTimestamp") or fallback
    if raw is None:
        return Skip("missing_field", "timestamp")
    try:
        return parse_timestamp(raw)
    except (ValueError, OverflowError, OSError):
        return Skip("bad_timestamp", repr(raw)[:64])


def project_from_log_name(entry: Mapping[str, Any]) -> str | None:
    """The project of ``logName`` (``projects/P/logs/…``), or None."""
    log_name = field(entry, "logName")
    if isinstance(log_name, str) and log_name.startswith("projects/"):
        return fit_name(log_name.split("/", 2)[1])
    return None


def insert_id(entry: Mapping[str, Any]) -> str | Skip:
    """The entry's insertId, which identifies its events."""
    value = fit_insert_id(field(entry, "insertId"))
    return Skip("missing_field", "insertId") if value is None else value


@functools.lru_cache(maxsize=16384)
def normalise(image: str) -> tuple[str, str, str, str, bool] | str:
    """(reference, registry, repository, registry_class, third_party), or the problem."""
    try:
        ref = parse(image)
    except InvalidReference as exc:
        return exc.problem
    cls = ref.registry_class
    return str(ref), ref.registry, ref.repository, str(cls), ref.third_party
