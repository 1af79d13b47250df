"""Inline SVG charts: stacked daily bars and a line, with round axis ticks and gaps.

A day without data (None) draws no bar but a pale full-height band titled "no data",
and the line breaks there instead of dropping to zero.  The y axis runs from 0 to a
round number (1, 2, 2.5 or 5 times a power of ten) with a tick at each step, so a
reader can read values off it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import date

WIDTH = 900
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 10, 10, 24
NICE_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)


def nice_ticks(top: float, *, count: int = 4) -> list[float]:
    """Ticks from 0 up to a round number at least ``top``, about ``count`` steps."""
    if top <= 0:
        return [0.0, 1.0]
    rough = top / count
    power = 10 ** math.floor(math.log10(rough))
    step = next(s * power for s in NICE_STEPS if s * power >= rough - 1e-12)
    steps = math.ceil(top / step - 1e-9)
    return [round(step * n, 10) for n in range(steps + 1)]


def tick_label(value: float, *, percent: bool = False) -> str:
    if percent:
        return f"{value * 100:g}%"
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"


def _y_axis(ticks: list[float], inner_h: float, *, percent: bool) -> str:
    top = ticks[-1]
    parts = []
    for tick in ticks:
        y = PAD_TOP + inner_h - tick / top * inner_h
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" y1="{y:.1f}" x2="{WIDTH - PAD_RIGHT}" '
            f'y2="{y:.1f}" stroke="{"#adb5bd" if tick == 0 else "#e9ecef"}"/>'
            f'<text class="tick" x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{tick_label(tick, percent=percent)}</text>"
        )
    return "".join(parts)


def _x_labels(days: Sequence[date], step: float, offset: float, height: int) -> str:
    every = max(1, math.ceil(len(days) / 10))
    return "".join(
        f'<text x="{PAD_LEFT + i * step + offset:.1f}" y="{height - 6}" '
        f'text-anchor="middle">{day.strftime("%m-%d")}</text>'
        for i, day in enumerate(days)
        if i % every == 0
    )


def bar_chart(
    chart_id: str,
    label: str,
    days: Sequence[date],
    series: dict[str, Sequence[int | None]],
    colours: dict[str, str],
    names: dict[str, str],
    *,
    height: int = 220,
    marks: dict[int, str] | None = None,
) -> str:
    """Stacked bars per day, one colour per series; a day without data has no bar.

    ``marks`` draws a dashed line over a day (by index), titled with its text."""
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = height - PAD_TOP - PAD_BOTTOM
    totals = [sum(values[i] or 0 for values in series.values()) for i in range(len(days))]
    ticks = nice_ticks(max(totals, default=0))
    top = ticks[-1]
    step = inner_w / max(len(days), 1)
    bar_w = max(step * 0.8, 1)
    parts = [
        f'<svg id="{chart_id}" role="img" aria-label="{html.escape(label)}" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">',
        _y_axis(ticks, inner_h, percent=False),
    ]
    for i, day in enumerate(days):
        if all(values[i] is None for values in series.values()):
            parts.append(
                f'<rect class="no-data" data-day="{day.isoformat()}" x="{PAD_LEFT + i * step:.1f}"'
                f' y="{PAD_TOP}" width="{bar_w:.1f}" height="{inner_h}" fill="#f1f3f5">'
                f"<title>{day}: no data</title></rect>"
                f'<text class="no-data-label" x="{PAD_LEFT + i * step + bar_w / 2:.1f}" '
                f'y="{PAD_TOP + 14}" text-anchor="middle">no data</text>'
            )
            continue
        y: float = PAD_TOP + inner_h
        for name, values in series.items():
            value = values[i] or 0
            if not value:
                continue
            h = value / top * inner_h
            y -= h
            parts.append(
                f'<rect class="bar {name}" data-series="{name}" '
                f'data-day="{day.isoformat()}" data-value="{value}" x="{PAD_LEFT + i * step:.1f}" '
                f'y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colours[name]}"><title>{day}: {value} {names[name]}</title></rect>'
            )
    for i, text in sorted((marks or {}).items()):
        x = PAD_LEFT + i * step + bar_w / 2
        parts.append(
            f'<line class="mark" data-day="{days[i].isoformat()}" x1="{x:.1f}" x2="{x:.1f}" '
            f'y1="{PAD_TOP}" y2="{PAD_TOP + inner_h}" stroke="#343a40" stroke-width="1.5" '
            f'stroke-dasharray="4 3"><title>{days[i]}: {html.escape(text)}</title></line>'
        )
    parts.append(_x_labels(days, step, bar_w / 2, height))
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    chart_id: str,
    label: str,
    days: Sequence[date],
    values: Sequence[float | None],
    colour: str,
    *,
    percent: bool,
    height: int = 160,
) -> str:
    """One line over the days; it breaks where a day has no value."""
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = height - PAD_TOP - PAD_BOTTOM
    present = [v for v in values if v is not None]
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0] if percent else nice_ticks(max(present, default=0))
    top = ticks[-1]
    step = inner_w / max(len(values), 1)
    offset = step * 0.4  # under the middle of the bars above
    segments: list[list[tuple[float, float, float]]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            if segments[-1]:
                segments.append([])
            continue
        x = PAD_LEFT + i * step + offset
        segments[-1].append((x, PAD_TOP + inner_h - value / top * inner_h, value))
    lines = "".join(
        f'<polyline class="series" data-series="{chart_id}" '
        f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y, _ in segment)}" fill="none" '
        f'stroke="{colour}" stroke-width="2"/>'
        for segment in segments
        if segment
    )
    dots = "".join(
        f'<circle class="point" data-series="{chart_id}" data-value="{v}" cx="{x:.1f}" '
        f'cy="{y:.1f}" r="3" fill="{colour}"/>'
        for segment in segments
        for x, y, v in segment
    )
    return (
        f'<svg id="{chart_id}" role="img" aria-label="{html.escape(label)}" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">'
        f"{_y_axis(ticks, inner_h, percent=percent)}{lines}{dots}"
        f"{_x_labels(days, step, offset, height)}</svg>"
    )
