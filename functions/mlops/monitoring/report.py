"""The monitoring report of one version and window: JSON model, latest summary and a self-contained HTML page.

The HTML has inline SVG plots drawn here (no scripts, fonts or network), so it opens
from S3, an e-mail attachment or a laptop alike.
"""

from __future__ import annotations

import html
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlops.monitoring.drift import Band, DatasetDrift, DistributionPlot, FeatureDrift, PredictionDrift
from mlops.monitoring.performance import Fairness, PerformanceEstimate, ProductionPerformance
from mlops.monitoring.significance import GapSignificance

REPORT_FORMAT = 1


class LabelStats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label_count: int
    label_coverage: float | None
    feedback_received: int
    unmatched_feedback: int


class AlarmCheck(BaseModel):
    """One alarm spec applied to this run's value (CloudWatch decides over several periods)."""

    model_config = ConfigDict(extra="forbid")

    alarm: str
    metric: str
    value: float | None
    threshold: float
    breached: bool | None
    severity: str


class VersionReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = REPORT_FORMAT
    model_name: str
    version: int
    champion: bool
    run_id: str
    generated_at: str
    window_start: str
    window_end: str
    status: str
    prediction_count: int
    labels: LabelStats
    drift: DatasetDrift | None
    prediction_drift: PredictionDrift | None
    performance: ProductionPerformance
    estimate: PerformanceEstimate
    fairness: Fairness | None
    alarms: list[AlarmCheck]
    report_key: str | None = None
    significance: GapSignificance | None = None

    def summary(self) -> dict[str, Any]:
        """The latest production figures of a version (what GET /model shows)."""
        perf, est = self.performance, self.estimate
        return {
            "model_name": self.model_name,
            "version": self.version,
            "generated_at": self.generated_at,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "status": self.status,
            "prediction_count": self.prediction_count,
            "label_count": self.labels.label_count,
            "label_coverage": self.labels.label_coverage,
            "primary_metric": perf.primary_metric,
            "test_metric": perf.test_value,
            "production_metric": perf.value,
            "production_interval": [perf.ci_low, perf.ci_high] if perf.ci_low is not None else None,
            "metric_gap": perf.metric_gap,
            "estimated_metric": est.value,
            "estimated_metric_gap": est.estimated_gap,
            "drift_share": self.drift.drift_share if self.drift else None,
            "dataset_drift": self.drift.dataset_drift if self.drift else None,
            "drifted_features": [f.feature for f in self.drift.features if f.drifted] if self.drift else [],
            "largest_feature_drift": self.drift.largest_drift if self.drift else None,
            "metric_gap_z": self.significance.z if self.significance else None,
            "prediction_drift": self.prediction_drift.psi if self.prediction_drift else None,
            "fairness_gap": self.fairness.gap if self.fairness else None,
            "alarms_breached": [a.alarm for a in self.alarms if a.breached],
            "report_key": self.report_key,
        }


# -- HTML ------------------------------------------------------------------------------------------

_REF_COLOUR = "#9aa5b1"
_CUR_COLOUR = "#2b6cb0"
_BAD = "#c53030"
_WARN = "#b7791f"
_OK = "#2f855a"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.2g}"


def distribution_svg(plot: DistributionPlot, title: str, width: int = 420, height: int = 170) -> str:
    """Paired bars, reference (grey) and current (blue), one pair per bin or category."""
    n = max(1, len(plot.labels))
    top, bottom, left = 22, 48, 34
    inner_h = height - top - bottom
    slot = (width - left - 6) / n
    peak = max([*plot.reference, *plot.current, 1e-9])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e(title)}" font-family="sans-serif" font-size="10">',
        f'<text x="{left}" y="13" font-size="12" font-weight="bold">{_e(title)}</text>',
        f'<line x1="{left}" y1="{top + inner_h}" x2="{width - 4}" y2="{top + inner_h}" stroke="#444"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{peak:.0%}</text>',
    ]
    bar = max(1.0, slot * 0.38)
    for i, label in enumerate(plot.labels):
        x0 = left + i * slot + slot * 0.1
        for j, (share, colour) in enumerate(
            ((plot.reference[i], _REF_COLOUR), (plot.current[i], _CUR_COLOUR))
        ):
            h = inner_h * share / peak
            parts.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{top + inner_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{_e(label)}: {share:.1%}</title></rect>'
            )
        short = label if len(label) <= 12 else label[:11] + "…"
        cx = left + i * slot + slot / 2
        parts.append(
            f'<text x="{cx:.1f}" y="{top + inner_h + 10}" text-anchor="end" '
            f'transform="rotate(-35 {cx:.1f} {top + inner_h + 10})">{_e(short)}</text>'
        )
    parts.append(
        f'<rect x="{width - 150}" y="4" width="9" height="9" fill="{_REF_COLOUR}"/>'
        f'<text x="{width - 138}" y="12">reference</text>'
        f'<rect x="{width - 80}" y="4" width="9" height="9" fill="{_CUR_COLOUR}"/>'
        f'<text x="{width - 68}" y="12">current</text></svg>'
    )
    return "".join(parts)


def metric_svg(
    perf: ProductionPerformance, est: PerformanceEstimate, max_gap: float, width: int = 520
) -> str:
    """Test value, alarm line (test - max gap), production value with its interval, and the estimate."""
    values = [v for v in (perf.test_value, perf.value, perf.ci_low, perf.ci_high, est.value) if v is not None]
    if perf.test_value is not None:
        values.append(perf.test_value - max_gap)
    if not values:
        return "<p>No metric values yet.</p>"
    lo = max(0.0, min(values) - 0.03)
    hi = min(1.0, max(values) + 0.03)
    if hi - lo < 0.05:
        lo, hi = max(0.0, lo - 0.025), min(1.0, hi + 0.025)
    left, right, height = 150, 20, 120

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (width - left - right)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        f'font-size="11" role="img" aria-label="production versus test metric">'
    ]
    for t in range(6):
        tick = lo + (hi - lo) * t / 5
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="10" x2="{x(tick):.1f}" y2="{height - 20}" stroke="#eee"/>'
            f'<text x="{x(tick):.1f}" y="{height - 6}" text-anchor="middle">{tick:.3f}</text>'
        )
    if perf.test_value is not None:
        alarm = perf.test_value - max_gap
        parts.append(
            f'<line x1="{x(perf.test_value):.1f}" y1="10" x2="{x(perf.test_value):.1f}" y2="{height - 20}" '
            f'stroke="{_OK}" stroke-width="2"/>'
            f'<line x1="{x(alarm):.1f}" y1="10" x2="{x(alarm):.1f}" y2="{height - 20}" stroke="{_BAD}" '
            f'stroke-dasharray="4 3"/>'
            f'<text x="{x(alarm) + 3:.1f}" y="20" fill="{_BAD}">alarm below</text>'
        )
    rows: list[tuple[str, float | None, float | None, float | None, str]] = [
        ("test set", perf.test_value, None, None, _OK),
        ("production", perf.value, perf.ci_low, perf.ci_high, _CUR_COLOUR),
        ("estimate (no labels)", est.value, None, None, _WARN),
    ]
    for i, (label, value, a, b, colour) in enumerate(rows):
        y = 32 + i * 24
        parts.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end">{_e(label)}</text>')
        if a is not None and b is not None:
            parts.append(
                f'<line x1="{x(a):.1f}" y1="{y}" x2="{x(b):.1f}" y2="{y}" '
                f'stroke="{colour}" stroke-width="3"/>'
            )
        if value is not None:
            parts.append(
                f'<circle cx="{x(value):.1f}" cy="{y}" r="5" fill="{colour}">'
                f"<title>{value:.4f}</title></circle>"
            )
        else:
            parts.append(f'<text x="{left + 4}" y="{y + 4}" fill="#777">not available</text>')
    parts.append("</svg>")
    return "".join(parts)


def coverage_svg(labels: LabelStats, min_labels: int, width: int = 520) -> str:
    share = labels.label_coverage or 0.0
    bar_w = width - 20
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="44" font-family="sans-serif" '
        f'font-size="11" role="img" aria-label="label coverage">'
        f'<rect x="10" y="6" width="{bar_w}" height="16" fill="#edf2f7" stroke="#cbd5e0"/>'
        f'<rect x="10" y="6" width="{bar_w * min(1.0, share):.1f}" height="16" fill="{_CUR_COLOUR}"/>'
        f'<text x="10" y="38">{labels.label_count} labelled ({share:.1%}); '
        f"{min_labels} needed for a production metric; {labels.unmatched_feedback} feedback record(s) "
        f"matched no prediction in the window</text></svg>"
    )


def _band_colour(f: FeatureDrift) -> str:
    if f.drifted:
        return _BAD
    return {Band.WARNING: _WARN, Band.STABLE: _OK}.get(f.band, "#777")


def _drift_table(drift: DatasetDrift) -> str:
    head = (
        "<tr><th>feature</th><th>kind</th><th>n</th><th>PSI</th><th>KS / χ²</th><th>p (Holm)</th>"
        "<th>Wasserstein (sd)</th><th>JS</th><th>missing Δ</th><th>unseen</th><th>decision</th>"
        "<th>why</th></tr>"
    )
    rows = []
    for f in sorted(drift.features, key=lambda f: (not f.drifted, -(f.psi or 0))):
        test_stat = _num(f.ks_statistic) if f.kind == "numeric" else _num(f.chi_square, 1)
        decision = "DRIFT" if f.drifted else f.band.value
        rows.append(
            f"<tr><td>{_e(f.feature)}</td><td>{f.kind}</td><td>{f.count}</td><td>{_num(f.psi)}</td>"
            f"<td>{test_stat}</td><td>{_p(f.p_value_adjusted)}</td><td>{_num(f.wasserstein_normalized)}</td>"
            f"<td>{_num(f.jensen_shannon)}</td><td>{f.missing_rate_change:+.3f}</td>"
            f"<td>{'' if f.unseen_share is None else f'{f.unseen_share:.1%}'}</td>"
            f'<td style="color:{_band_colour(f)};font-weight:bold">{decision}</td>'
            f"<td>{_e(f.reason)}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _fairness_table(fair: Fairness) -> str:
    out = []
    for attr in fair.attributes:
        rows = "".join(
            f"<tr><td>{_e(g)}</td><td>{f.predictions}</td><td>{f.selection_rate:.1%}</td><td>{f.labelled}</td>"
            f"<td>{'–' if f.true_positive_rate is None else f'{f.true_positive_rate:.1%}'}</td></tr>"
            for g, f in attr.groups.items()
        )
        out.append(
            f"<h3>{_e(attr.attribute)}</h3><p>selection-rate gap {_num(attr.selection_rate_gap)}, "
            f"true-positive-rate gap {_num(attr.true_positive_rate_gap)}</p>"
            "<table><tr><th>group</th><th>predictions</th><th>selection rate</th><th>labelled</th>"
            f"<th>true-positive rate</th></tr>{rows}</table>"
        )
    return "".join(out) or "<p>No sensitive attributes in the spec.</p>"


_CSS = (
    "body{font-family:sans-serif;margin:24px;color:#1a202c;max-width:1100px}"
    "table{border-collapse:collapse;font-size:12px;margin:8px 0}"
    "td,th{border:1px solid #cbd5e0;padding:3px 6px;text-align:left}th{background:#edf2f7}"
    ".cards{display:flex;flex-wrap:wrap;gap:12px}"
    ".card{border:1px solid #cbd5e0;padding:8px 12px;border-radius:4px}"
    ".plots{display:flex;flex-wrap:wrap;gap:8px}.big{font-size:20px;font-weight:bold}"
)


def render_html(report: VersionReport, max_metric_gap: float) -> str:
    perf, est = report.performance, report.estimate
    breached = [a for a in report.alarms if a.breached]
    cards = [
        ("predictions", str(report.prediction_count)),
        ("labels", f"{report.labels.label_count} ({(report.labels.label_coverage or 0):.1%})"),
        (f"test {perf.primary_metric}", _num(perf.test_value)),
        (f"production {perf.primary_metric}", _num(perf.value)),
        ("metric gap", _num(perf.metric_gap)),
        ("estimated gap", _num(est.estimated_gap)),
        ("drifted features", f"{report.drift.drifted}/{report.drift.tested}" if report.drift else "–"),
        ("prediction PSI", _num(report.prediction_drift.psi if report.prediction_drift else None)),
        ("fairness gap", _num(report.fairness.gap if report.fairness else None)),
    ]
    card_html = "".join(
        f'<div class="card"><div>{_e(k)}</div><div class="big">{_e(v)}</div></div>' for k, v in cards
    )
    breached_names = _e(", ".join(a.alarm for a in breached))
    alarm_html = (
        f"<p style='color:{_BAD};font-weight:bold'>Alarm conditions met this run: {breached_names}</p>"
        if breached
        else f"<p style='color:{_OK}'>No alarm condition met this run.</p>"
    )
    sections = [
        f"<h1>{_e(report.model_name)} v{report.version}{' (champion)' if report.champion else ''}</h1>",
        f"<p>Window {_e(report.window_start)} – {_e(report.window_end)}; run {_e(report.run_id)} at "
        f"{_e(report.generated_at)}; status: <b>{_e(report.status)}</b></p>",
        f'<div class="cards">{card_html}</div>',
        alarm_html,
        f"<h2>Performance ({_e(perf.primary_metric)})</h2>",
        metric_svg(perf, est, max_metric_gap),
        f"<p>{_e(perf.note)}. Production interval: {int(perf.confidence * 100)}% bootstrap. "
        "The estimate assumes calibrated scores "
        f"(test-set calibration error {_num(est.calibration_error)}).</p>",
    ]
    if perf.metrics:
        sections.append(
            "<table><tr>"
            + "".join(f"<th>{_e(k)}</th>" for k in perf.metrics)
            + "</tr><tr>"
            + "".join(f"<td>{_num(v)}</td>" for v in perf.metrics.values())
            + "</tr></table>"
        )
    sections += ["<h2>Label coverage</h2>", coverage_svg(report.labels, perf.min_labels)]
    if report.drift is not None:
        sections += [
            f"<h2>Data drift: {report.drift.drifted} of {report.drift.tested} features "
            f"(dataset drift at ≥ {report.drift.threshold:.0%}: "
            f"{'YES' if report.drift.dataset_drift else 'no'})</h2>",
            _drift_table(report.drift),
            '<div class="plots">',
            *[
                distribution_svg(f.plot, f"{f.feature}{' — DRIFT' if f.drifted else ''}")
                for f in sorted(report.drift.features, key=lambda f: (not f.drifted, -(f.psi or 0)))
                if f.plot is not None
            ],
            "</div>",
        ]
    if report.prediction_drift is not None and report.prediction_drift.plot is not None:
        sections += [
            f"<h2>Prediction drift: PSI {_num(report.prediction_drift.psi)}</h2>",
            distribution_svg(report.prediction_drift.plot, "predicted probability (test-set deciles)"),
        ]
    if report.fairness is not None:
        sections += [
            f"<h2>Fairness (largest gap {_num(report.fairness.gap)}"
            f"{': ' + _e(report.fairness.gap_of) if report.fairness.gap_of else ''})</h2>",
            _fairness_table(report.fairness),
        ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(report.model_name)} v{report.version} monitoring</title><style>{_CSS}</style></head>"
        f"<body>{''.join(sections)}</body></html>"
    )
