"""When each workload moved onto the mirror: ``armirror redeploy``'s records in the report.

The store keeps one row per container changed; the model holds one entry per workload
and run (:func:`armirror.report.model.redeploy_marks`); this module draws them: a dashed
mark on the pulls chart on each day workloads moved (:func:`chart_marks`), a table
(:func:`redeploys_table`) and a few terminal lines (:func:`redeploy_lines`).
"""

from __future__ import annotations

import html

from armirror.report.model import Progress


def chart_marks(progress: Progress) -> dict[int, str]:
    """Day index -> what moved that day, for the pulls chart."""
    index = {day.isoformat(): i for i, day in enumerate(progress.days)}
    by_day: dict[int, list[str]] = {}
    for mark in progress.redeploys:
        if mark["action"] == "moved" and mark["day"] in index:
            by_day.setdefault(index[mark["day"]], []).append(mark["workload"])
    return {i: "moved onto the mirror: " + ", ".join(names) for i, names in by_day.items()}


def redeploys_table(progress: Progress) -> str:
    if not progress.redeploys:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(m['at'][:16].replace('T', ' '))}</td>"
        f"<td>{html.escape(m['workload'])}</td><td>{html.escape(m['action'])}</td>"
        f"<td class=n>{m['containers']}</td></tr>"
        for m in progress.redeploys
    )
    return (
        '<h2>Workloads redeployed</h2><table id="redeploys"><thead><tr><th>when (UTC)</th>'
        "<th>workload</th><th>action</th><th class=n>containers</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def redeploy_lines(progress: Progress) -> list[str]:
    if not progress.redeploys:
        return []
    moved = sum(1 for m in progress.redeploys if m["action"] == "moved")
    restored = len(progress.redeploys) - moved
    lines = [
        f"  redeploys: {moved} workload(s) moved onto the mirror"
        + (f", {restored} restored by --undo" if restored else "")
    ]
    for mark in progress.redeploys[-10:]:
        when = mark["at"][:16].replace("T", " ")
        lines.append(f"    {when}  {mark['action']:8}  {mark['workload']}")
    return lines
