"""What the report shows, as plain data read from the store (``--format json`` prints it).

A day is either a day with data (at least one pull event of any kind was recorded) or a
day without: its values are None, which charts draw as a gap and JSON as null, never as
a drop to zero.  To add a section: a field here, filled in :func:`gather`, and a
function in :data:`armirror.report.html.SECTIONS` that renders it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from armirror.store import PullStore, RedeployRecord

CLASSES = ("third_party", "artifact_registry", "other_google")
CLASS_LABELS = {
    "third_party": "third-party",
    "artifact_registry": "Artifact Registry",
    "other_google": "other Google",
}
CLASS_COLOURS = {
    "third_party": "#d9480f",
    "artifact_registry": "#2b8a3e",
    "other_google": "#1c7ed6",
}


@dataclass
class Progress:
    """Everything the report shows over the days ``since``..``until`` (inclusive)."""

    since: date
    until: date
    days: list[date] = field(default_factory=list)
    #: registry class -> pulls per day, aligned with ``days``; None on a day without data
    pulls: dict[str, list[int | None]] = field(default_factory=dict)
    rate_limited: list[int | None] = field(default_factory=list)
    #: the most pulled third-party images: reference, pulls, rate_limited, failures,
    #: clusters, last_seen, and ``mirrored`` (a copy is recorded; workloads not moved yet)
    top_third_party: list[dict[str, Any]] = field(default_factory=list)
    #: third-party pulls per cluster and namespace: who still pulls from Docker Hub
    workloads: list[dict[str, Any]] = field(default_factory=list)
    copies: dict[str, int] = field(default_factory=dict)
    #: workloads moved onto the mirror (or restored) by ``armirror redeploy``, oldest first
    redeploys: list[dict[str, Any]] = field(default_factory=list)
    #: the first and last day with data in the whole store (None when it is empty)
    data_first: date | None = None
    data_last: date | None = None

    # -- derived -------------------------------------------------------------------------

    def has_data(self, index: int) -> bool:
        return any(self.pulls.get(c, [None] * len(self.days))[index] is not None for c in CLASSES)

    @property
    def empty(self) -> bool:
        """No day of the window has data."""
        return not any(self.has_data(i) for i in range(len(self.days)))

    def total(self, registry_class: str) -> int:
        return sum(v or 0 for v in self.pulls.get(registry_class, []))

    def share(self, last_days: int | None = None) -> float | None:
        """Share of pulls still third-party over the window, or its last ``last_days`` days.

        None when those days have no pulls at all.
        """
        start = 0 if last_days is None else max(0, len(self.days) - last_days)
        third = everything = 0
        for registry_class in CLASSES:
            values = self.pulls.get(registry_class, [])[start:]
            count = sum(v or 0 for v in values)
            everything += count
            if registry_class == "third_party":
                third = count
        return third / everything if everything else None

    @property
    def third_party_share(self) -> float | None:
        return self.share()

    def share_by_day(self) -> list[float | None]:
        shares: list[float | None] = []
        for i in range(len(self.days)):
            day_total = sum(self.pulls.get(c, [None] * len(self.days))[i] or 0 for c in CLASSES)
            third = self.pulls.get("third_party", [None] * len(self.days))[i] or 0
            shares.append(third / day_total if day_total else None)
        return shares

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["days"] = [d.isoformat() for d in self.days]
        data["since"], data["until"] = self.since.isoformat(), self.until.isoformat()
        for key in ("data_first", "data_last"):
            value = getattr(self, key)
            data[key] = value.isoformat() if value else None
        data["third_party_share"] = self.share()
        data["third_party_share_last_day"] = self.share(1)
        data["third_party_share_last_7_days"] = self.share(7)
        return data


def redeploy_marks(records: Iterable[RedeployRecord]) -> list[dict[str, Any]]:
    """One entry per workload and run, oldest first: when it moved (or was restored by
    ``--undo``), and how many of its containers changed."""
    marks: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in records:
        mark = marks.setdefault(
            (record.run_id, record.workload, record.action),
            {
                "day": record.changed_at.date().isoformat(),
                "at": record.changed_at.isoformat(),
                "workload": record.workload,
                "platform": record.platform,
                "action": record.action,
                "containers": 0,
            },
        )
        mark["containers"] += 1
    return list(marks.values())


def gather(store: PullStore, since: date, until: date, *, top: int = 10) -> Progress:
    """Read the store's daily series, ranking, workloads and copies for [since, until]."""
    start = datetime.combine(since, time.min, tzinfo=UTC)
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC)
    days = day_range(since, until)
    index = {day: i for i, day in enumerate(days)}
    progress = Progress(since=since, until=until, days=days)
    progress.pulls = {c: [None] * len(days) for c in CLASSES}
    progress.rate_limited = [None] * len(days)
    everything = store.daily(None, None)
    if everything:
        progress.data_first = min(row.day for row in everything)
        progress.data_last = max(row.day for row in everything)
    for row in everything:
        i = index.get(row.day)
        if i is None:
            continue
        for registry_class in CLASSES:  # a day with any row has data for every class
            if progress.pulls[registry_class][i] is None:
                progress.pulls[registry_class][i] = 0
        series = progress.pulls[class_of(row.registry_class)]
        series[i] = (series[i] or 0) + row.pulls
        progress.rate_limited[i] = (progress.rate_limited[i] or 0) + row.rate_limited
    progress.top_third_party = [
        {
            "reference": r.reference,
            "pulls": r.pulls,
            "rate_limited": r.rate_limited,
            "failures": r.failures,
            "clusters": r.clusters,
            "last_seen": r.last_seen.isoformat(),
            "mirrored": store.mirrored(r.reference) is not None,
        }
        for r in store.top_images(start, end, third_party_only=True, limit=top)
    ]
    progress.workloads = store.third_party_by_workload(start, end, limit=top)
    progress.copies = store.copy_counts(start, end)
    progress.redeploys = redeploy_marks(store.redeploys(start, end))
    return progress


def class_of(registry_class: str) -> str:
    """Fold the store's registry classes into the report's three."""
    if registry_class in ("third_party", "artifact_registry"):
        return registry_class
    return "other_google"


def day_range(since: date, until: date) -> list[date]:
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]
