"""Charts for the reports (performance test, find-limit) as inline SVG: no library, works offline.

``svg_chart`` draws one or more series of (x, y) points on linear axes with five labelled ticks
on each (``250k``, ``1.5M``), a title for each axis, an optional dashed horizontal goal line and
an optional vertical marker (the limit found), as lines, dots or both. With ``x_time`` the x axis
is time into the run from 0, its ticks on round steps (10 s, 1 min, 5 min...) labelled ``m:ss``
or ``h:mm:ss``. Values below zero get an axis of their own below the line.
"""

from __future__ import annotations

import html
import math

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b")
GOAL_COLOUR = "#e69f00"
MARK_COLOUR = "#555"
TICKS = 5
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 78, 16, 28, 58
LEGEND_CHAR_PX, LEGEND_GAP_PX = 6.5, 28         # the legend's entries are placed by their length
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def clock(seconds: float) -> str:
    """A time tick: ``0:00``, ``2:30``, ``1:00:00``."""
    whole = int(round(seconds))
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def time_ticks(end: float, most: int = 8) -> tuple[float, list[float]]:
    """(the axis's end, its ticks): a round step giving at most ``most`` intervals over ``end`` seconds."""
    step = next((s for s in TIME_STEPS if end / s <= most), TIME_STEPS[-1] * math.ceil(end / TIME_STEPS[-1] / most))
    count = max(1, math.ceil(end / step - 1e-9))
    return float(count * step), [float(i * step) for i in range(count + 1)]


def si(value: float, unit: str = "") -> str:
    """A short tick label: ``0``, ``950``, ``12.5k``, ``4M``, ``0.25``; ``unit`` appended."""
    magnitude = abs(value)
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if magnitude >= scale:
            return f"{value / scale:.3g}{suffix}{unit}"
    return f"{value:.3g}{unit}"


def _nice_top(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^n at or above ``value``: round tick labels."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value * (1 - 1e-9):
            return float(step * power)
    return float(10 * power)


def svg_chart(title: str, series: dict[str, list[tuple[float, float]]], unit: str = "",
              goal: float | None = None, width: int = 860, height: int = 260, x_label: str = "seconds",
              y_label: str = "", x_unit: str = "", dots: bool = False, lines: bool = True,
              mark_x: float | None = None, mark_label: str = "", dashed: tuple[str, ...] = (),
              x_from_zero: bool = False, dots_only: tuple[str, ...] = (), x_time: bool = False,
              y_max: float | None = None) -> str:
    """A chart as inline SVG: one polyline (and/or dots) per series; ``dashed`` series are drawn dashed,
    ``dots_only`` series as dots without a line; ``y_max``: the axis ends there when every value is
    within it (a percentage at 100, not at the next round number after 105)."""
    xs = [x for pts in series.values() for x, _ in pts] or [0.0, 1.0]
    ys = [y for pts in series.values() for _, y in pts] + ([goal] if goal else [])
    x0 = 0.0 if x_from_zero or x_time else min(xs)
    x1 = max(max(xs), x0 + 1e-9)
    if x_time:
        x1, x_ticks = time_ticks(x1)
    else:
        if x_from_zero:
            x1 = _nice_top(x1)
        x_ticks = [x0 + (x1 - x0) * i / (TICKS - 1) for i in range(TICKS)]
    y1 = _nice_top(max(ys, default=1.0) * 1.05)
    if y_max is not None and max(ys, default=0.0) <= y_max:
        y1 = min(y1, y_max)
    low = min(ys, default=0.0)
    y0 = -_nice_top(-low * 1.05) if low < 0 else 0.0
    plot_w, plot_h = width - PAD_LEFT - PAD_RIGHT, height - PAD_TOP - PAD_BOTTOM

    def px(x: float) -> float:
        return PAD_LEFT + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return PAD_TOP + plot_h - (y - y0) / (y1 - y0) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="{html.escape(title)}" style="font:11px sans-serif;max-width:100%;height:auto">',
           f'<rect width="{width}" height="{height}" fill="#fff"/>',
           f'<text x="{PAD_LEFT}" y="16" font-weight="bold">{html.escape(title)}</text>']
    for i in range(TICKS):
        y = y0 + (y1 - y0) * i / (TICKS - 1)
        out.append(f'<line x1="{PAD_LEFT}" x2="{width - PAD_RIGHT}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{PAD_LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{si(y, unit)}</text>')
    for x in x_ticks:
        label = clock(x) if x_time else si(x, x_unit)
        out.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{PAD_TOP + plot_h}" y2="{PAD_TOP + plot_h + 4}" '
                   'stroke="#999"/>')
        out.append(f'<text x="{px(x):.1f}" y="{PAD_TOP + plot_h + 16}" text-anchor="middle">{label}</text>')
    out.append(f'<line x1="{PAD_LEFT}" x2="{width - PAD_RIGHT}" y1="{py(0.0):.1f}" y2="{py(0.0):.1f}" '
               'stroke="#999"/>')
    out.append(f'<text x="{PAD_LEFT + plot_w / 2:.1f}" y="{PAD_TOP + plot_h + 32}" text-anchor="middle">'
               f'{html.escape(x_label)}</text>')
    if y_label:
        mid = PAD_TOP + plot_h / 2
        out.append(f'<text x="14" y="{mid:.1f}" text-anchor="middle" transform="rotate(-90 14 {mid:.1f})">'
                   f'{html.escape(y_label)}</text>')
    if goal:
        out.append(f'<line x1="{PAD_LEFT}" x2="{width - PAD_RIGHT}" y1="{py(goal):.1f}" y2="{py(goal):.1f}" '
                   f'stroke="{GOAL_COLOUR}" stroke-dasharray="6,4"/>')
    if mark_x is not None:
        out.append(f'<line x1="{px(mark_x):.1f}" x2="{px(mark_x):.1f}" y1="{PAD_TOP}" y2="{PAD_TOP + plot_h}" '
                   f'stroke="{MARK_COLOUR}" stroke-dasharray="2,3"/>')
        out.append(f'<text x="{px(mark_x) + 4:.1f}" y="{PAD_TOP + 10}">{html.escape(mark_label)}</text>')
    legend_x, legend_y = PAD_LEFT + 10.0, height - 8
    for n, (name, pts) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        dash = ' stroke-dasharray="6,4"' if name in dashed else ""
        if lines and pts and name not in dots_only:
            points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"{dash} points="{points}"/>')
        if (dots or name in dots_only) and name not in dashed:
            shape = 'r="4" fill="none" stroke-width="2" stroke' if name in dots_only else 'r="3" fill'
            out.extend(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" {shape}="{colour}"/>' for x, y in pts)
        out.append(f'<text x="{legend_x:.0f}" y="{legend_y}" fill="{colour}">{html.escape(name)}</text>')
        legend_x += len(name) * LEGEND_CHAR_PX + LEGEND_GAP_PX
    out.append("</svg>")
    return "".join(out)
