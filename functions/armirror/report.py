"""Migration progress: are new pulls coming from Artifact Registry yet?

:func:`gather` reads a :class:`~armirror.store.PullStore` into a :class:`Progress`;
:func:`terminal_summary` renders it for a terminal (with a sparkline) and
:func:`html_report` as one self-contained HTML file: inline SVG charts, inline CSS, no
scripts, fonts or network, so it can be attached to a ticket and read anywhere.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from armirror.store import PullStore

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
SPARKS = "▁▂▃▄▅▆▇█"


@dataclass
class Progress:
    """Everything the report shows, as plain data (``--format json`` prints it)."""

    since: date
    until: date
    days: list[date] = field(default_factory=list)
    #: registry class -> pulls per day, aligned with ``days``
    pulls: dict[str, list[int]] = field(default_factory=dict)
    rate_limited: list[int] = field(default_factory=list)
    top_third_party: list[dict[str, Any]] = field(default_factory=list)
    copies: dict[str, int] = field(default_factory=dict)

    def total(self, registry_class: str) -> int:
        return sum(self.pulls.get(registry_class, []))

    @property
    def third_party_share(self) -> float | None:
        """Share of all pulls in the period that still came from third-party registries."""
        everything = sum(self.total(c) for c in CLASSES)
        return self.total("third_party") / everything if everything else None

    def share_by_day(self) -> list[float | None]:
        shares: list[float | None] = []
        for i in range(len(self.days)):
            day_total = sum(self.pulls.get(c, [0] * len(self.days))[i] for c in CLASSES)
            third = self.pulls.get("third_party", [0] * len(self.days))[i]
            shares.append(third / day_total if day_total else None)
        return shares

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["days"] = [d.isoformat() for d in self.days]
        data["since"], data["until"] = self.since.isoformat(), self.until.isoformat()
        data["third_party_share"] = self.third_party_share
        return data


def gather(store: PullStore, since: date, until: date, *, top: int = 10) -> Progress:
    """Read the store's daily series, ranking and copies for [since, until]."""
    start = datetime.combine(since, time.min, tzinfo=UTC)
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC)
    days = day_range(since, until)
    index = {day: i for i, day in enumerate(days)}
    progress = Progress(since=since, until=until, days=days)
    progress.pulls = {c: [0] * len(days) for c in CLASSES}
    progress.rate_limited = [0] * len(days)
    for row in store.daily(start, end):
        i = index.get(row.day)
        if i is None:
            continue
        progress.pulls[class_of(row.registry_class)][i] += row.pulls
        progress.rate_limited[i] += row.rate_limited
    progress.top_third_party = [
        {
            "reference": r.reference,
            "pulls": r.pulls,
            "rate_limited": r.rate_limited,
            "failures": r.failures,
            "clusters": r.clusters,
            "last_seen": r.last_seen.isoformat(),
        }
        for r in store.top_images(start, end, third_party_only=True, limit=top)
    ]
    progress.copies = store.copy_counts(start, end)
    return progress


def class_of(registry_class: str) -> str:
    """Fold the store's registry classes into the report's three."""
    if registry_class in ("third_party", "artifact_registry"):
        return registry_class
    return "other_google"


def sparkline(values: list[int] | list[float]) -> str:
    """``[0, 3, 9]`` -> ``▁▃█``."""
    if not values:
        return ""
    top = max(values) or 1
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1)))] for v in values)


def day_range(since: date, until: date) -> list[date]:
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


def terminal_summary(progress: Progress) -> str:
    """A compact plain-text summary for a terminal."""
    share = progress.third_party_share
    lines = [
        f"pulls {progress.since} .. {progress.until}",
    ]
    for registry_class in CLASSES:
        series = progress.pulls.get(registry_class, [])
        lines.append(f"  {CLASS_LABELS[registry_class]:18} {sum(series):7d}  {sparkline(series)}")
    lines.append(
        "  still third-party: "
        + (f"{share:.0%}" if share is not None else "no pulls recorded")
        + f"  {sparkline([s or 0.0 for s in progress.share_by_day()])}"
    )
    lines.append(
        f"  rate-limit failures {sum(progress.rate_limited):5d}  {sparkline(progress.rate_limited)}"
    )
    lines.append(
        "  copies: " + ", ".join(f"{n} {status}" for status, n in sorted(progress.copies.items()))
        if progress.copies
        else "  copies: none recorded"
    )
    if progress.top_third_party:
        lines.append("  top remaining third-party images:")
        for row in progress.top_third_party[:10]:
            lines.append(
                f"    {row['pulls']:6d} pulls  {row.get('rate_limited', 0):3d} rate-limited  "
                f"{row.get('clusters', 0):2d} cluster(s)  {row['reference']}"
            )
    return "\n".join(lines)


# -- HTML ------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;
max-width:60rem;color:#212529;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem} h2{font-size:1.1rem;margin-top:2rem}
.muted{color:#868e96} .kpis{display:flex;gap:1rem;flex-wrap:wrap}
.kpi{border:1px solid #dee2e6;border-radius:6px;padding:.6rem 1rem;min-width:10rem}
.kpi b{display:block;font-size:1.6rem} table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e9ecef}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums} .legend span{margin-right:1rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}
svg text{font:11px system-ui,sans-serif;fill:#495057}
"""


def _axis(x1: float, y: float, x2: float) -> str:
    return f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="#adb5bd"/>'


def _bar_chart(progress: Progress, width: int = 900, height: int = 220) -> str:
    """Stacked daily bars, one colour per registry class."""
    days = progress.days
    pad_l, pad_b, pad_t = 40, 24, 10
    inner_w, inner_h = width - pad_l - 10, height - pad_b - pad_t
    totals = [
        sum(progress.pulls.get(c, [0] * len(days))[i] for c in CLASSES) for i in range(len(days))
    ]
    top = max(totals, default=0) or 1
    step = inner_w / max(len(days), 1)
    bar_w = max(step * 0.8, 1)
    parts = [
        f'<svg id="pulls-chart" role="img" aria-label="pulls per day by registry class" '
        f'viewBox="0 0 {width} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">',
        _axis(pad_l, pad_t + inner_h, width - 10),
        f'<text x="{pad_l - 6}" y="{pad_t + 4}" text-anchor="end">{top}</text>',
        f'<text x="{pad_l - 6}" y="{pad_t + inner_h}" text-anchor="end">0</text>',
    ]
    for i, day in enumerate(days):
        y: float = pad_t + inner_h
        for registry_class in CLASSES:
            value = progress.pulls.get(registry_class, [0] * len(days))[i]
            if not value:
                continue
            h = value / top * inner_h
            y -= h
            parts.append(
                f'<rect class="bar {registry_class}" data-series="{registry_class}" '
                f'data-day="{day.isoformat()}" data-value="{value}" x="{pad_l + i * step:.1f}" '
                f'y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{CLASS_COLOURS[registry_class]}"><title>{day}: {value} '
                f"{CLASS_LABELS[registry_class]}</title></rect>"
            )
        if len(days) <= 16 or i % max(1, len(days) // 8) == 0:
            parts.append(
                f'<text x="{pad_l + i * step + bar_w / 2:.1f}" y="{height - 6}" '
                f'text-anchor="middle">{day.strftime("%m-%d")}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _line_chart(
    chart_id: str, label: str, values: list[float | None], colour: str, *, percent: bool
) -> str:
    width, height, pad_l, pad_b, pad_t = 900, 160, 40, 24, 10
    inner_w, inner_h = width - pad_l - 10, height - pad_b - pad_t
    present = [v for v in values if v is not None]
    top = 1.0 if percent else (max(present, default=0) or 1)
    step = inner_w / max(len(values) - 1, 1)
    points = [
        (pad_l + i * step, pad_t + inner_h - (v / top) * inner_h)
        for i, v in enumerate(values)
        if v is not None
    ]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    top_label = "100%" if percent else f"{top:g}"
    dots = "".join(
        f'<circle class="point" data-series="{chart_id}" data-value="{v}" cx="{x:.1f}" '
        f'cy="{y:.1f}" r="3" fill="{colour}"/>'
        for (x, y), v in zip(points, present, strict=True)
    )
    return (
        f'<svg id="{chart_id}" role="img" aria-label="{html.escape(label)}" '
        f'viewBox="0 0 {width} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">'
        f"{_axis(pad_l, pad_t + inner_h, width - 10)}"
        f'<text x="{pad_l - 6}" y="{pad_t + 4}" text-anchor="end">{top_label}</text>'
        f'<text x="{pad_l - 6}" y="{pad_t + inner_h}" text-anchor="end">0</text>'
        f'<polyline class="series" data-series="{chart_id}" points="{path}" fill="none" '
        f'stroke="{colour}" stroke-width="2"/>{dots}</svg>'
    )


def html_report(progress: Progress, *, generated: datetime | None = None) -> str:
    """One self-contained HTML page: no scripts, fonts or network."""
    esc = html.escape
    share = progress.third_party_share
    when = (generated or datetime.now()).strftime("%Y-%m-%d %H:%M")
    legend = "".join(
        f'<span><i class="swatch" style="background:{CLASS_COLOURS[c]}"></i>{CLASS_LABELS[c]}'
        f" ({progress.total(c)})</span>"
        for c in CLASSES
    )
    rows = "".join(
        f"<tr><td>{esc(row['reference'])}</td><td class=n>{row['pulls']}</td>"
        f"<td class=n>{row.get('rate_limited', 0)}</td>"
        f"<td class=n>{row.get('clusters', 0)}</td></tr>"
        for row in progress.top_third_party
    )
    copies = ", ".join(f"{n} {esc(s)}" for s, n in sorted(progress.copies.items()) if s != "copied")
    copies = copies or "none failed"
    kpi_share = f"{share:.0%}" if share is not None else "n/a"
    share_chart = _line_chart(
        "share-chart",
        "share of pulls still third-party",
        progress.share_by_day(),
        "#d9480f",
        percent=True,
    )
    ratelimit_chart = _line_chart(
        "ratelimit-chart",
        "rate-limit failures per day",
        [float(v) for v in progress.rate_limited],
        "#c92a2a",
        percent=False,
    )
    empty = '<tr><td colspan=4 class="muted">none: every pull came from a mirror</td></tr>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>armirror migration report</title><style>{_CSS}</style></head>
<body>
<h1>Container image migration</h1>
<p class="muted">Pulls from {progress.since} to {progress.until}; generated {when} by armirror.</p>
<div class="kpis">
<div class="kpi" id="kpi-share"><b>{kpi_share}</b>of pulls still third-party</div>
<div class="kpi"><b>{progress.total("artifact_registry")}</b>pulls from Artifact Registry</div>
<div class="kpi"><b>{sum(progress.rate_limited)}</b>rate-limit failures</div>
<div class="kpi"><b>{progress.copies.get("copied", 0)}</b>images copied
<span class="muted">({copies})</span></div>
</div>
<h2>Pulls per day by registry</h2>
<p class="legend">{legend}</p>
{_bar_chart(progress)}
<h2>Share of pulls still third-party</h2>
{share_chart}
<h2>Rate-limit failures per day</h2>
{ratelimit_chart}
<h2>Top remaining third-party images</h2>
<table id="top-images"><thead><tr>
<th>image</th><th class=n>pulls</th><th class=n>rate-limited</th>
<th class=n>clusters</th></tr></thead>
<tbody>{rows or empty}</tbody></table>
</body></html>
"""
