"""Chart arithmetic of the reports: round ticks, UTC time axes, label rows, and where a shift began."""

from __future__ import annotations

import itertools
import math
import re
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from mlops.monitoring.history import AlarmFlag, HistoryRun, shift_onsets
from mlops.shared.svgplot import (
    Marker,
    Series,
    _rows,
    format_time,
    line_chart,
    nice_ticks,
    text_width,
    tick_label,
    time_ticks,
)


def _is_round(step: float) -> bool:
    mantissa = step / 10 ** math.floor(math.log10(step))
    return any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 5, 10))


def test_ticks_are_round_evenly_spaced_and_cover_the_data() -> None:
    rng = np.random.default_rng(3)
    for _ in range(500):
        lo = float(rng.uniform(-5, 5) * 10.0 ** int(rng.integers(-4, 4)))
        hi = lo + float(rng.uniform(1e-3, 10) * 10.0 ** int(rng.integers(-3, 3)))
        ticks = nice_ticks(lo, hi)
        steps = np.diff(ticks)
        assert ticks[0] <= lo and ticks[-1] >= hi
        assert np.allclose(steps, steps[0], rtol=1e-6) and _is_round(float(steps[0]))
        assert 3 <= len(ticks) <= 11, (lo, hi, ticks)
        # The labels are exact: as many decimals as the step, never a 0.30000000000000004.
        labels = [tick_label(t, ticks) for t in ticks]
        assert all(
            float(label) == pytest.approx(t, abs=float(steps[0]) / 100)
            for label, t in zip(labels, ticks, strict=True)
        )
        assert len(set(labels)) == len(labels)


def test_ticks_of_a_flat_series_still_span_it() -> None:
    assert nice_ticks(0.5, 0.5)[0] < 0.5 < nice_ticks(0.5, 0.5)[-1]
    assert nice_ticks(0.0, 0.0)[0] < 0.0 < nice_ticks(0.0, 0.0)[-1]


@pytest.mark.parametrize(
    ("span", "unit"),
    [
        (timedelta(hours=3), timedelta(minutes=30)),
        (timedelta(days=2), timedelta(hours=12)),
        (timedelta(days=30), timedelta(days=7)),
    ],
)
def test_time_ticks_fall_on_round_utc_times_inside_the_range(span: timedelta, unit: timedelta) -> None:
    start = datetime(2026, 11, 3, 7, 13, 41, tzinfo=UTC)
    ticks = time_ticks(start, start + span)
    assert 2 <= len(ticks) <= 7
    assert all(start <= t <= start + span for t in ticks)
    assert all(t.second == 0 and t.minute % 30 == 0 and t.tzinfo == UTC for t in ticks)
    assert ticks[1] - ticks[0] <= unit


def test_every_time_is_shown_in_utc_in_one_form() -> None:
    berlin = timezone(timedelta(hours=1))
    assert format_time(datetime(2026, 11, 3, 13, 5, tzinfo=berlin)) == "2026-11-03 12:05 UTC"
    assert format_time(datetime(2026, 11, 3, 12, 5)) == "2026-11-03 12:05 UTC"


def test_label_rows_never_put_two_overlapping_labels_in_one_row() -> None:
    rng = np.random.default_rng(5)
    spans = sorted(
        (float(x), float(w)) for x, w in zip(rng.uniform(0, 800, 60), rng.uniform(10, 120, 60), strict=True)
    )
    rows = _rows(spans)
    for row in set(rows):
        mine = [s for s, r in zip(spans, rows, strict=True) if r == row]
        assert all(a[0] + a[1] < b[0] for a, b in itertools.pairwise(mine))


def test_chart_labels_and_legend_stay_inside_the_chart() -> None:
    t0 = datetime(2026, 11, 3, tzinfo=UTC)
    pts = [(t0 + timedelta(hours=h), 0.8 - 0.01 * h) for h in range(24)]
    svg = line_chart(
        [
            Series("production roc_auc", pts, band=[(t, v - 0.02, v + 0.02) for t, v in pts]),
            ("estimate", pts),
        ],
        title="t",
        threshold=0.75,
        markers=[
            Marker(t0 + timedelta(hours=23), "promoted v2 (a label near the right edge)"),
            (t0, "shift"),
        ],
        alarms=[t0 + timedelta(hours=20)],
        width=600,
    )
    width = 600
    for x, anchor, text in re.findall(
        r'<text x="([\d.]+)"[^>]*?(?:text-anchor="(\w+)")?[^>]*>([^<]+)</text>', svg
    ):
        extent = text_width(text)
        left = float(x) - (extent if anchor == "end" else extent / 2 if anchor == "middle" else 0)
        assert left >= -0.5 and left + extent <= width + 0.5, text
    # The threshold is red and no series is: the estimate is never drawn in the alarm's colour.
    assert 'stroke="#d1242f" stroke-dasharray="6 4"/>' in svg
    assert svg.count('stroke="#d1242f"') == 2  # the threshold line and its legend swatch


def _run(day: int, *, drift: bool = False, alarm: bool = False, champion: bool = True) -> HistoryRun:
    at = datetime(2026, 11, 1, tzinfo=UTC) + timedelta(days=day)
    return HistoryRun(
        run_id=f"d{day}",
        generated_at=at.isoformat().replace("+00:00", "Z"),
        window_start=(at - timedelta(days=1)).isoformat().replace("+00:00", "Z"),
        window_end=at.isoformat().replace("+00:00", "Z"),
        version=1,
        champion=champion,
        status="ok",
        prediction_count=100,
        label_count=0,
        label_coverage=0.0,
        primary_metric="roc_auc",
        test_value=0.8,
        production_value=None,
        production_interval=None,
        estimated_value=None,
        metric_gap=None,
        estimated_gap=None,
        max_metric_gap=0.05,
        drift_share=0.5 if drift else 0.0,
        dataset_drift=drift,
        prediction_psi=None,
        alarms=[AlarmFlag(alarm="MetricGap", metric="MetricGap", value=0.1, threshold=0.05, breached=alarm)],
    )


def test_a_shift_begins_at_the_first_flag_after_a_clean_run() -> None:
    runs = [
        _run(0),
        _run(1, drift=True),
        _run(2, drift=True, alarm=True),
        _run(3),
        _run(4, alarm=True),
        _run(5, drift=True, champion=False),  # a challenger's drift is not the serving model's shift
    ]
    assert [(r.run_id, why) for r, why in shift_onsets(runs)] == [
        ("d1", "drift flagged"),
        ("d4", "alarm: MetricGap"),
    ]
    assert shift_onsets([_run(0), _run(1)]) == []


def test_a_non_finite_value_is_left_out_not_drawn_off_the_chart() -> None:
    t0 = datetime(2026, 11, 3, tzinfo=UTC)
    svg = line_chart(
        [("psi", [(t0, 0.1), (t0 + timedelta(hours=1), math.inf), (t0 + timedelta(hours=2), 0.2)])], title="t"
    )
    assert svg.count("<circle") == 2 and "inf" not in svg and "nan" not in svg.lower()
    assert line_chart([("psi", [(t0, math.nan)])], title="only nan").startswith('<p class="empty">')
