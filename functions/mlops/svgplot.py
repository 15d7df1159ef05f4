"""Inline SVG charts for self-contained HTML reports: no JavaScript, no network, readable at a glance."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

PALETTE = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#57606a")


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[datetime, float]]]],
    *,
    title: str,
    threshold: float | None = None,
    threshold_label: str = "threshold",
    markers: Sequence[tuple[datetime, str]] = (),
    width: int = 820,
    height: int = 280,
    y_label: str = "",
) -> str:
    """Time series as polylines, with an optional horizontal threshold and labelled vertical markers."""
    points = [p for _, pts in series for p in pts]
    if not points:
        return f'<p class="empty">{escape(title)}: no data yet</p>'
    left, right, top, bottom = 56, 16, 28, 36
    xs = [p[0].timestamp() for p in points] + [m[0].timestamp() for m in markers]
    ys = [p[1] for p in points] + ([threshold] if threshold is not None else [])
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(0.0, min(ys)), max(ys)
    pad = (y1 - y0) * 0.1 or 1.0
    y1 += pad
    x1 = x1 if x1 > x0 else x0 + 1

    def sx(t: float) -> float:
        return left + (t - x0) / (x1 - x0) * (width - left - right)

    def sy(v: float) -> float:
        return top + (y1 - v) / (y1 - y0) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{sy(y0)}" x2="{width - right}" y2="{sy(y0)}" stroke="#888"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#888"/>',
    ]
    for k in range(5):
        v = y0 + (y1 - y0) * k / 4
        parts.append(f'<text x="{left - 6}" y="{sy(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
        parts.append(
            f'<line x1="{left}" y1="{sy(v):.1f}" x2="{width - right}" y2="{sy(v):.1f}" stroke="#eee"/>'
        )
    for k in range(5):
        tick = x0 + (x1 - x0) * k / 4
        label = datetime.fromtimestamp(tick).strftime("%d %b %H:%M")
        parts.append(
            f'<text x="{sx(tick):.1f}" y="{height - bottom + 16}" text-anchor="middle">{label}</text>'
        )
    if y_label:
        parts.append(f'<text x="12" y="{top - 8}">{escape(y_label)}</text>')
    if threshold is not None:
        parts.append(
            f'<line x1="{left}" y1="{sy(threshold):.1f}" x2="{width - right}" y2="{sy(threshold):.1f}" '
            f'stroke="#d1242f" stroke-dasharray="6 4"/>'
            f'<text x="{width - right}" y="{sy(threshold) - 4:.1f}" text-anchor="end" fill="#d1242f">'
            f"{escape(threshold_label)} {threshold:g}</text>"
        )
    for t, label in markers:
        x = sx(t.timestamp())
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}" stroke="#57606a" '
            f'stroke-dasharray="2 3"/>'
            f'<text x="{x + 3:.1f}" y="{top + 10}" fill="#57606a">{escape(label)}</text>'
        )
    legend_x = left + 10
    for i, (name, pts) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{sx(t.timestamp()):.1f},{sy(v):.1f}" for t, v in sorted(pts))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>')
        for t, v in pts:
            parts.append(f'<circle cx="{sx(t.timestamp()):.1f}" cy="{sy(v):.1f}" r="2.5" fill="{color}"/>')
        parts.append(
            f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" fill="{color}"/>'
            f'<text x="{legend_x + 14}" y="{height - 5}">{escape(name)}</text>'
        )
        legend_x += 30 + 6 * len(name)  # about 6 px per character at this font size
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    threshold: float | None = None,
    threshold_label: str = "threshold",
    width: int = 820,
    bar_height: int = 18,
) -> str:
    """Horizontal bars, one per label, with an optional vertical threshold."""
    if not bars:
        return f'<p class="empty">{escape(title)}: no data yet</p>'
    left, right, top = 170, 60, 26
    height = top + bar_height * len(bars) + 24
    vmax = max([v for _, v in bars] + ([threshold * 1.2] if threshold else [])) or 1.0

    def sx(v: float) -> float:
        return left + v / vmax * (width - left - right)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
        f'<text x="8" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, v) in enumerate(bars):
        y = top + i * bar_height
        over = threshold is not None and v > threshold
        parts.append(
            f'<text x="{left - 6}" y="{y + bar_height * 0.7:.1f}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{left}" y="{y + 2}" width="{max(1.0, sx(v) - left):.1f}" height="{bar_height - 4}" '
            f'fill="{"#d1242f" if over else "#1f6feb"}"/>'
            f'<text x="{sx(v) + 4:.1f}" y="{y + bar_height * 0.7:.1f}">{v:.3f}</text>'
        )
    if threshold is not None:
        x = sx(threshold)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - 20}" stroke="#d1242f" '
            f'stroke-dasharray="6 4"/><text x="{x:.1f}" y="{height - 6}" fill="#d1242f" text-anchor="middle">'
            f"{escape(threshold_label)} {threshold:g}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
