"""Inline SVG charts for self-contained HTML reports: no JavaScript, no network, readable at a glance.

Layout rules that keep the charts legible: round ("nice") ticks, every time in UTC in one
ISO-like form, axis titles, legends and marker labels laid out in rows of their own so no
label is drawn over another or over a line, and red kept for thresholds and alarms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from html import escape

# Red is not in the palette: it means "threshold" or "alarm" wherever it appears.
PALETTE = ("#1f6feb", "#bf5700", "#1a7f37", "#8250df", "#0a7ea4", "#57606a")
THRESHOLD_COLOUR = "#d1242f"
MARKER_COLOUR = "#57606a"
# A white outline behind a label's glyphs: a line passing under it stops short of the letters.
HALO = 'stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke"'
FONT_SIZE = 11
# Average advance of a sans-serif glyph as a share of the font size (digits and lower case);
# generous, so that estimated boxes contain the rendered text.
_GLYPH = 0.62
_TIME_STEPS = (60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000)


def text_width(text: str, size: float = FONT_SIZE) -> float:
    return len(text) * size * _GLYPH


def format_time(t: datetime) -> str:
    """The one way times are shown: ISO-like, UTC, to the minute."""
    return _utc(t).strftime("%Y-%m-%d %H:%M UTC")


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round ticks (1, 2 or 5 times a power of ten) covering [lo, hi], about `target` intervals."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("ticks need finite bounds")
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(1, target)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first = math.floor(lo / step + 1e-9) * step
    last = math.ceil(hi / step - 1e-9) * step
    digits = max(0, -math.floor(math.log10(step)) + 1)
    count = round((last - first) / step)
    return [round(first + i * step, digits) + 0.0 for i in range(count + 1)]


def tick_label(value: float, ticks: Sequence[float]) -> str:
    """A tick value with as many decimals as the tick step needs, and no more."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{decimals}f}"


def time_ticks(start: datetime, end: datetime, target: int = 6) -> list[datetime]:
    """Round UTC times (whole minutes, hours or days) inside [start, end], about `target` of them."""
    a, b = _utc(start).timestamp(), _utc(end).timestamp()
    span = max(b - a, 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= target), _TIME_STEPS[-1])
    first = math.ceil(a / step) * step
    return [datetime.fromtimestamp(first + i * step, UTC) for i in range(int((b - first) // step) + 1)]


def _time_tick_labels(ticks: Sequence[datetime]) -> list[tuple[str, str]]:
    """(upper, lower) lines per tick: the time, and the date where it changes."""
    daily = len(ticks) > 1 and (ticks[1] - ticks[0]) >= timedelta(days=1)
    out, previous = [], ""
    for t in ticks:
        date = f"{t:%Y-%m-%d}"
        if daily:
            out.append((date, ""))
        else:
            out.append((f"{t:%H:%M}", date if date != previous else ""))
        previous = date
    return out


@dataclass(frozen=True)
class Series:
    """One line of a time chart; `band` is an interval drawn as a shaded area around it."""

    name: str
    points: Sequence[tuple[datetime, float]]
    colour: str | None = None
    dashed: bool = False
    step: bool = False  # hold each value until the next point (thresholds, per-version constants)
    dots: bool = True
    band: Sequence[tuple[datetime, float, float]] = ()
    band_name: str = ""


@dataclass(frozen=True)
class Marker:
    """A labelled vertical line at one time (a promotion, the start of a shift)."""

    at: datetime
    label: str
    colour: str = MARKER_COLOUR


def _rows(items: Sequence[tuple[float, float]], gap: float = 8.0) -> list[int]:
    """Greedy row assignment for horizontal spans (x, width) so that no two in a row overlap."""
    ends: list[float] = []
    rows = []
    for x, w in items:
        for i, end in enumerate(ends):
            if x >= end + gap:
                ends[i] = x + w
                rows.append(i)
                break
        else:
            ends.append(x + w)
            rows.append(len(ends) - 1)
    return rows


def _legend(
    entries: Sequence[tuple[str, str]], x0: float, y0: float, max_x: float
) -> tuple[list[str], float]:
    """Legend entries (svg swatch, text) flowed into rows; returns the parts and the height used."""
    parts, x, y, row_h = [], x0, y0, 16.0
    for swatch, label in entries:
        w = 22 + text_width(label) + 14
        if x + w > max_x and x > x0:
            x, y = x0, y + row_h
        parts.append(
            f'<g transform="translate({x:.1f},{y:.1f})">{swatch}<text x="22" y="9">{escape(label)}</text></g>'
        )
        x += w
    return parts, (y - y0 + row_h) if entries else 0.0


def _swatch_line(colour: str, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    return f'<line x1="0" y1="5" x2="18" y2="5" stroke="{colour}" stroke-width="2"{dash}/>'


def _swatch_area(colour: str) -> str:
    return f'<rect x="0" y="0" width="18" height="10" fill="{colour}" fill-opacity="0.2"/>'


def _swatch_flag(colour: str) -> str:
    return f'<path d="M4 0 L14 0 L9 9 Z" fill="{colour}"/>'


def line_chart(
    series: Sequence[Series | tuple[str, Sequence[tuple[datetime, float]]]],
    *,
    title: str,
    threshold: float | None = None,
    threshold_label: str = "threshold",
    markers: Sequence[Marker | tuple[datetime, str]] = (),
    alarms: Sequence[datetime] = (),
    alarm_label: str = "alarm condition met",
    width: int = 820,
    height: int = 300,
    y_label: str = "",
    x_label: str = "time (UTC)",
    y_floor: float | None = None,
) -> str:
    """Time series with optional bands, a horizontal threshold, labelled markers and alarm flags.

    Labels never share space with the plot: the title, the legend and the marker labels have
    rows of their own above it; tick labels and axis titles sit in the margins.
    """
    # A series with nothing to draw is left out of the legend too.
    lines = [s if isinstance(s, Series) else Series(s[0], s[1]) for s in series]
    lines = [
        replace(
            s,
            points=[(t, v) for t, v in s.points if math.isfinite(v)],
            band=[(t, a, b) for t, a, b in s.band if math.isfinite(a) and math.isfinite(b)],
        )
        for s in lines
    ]
    lines = [s for s in lines if s.points or s.band]
    marks = [m if isinstance(m, Marker) else Marker(m[0], m[1]) for m in markers]
    values = [v for s in lines for _, v in s.points] + [
        v for s in lines for _, a, b in s.band for v in (a, b)
    ]
    times = [t for s in lines for t, _ in s.points] + [m.at for m in marks] + list(alarms)
    if not values:
        return f'<p class="empty">{escape(title)}: no data yet</p>'
    if threshold is not None:
        values.append(threshold)
    lo, hi = min(values), max(values)
    if y_floor is not None:
        lo = min(lo, y_floor)
    y_ticks = nice_ticks(lo, hi)
    y0, y1 = y_ticks[0], y_ticks[-1]
    t0, t1 = min(_utc(t) for t in times), max(_utc(t) for t in times)
    if t1 - t0 < timedelta(minutes=10):
        t0, t1 = t0 - timedelta(hours=1), t1 + timedelta(hours=1)
    pad = (t1 - t0) * 0.02
    t0, t1 = t0 - pad, t1 + pad
    y_tick_text = [tick_label(v, y_ticks) for v in y_ticks]
    left = 30 + max(text_width(s) for s in y_tick_text) + (16 if y_label else 0)
    right = 20.0
    plot_w = width - left - right

    def sx(t: datetime) -> float:
        return left + (_utc(t) - t0).total_seconds() / (t1 - t0).total_seconds() * plot_w

    # Header: title, legend rows, marker label rows; then the plot.
    parts: list[str] = []
    legend_entries: list[tuple[str, str]] = []
    for i, s in enumerate(lines):
        colour = s.colour or PALETTE[i % len(PALETTE)]
        legend_entries.append((_swatch_line(colour, s.dashed), s.name))
        if s.band:
            legend_entries.append((_swatch_area(colour), s.band_name or f"{s.name}: interval"))
    if threshold is not None:
        legend_entries.append((_swatch_line(THRESHOLD_COLOUR, True), f"{threshold_label} {threshold:g}"))
    if alarms:
        legend_entries.append((_swatch_flag(THRESHOLD_COLOUR), alarm_label))
    legend_parts, legend_h = _legend(legend_entries, 8, 26, width - 8)
    marks = sorted(marks, key=lambda m: m.at)
    spans = [(sx(m.at) - 2, text_width(m.label) + 4) for m in marks]
    # A label may not run past the right edge: shift it left of its line when it would.
    spans = [
        (x if x + w <= width - 4 else sx(m.at) - w - 2, w) for (x, w), m in zip(spans, marks, strict=True)
    ]
    mark_rows = _rows(spans)
    mark_h = (max(mark_rows) + 1) * 14 if marks else 0
    top = 26 + legend_h + mark_h + 8
    plot_h = height - top - 62
    if plot_h < 80:
        height += int(80 - plot_h)
        plot_h = 80
    bottom = top + plot_h

    def sy(v: float) -> float:
        return top + (y1 - v) / (y1 - y0) * plot_h

    parts += [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'font-family="sans-serif" font-size="{FONT_SIZE}" class="chart">',
        f"<title>{escape(title)}</title>",
        f'<text x="8" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        *legend_parts,
    ]
    for v, text in zip(y_ticks, y_tick_text, strict=True):
        parts.append(
            f'<line x1="{left}" y1="{sy(v):.1f}" x2="{width - right}" y2="{sy(v):.1f}" stroke="#eaeef2"/>'
            f'<text x="{left - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{text}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{bottom}" x2="{width - right}" y2="{bottom}" stroke="#8c959f"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#8c959f"/>'
    )
    for t, (upper, lower) in zip(ticks := time_ticks(t0, t1), _time_tick_labels(ticks), strict=True):
        x = sx(t)
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" stroke="#8c959f"/>'
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{upper}</text>'
        )
        if lower:
            parts.append(f'<text x="{x:.1f}" y="{bottom + 29}" text-anchor="middle">{lower}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{bottom + 48}" text-anchor="middle" fill="#57606a">'
        f"{escape(x_label)}</text>"
    )
    if y_label:
        cy = top + plot_h / 2
        parts.append(
            f'<text x="14" y="{cy:.1f}" text-anchor="middle" fill="#57606a" '
            f'transform="rotate(-90 14 {cy:.1f})">{escape(y_label)}</text>'
        )
    marker_top = 26 + legend_h
    labels = []
    for m, (x, _), row in zip(marks, spans, mark_rows, strict=True):
        lx = sx(m.at)
        ty = marker_top + row * 14 + 10
        parts.append(
            f'<line x1="{lx:.1f}" y1="{ty + 3}" x2="{lx:.1f}" y2="{bottom}" stroke="{m.colour}" '
            f'stroke-dasharray="2 3"/>'
        )
        labels.append(f'<text x="{x + 2:.1f}" y="{ty}" fill="{m.colour}" {HALO}>{escape(m.label)}</text>')
    # Labels after every marker line, on halos: a line from an upper row never runs through a lower label.
    parts += labels
    if threshold is not None:
        parts.append(
            f'<line x1="{left}" y1="{sy(threshold):.1f}" x2="{width - right}" y2="{sy(threshold):.1f}" '
            f'stroke="{THRESHOLD_COLOUR}" stroke-dasharray="6 4"/>'
        )
    for i, s in enumerate(lines):
        colour = s.colour or PALETTE[i % len(PALETTE)]
        parts.extend(_series_parts(s, colour, sx, sy, t1))
    for t in alarms:
        x = sx(t)
        parts.append(
            f'<path d="M{x - 4:.1f} {top - 1} L{x + 4:.1f} {top - 1} L{x:.1f} {top + 6} Z" '
            f'fill="{THRESHOLD_COLOUR}"><title>{escape(alarm_label)} at {format_time(t)}</title></path>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _series_parts(
    s: Series, colour: str, sx: Callable[[datetime], float], sy: Callable[[float], float], t_end: datetime
) -> list[str]:
    out = []
    band = sorted(s.band, key=lambda b: b[0])
    if len(band) == 1:
        t, a, b = band[0]
        out.append(
            f'<line x1="{sx(t):.1f}" y1="{sy(a):.1f}" x2="{sx(t):.1f}" y2="{sy(b):.1f}" stroke="{colour}" '
            f'stroke-opacity="0.35" stroke-width="6"/>'
        )
    elif band:
        upper = " ".join(f"{sx(t):.1f},{sy(b):.1f}" for t, _, b in band)
        lower = " ".join(f"{sx(t):.1f},{sy(a):.1f}" for t, a, _ in reversed(band))
        out.append(f'<polygon points="{upper} {lower}" fill="{colour}" fill-opacity="0.18" stroke="none"/>')
    pts = sorted(s.points, key=lambda p: p[0])
    if not pts:
        return out
    if s.step:
        coords = []
        for i, (t, v) in enumerate(pts):
            nxt = pts[i + 1][0] if i + 1 < len(pts) else t_end
            coords += [f"{sx(t):.1f},{sy(v):.1f}", f"{sx(nxt):.1f},{sy(v):.1f}"]
    else:
        coords = [f"{sx(t):.1f},{sy(v):.1f}" for t, v in pts]
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    out.append(
        f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{" ".join(coords)}"/>'
    )
    if s.dots:
        for t, v in pts:
            out.append(
                f'<circle cx="{sx(t):.1f}" cy="{sy(v):.1f}" r="2.8" fill="{colour}">'
                f"<title>{escape(s.name)}: {v:.4g} at {format_time(t)}</title></circle>"
            )
    return out


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    threshold: float | None = None,
    threshold_label: str = "threshold",
    width: int = 820,
    bar_height: int = 18,
    x_label: str = "",
) -> str:
    """Horizontal bars, one per label, with an optional vertical threshold and a value axis."""
    if not bars:
        return f'<p class="empty">{escape(title)}: no data yet</p>'
    values = [v for _, v in bars] + ([threshold] if threshold is not None else [])
    ticks = nice_ticks(min(0.0, *values), max(values))
    v0, v1 = ticks[0], ticks[-1]
    left = 16 + max(text_width(label) for label, _ in bars)
    right = 16 + max(text_width(f"{v:.3f}") for _, v in bars)
    legend_parts, legend_h = (
        _legend([(_swatch_line(THRESHOLD_COLOUR, True), f"{threshold_label} {threshold:g}")], 8, 26, width)
        if threshold is not None
        else ([], 0.0)
    )
    top = 30 + legend_h
    bottom = top + bar_height * len(bars)
    height = int(bottom + (44 if x_label else 28))

    def sx(v: float) -> float:
        return left + (v - v0) / (v1 - v0) * (width - left - right)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'font-family="sans-serif" font-size="{FONT_SIZE}" class="chart">',
        f"<title>{escape(title)}</title>",
        f'<text x="8" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        *legend_parts,
    ]
    for v in ticks:
        parts.append(
            f'<line x1="{sx(v):.1f}" y1="{top}" x2="{sx(v):.1f}" y2="{bottom}" stroke="#eaeef2"/>'
            f'<text x="{sx(v):.1f}" y="{bottom + 14}" text-anchor="middle">{tick_label(v, ticks)}</text>'
        )
    if threshold is not None:
        # Drawn first: the value labels go over it, each on a white halo, so the line never crosses them.
        x = sx(threshold)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{THRESHOLD_COLOUR}" '
            f'stroke-dasharray="6 4"/>'
        )
    for i, (label, v) in enumerate(bars):
        y = top + i * bar_height
        over = threshold is not None and v > threshold
        x_start, x_end = sorted((sx(0.0), sx(v)))
        parts.append(
            f'<text x="{left - 6}" y="{y + bar_height * 0.7:.1f}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{x_start:.1f}" y="{y + 3}" width="{max(1.0, x_end - x_start):.1f}" '
            f'height="{bar_height - 6}" fill="{THRESHOLD_COLOUR if over else PALETTE[0]}"/>'
            f'<text x="{x_end + 4:.1f}" y="{y + bar_height * 0.7:.1f}" {HALO}>{v:.3f}</text>'
        )
    if x_label:
        parts.append(
            f'<text x="{(left + width - right) / 2:.1f}" y="{bottom + 34}" text-anchor="middle" '
            f'fill="#57606a">{escape(x_label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
