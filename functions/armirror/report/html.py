"""One self-contained HTML page: inline SVG and CSS, no scripts, fonts or network.

The page is :data:`SECTIONS` in order, each a function from :class:`Progress` to HTML
(or "" to leave itself out), so a new section is one function added to the list.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime

from armirror.report.charts import bar_chart, line_chart
from armirror.report.model import CLASS_COLOURS, CLASS_LABELS, CLASSES, Progress
from armirror.report.redeploys import chart_marks, redeploys_table

esc = html.escape

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;
max-width:60rem;color:#212529;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem} h2{font-size:1.1rem;margin-top:2rem}
.muted{color:#868e96} .kpis{display:flex;gap:1rem;flex-wrap:wrap}
.kpi{border:1px solid #dee2e6;border-radius:6px;padding:.6rem 1rem;min-width:10rem}
.kpi b{display:block;font-size:1.6rem} table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e9ecef}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums} .legend span{margin-right:1rem}
td.ref{word-break:keep-all;overflow-wrap:anywhere}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}
.tag{font-size:.8rem;border-radius:4px;padding:0 .35rem;background:#d3f9d8;color:#2b8a3e}
.empty{border:1px dashed #ced4da;border-radius:6px;padding:1.5rem;text-align:center}
svg text{font:11px system-ui,sans-serif;fill:#495057}
"""


def _percent(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "no data"


def headline(progress: Progress) -> str:
    """The share still third-party: last day, last 7 days, and the whole window."""
    copies = ", ".join(f"{n} {esc(s)}" for s, n in sorted(progress.copies.items()) if s != "copied")
    return f"""<div class="kpis">
<div class="kpi" id="kpi-share-day"><b>{_percent(progress.share(1))}</b>third-party on
{progress.until}</div>
<div class="kpi" id="kpi-share-week"><b>{_percent(progress.share(7))}</b>third-party,
last 7 days</div>
<div class="kpi" id="kpi-share"><b>{_percent(progress.share())}</b>third-party, window
average</div>
<div class="kpi"><b>{sum(v or 0 for v in progress.rate_limited)}</b>rate-limit failures</div>
<div class="kpi"><b>{progress.copies.get("copied", 0)}</b>images copied
<span class="muted">({copies or "none failed"})</span></div>
</div>"""


def no_data(progress: Progress) -> str:
    if not progress.empty:
        return ""
    if progress.data_first and progress.data_last:
        where = (
            f"The store has pull events from {progress.data_first} to {progress.data_last}: "
            f"run <code>armirror report --since {progress.data_first} --until "
            f"{progress.data_last}</code>."
        )
    else:
        where = "No pull events are recorded yet: <code>armirror pulls FILE</code> records them."
    return (
        f'<div class="empty" id="no-data"><b>No data</b> from {progress.since} to '
        f"{progress.until}. {where}</div>"
    )


def pulls_chart(progress: Progress) -> str:
    if progress.empty:
        return ""
    legend = "".join(
        f'<span><i class="swatch" style="background:{CLASS_COLOURS[c]}"></i>{CLASS_LABELS[c]}'
        f" ({progress.total(c)})</span>"
        for c in CLASSES
    )
    marks = chart_marks(progress)
    if marks:
        legend += "<span>┆ workloads moved onto the mirror (armirror redeploy)</span>"
    chart = bar_chart(
        "pulls-chart",
        "pulls per day by registry class",
        progress.days,
        {c: progress.pulls.get(c, []) for c in CLASSES},
        CLASS_COLOURS,
        CLASS_LABELS,
        marks=marks,
    )
    return f'<h2>Pulls per day by registry</h2><p class="legend">{legend}</p>{chart}'


def share_chart(progress: Progress) -> str:
    if progress.empty:
        return ""
    chart = line_chart(
        "share-chart",
        "share of pulls still third-party",
        progress.days,
        progress.share_by_day(),
        "#d9480f",
        percent=True,
    )
    return f"<h2>Share of pulls still third-party</h2>{chart}"


def ratelimit_chart(progress: Progress) -> str:
    if progress.empty:
        return ""
    values = [float(v) if v is not None else None for v in progress.rate_limited]
    chart = line_chart(
        "ratelimit-chart",
        "rate-limit failures per day",
        progress.days,
        values,
        "#c92a2a",
        percent=False,
    )
    return f"<h2>Rate-limit failures per day</h2>{chart}"


def top_images(progress: Progress) -> str:
    if progress.empty:
        return ""
    rows = "".join(
        f"<tr><td class=ref>{esc(row['reference'])}"
        + (' <span class="tag">mirrored</span>' if row.get("mirrored") else "")
        + f"</td><td class=n>{row['pulls']}</td>"
        f"<td class=n>{row.get('rate_limited', 0)}</td>"
        f"<td class=n>{row.get('clusters', 0)}</td>"
        f"<td>{esc(str(row.get('last_seen', ''))[:16].replace('T', ' '))}</td></tr>"
        for row in progress.top_third_party
    )
    empty = '<tr><td colspan=5 class="muted">none: every pull came from a mirror</td></tr>'
    note = (
        '<p class="muted">"mirrored": the copy exists; the workloads still name the '
        "third-party registry (rewrite and redeploy them).</p>"
        if any(row.get("mirrored") for row in progress.top_third_party)
        else ""
    )
    return f"""<h2>Top remaining third-party images</h2>
<table id="top-images"><thead><tr>
<th>image</th><th class=n>pulls</th><th class=n>rate-limited</th>
<th class=n>clusters</th><th>last seen (UTC)</th></tr></thead>
<tbody>{rows or empty}</tbody></table>{note}"""


def workloads(progress: Progress) -> str:
    if progress.empty:
        return ""
    rows = "".join(
        f"<tr><td>{esc(row['cluster'] or '(Cloud Run)')}</td>"
        f"<td>{esc(row['namespace'] or '')}</td><td class=n>{row['pulls']}</td>"
        f"<td class=n>{row['rate_limited']}</td><td class=n>{row['images']}</td></tr>"
        for row in progress.workloads
    )
    empty = '<tr><td colspan=5 class="muted">no third-party pulls in this window</td></tr>'
    return f"""<h2>Who still pulls from third-party registries</h2>
<table id="workloads"><thead><tr><th>cluster</th><th>namespace</th><th class=n>pulls</th>
<th class=n>rate-limited</th><th class=n>images</th></tr></thead>
<tbody>{rows or empty}</tbody></table>"""


SECTIONS: list[Callable[[Progress], str]] = [
    headline,
    no_data,
    pulls_chart,
    share_chart,
    ratelimit_chart,
    top_images,
    workloads,
    redeploys_table,
]


def html_report(progress: Progress, *, generated: datetime | None = None) -> str:
    """The whole page."""
    when = (generated or datetime.now()).strftime("%Y-%m-%d %H:%M")
    body = "\n".join(part for section in SECTIONS if (part := section(progress)))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>armirror migration report</title><style>{CSS}</style></head>
<body>
<h1>Container image migration</h1>
<p class="muted">Pulls from {progress.since} to {progress.until} (UTC days); generated {when}
by armirror.</p>
{body}
</body></html>
"""
