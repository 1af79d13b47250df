"""The report for a terminal: totals with sparklines, the share, the top images."""

from __future__ import annotations

from armirror.report.model import CLASS_LABELS, CLASSES, Progress
from armirror.report.redeploys import redeploy_lines

SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[int | None] | list[float | None]) -> str:
    """``[0, 3, 9]`` -> ``▁▃█``; a day without data is a space."""
    if not values:
        return ""
    top = max((v for v in values if v is not None), default=0) or 1
    return "".join(
        " " if v is None else SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1)))]
        for v in values
    )


def _percent(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "no data"


def terminal_summary(progress: Progress, *, empty_note: str = "") -> str:
    """A compact plain-text summary; ``empty_note`` says where data is when there is none."""
    lines = [f"pulls {progress.since} .. {progress.until} (UTC)"]
    if progress.empty:
        lines.append("  no data" + (f": {empty_note}" if empty_note else ""))
    for registry_class in CLASSES:
        series = progress.pulls.get(registry_class, [])
        lines.append(
            f"  {CLASS_LABELS[registry_class]:18} {progress.total(registry_class):7d}  "
            f"{sparkline(series)}"
        )
    lines.append(
        f"  still third-party: {_percent(progress.share(1))} on {progress.until}, "
        f"{_percent(progress.share(7))} last 7 days, {_percent(progress.share())} window  "
        f"{sparkline(progress.share_by_day())}"
    )
    lines.append(
        f"  rate-limit failures {sum(v or 0 for v in progress.rate_limited):5d}  "
        f"{sparkline(progress.rate_limited)}"
    )
    lines.append(
        "  copies: " + ", ".join(f"{n} {status}" for status, n in sorted(progress.copies.items()))
        if progress.copies
        else "  copies: none recorded"
    )
    if progress.top_third_party:
        lines.append("  top remaining third-party images:")
        for row in progress.top_third_party[:10]:
            seen = str(row.get("last_seen", ""))[:16].replace("T", " ")
            lines.append(
                f"    {row['pulls']:6d} pulls  {row.get('rate_limited', 0):3d} rate-limited  "
                f"{row.get('clusters', 0):2d} cluster(s)  last {seen}  {row['reference']}"
                + ("  (mirrored)" if row.get("mirrored") else "")
            )
    if progress.workloads:
        lines.append("  third-party pulls by cluster/namespace:")
        for row in progress.workloads[:10]:
            where = f"{row['cluster'] or '(Cloud Run)'}/{row['namespace'] or '-'}"
            lines.append(
                f"    {row['pulls']:6d} pulls  {row['rate_limited']:3d} rate-limited  "
                f"{row['images']:3d} image(s)  {where}"
            )
    lines.extend(redeploy_lines(progress))
    return "\n".join(lines)
