"""The demo's self-contained HTML report: the metric gap over time, drift, versions, the gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

from mlops.cloud import aws
from mlops.cloud.registry import Registry
from mlops.cloud.storage import parse_time
from mlops.local.alarm_evaluator import exact_series
from mlops.local.demo_outcome import Outcome, Timeline
from mlops.model.spec import ModelSpec
from mlops.shared.alarm_specs import DIM_FEATURE, DIM_MODEL, DIM_VERSION, NAMESPACE, Metric
from mlops.shared.svgplot import bar_chart, format_time, line_chart

STYLE = """
body{font-family:system-ui,sans-serif;max-width:900px;margin:24px auto;color:#1f2328;padding:0 12px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px;width:100%}td,th{border:1px solid #d0d7de;padding:4px 6px;
text-align:left}th{background:#f6f8fa}.pass{color:#1a7f37;font-weight:bold}.fail{color:#d1242f;font-weight:bold}
.skip{color:#57606a}.ok{background:#dafbe1;padding:8px;border-radius:6px}.bad{background:#ffebe9;padding:8px;
border-radius:6px}code{background:#f6f8fa;padding:1px 4px}td:first-child{white-space:nowrap}
"""


def model_dims(model_name: str) -> list[dict[str, str]]:
    return [{"Name": DIM_MODEL, "Value": model_name}]


def metric_series(
    metric: Metric, dims: list[dict[str, str]], start: datetime, end: datetime, statistic: str = "Maximum"
) -> list[tuple[datetime, float]]:
    """Hourly values of the series with exactly these dimensions in [start, end], oldest first."""
    points = exact_series(
        aws.client("cloudwatch"),
        metric.value,
        {d["Name"]: d["Value"] for d in dims},
        start,
        end + timedelta(seconds=1),
        3600,
        statistic,
    )
    series = sorted((p["Timestamp"], float(p[statistic])) for p in points)
    return [(t if t.tzinfo else t.replace(tzinfo=UTC), v) for t, v in series]


def feature_drift(model_name: str, version: int, start: datetime, end: datetime) -> list[tuple[str, float]]:
    """Largest PSI per feature that the monitor published for one version."""
    cw = aws.client("cloudwatch")
    series: dict[str, dict[str, str]] = {}  # feature -> its exact dimensions, each series once
    pages = cw.get_paginator("list_metrics").paginate(
        Namespace=NAMESPACE,
        MetricName=Metric.FEATURE_DRIFT.value,
        Dimensions=[{"Name": DIM_MODEL, "Value": model_name}, {"Name": DIM_VERSION, "Value": str(version)}],
    )
    for page in pages:
        for m in page.get("Metrics", []):
            dims = {d["Name"]: d["Value"] for d in m["Dimensions"]}
            if DIM_FEATURE in dims:
                series[dims[DIM_FEATURE]] = dims
    # Only the largest value counts: one period spanning the whole story, not an hourly series.
    period = -(-(int((end - start).total_seconds()) + 1) // 60) * 60
    found: dict[str, float] = {}
    for feature, dims in series.items():
        points = exact_series(
            cw, Metric.FEATURE_DRIFT.value, dims, start, start + timedelta(seconds=period), period, "Maximum"
        )
        if points:
            found[feature] = max(p["Maximum"] for p in points)
    return sorted(found.items(), key=lambda kv: -kv[1])


def write_demo_report(
    path: Path,
    spec: ModelSpec,
    registry: Registry,
    timeline: Timeline,
    start: datetime,
    end: datetime,
    outcome: Outcome,
) -> Path:
    model = model_dims(spec.name)
    gap = metric_series(Metric.METRIC_GAP, model, start, end)
    estimated = metric_series(Metric.ESTIMATED_METRIC_GAP, model, start, end)
    drift_share = metric_series(Metric.DRIFT_SHARE, model, start, end)
    history = registry.history()
    markers = [(parse_time(h.at), f"v{h.to_version}") for h in history[1:]]
    markers += [
        (t, "ALARM") for t, text in timeline.entries if text.startswith("ALARM") and "MetricGap:" in text
    ]
    champion = registry.champion()
    gate = registry.get_version(champion.version).gate_report if champion else None

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><link rel='icon' href='data:,'>",
        "<title>serverless-mlops demo report</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>The life of <code>{escape(spec.name)}</code>: drift, alarm, retraining, promotion</h1>",
        f"<p class='{'ok' if outcome.ok else 'bad'}'>"
        + (
            (
                "A quiet run, and the loop kept quiet: no performance alarm, nothing retrained."
                if outcome.ok
                else ""
            )
            if outcome.quiet_expected
            else (
                "The whole story happened: a performance alarm fired, a retrained version was promoted "
                "and serves within reach of a refit on ample new traffic."
                if outcome.ok
                else ""
            )
        )
        + ("" if outcome.ok else "Not every step happened: " + escape("; ".join(outcome.failures)))
        + "</p>",
        "<h2>Recovery, judged against an oracle</h2>",
        _recovery_table(outcome),
        "<h2>Production vs test-set performance</h2>",
        line_chart(
            [("MetricGap (test - production)", gap), ("EstimatedMetricGap (no labels)", estimated)],
            title=f"{spec.primary_metric.value}: test-set value minus production value",
            threshold=spec.monitoring.max_metric_gap,
            threshold_label="alarm threshold",
            markers=markers,
            y_label="test - production",
        ),
        "<h2>Data drift</h2>",
        line_chart(
            [("share of drifted features", drift_share)],
            title="Share of features drifted from the reference",
            threshold=spec.monitoring.drift_share,
            threshold_label="dataset drift",
            y_label="share of features",
        ),
        bar_chart(
            feature_drift(spec.name, 1, start, end),
            title="Largest PSI per feature while v1 served",
            threshold=spec.monitoring.psi_drift,
            threshold_label="PSI drift",
            x_label="largest PSI",
        ),
        "<h2>Which version served when</h2>",
        _history_table(history),
        "<h2>Gate report of the serving version</h2>",
        _gate_table(gate),
        "<h2>Timeline</h2><table><tr><th>simulated time (UTC)</th><th>event</th></tr>",
        *(f"<tr><td>{format_time(t)}</td><td>{escape(text)}</td></tr>" for t, text in timeline.entries),
        "</table></body></html>",
    ]
    path.write_text("".join(parts), encoding="utf-8")
    return path


def _recovery_table(outcome: Outcome) -> str:
    rec = outcome.recovery
    if rec is None:
        return "<p>No champion to judge.</p>"

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    rows = [
        ("production, mean before the shift (monitor windows)", fmt(rec.pre_shift)),
        ("production, last monitor window", fmt(rec.final_production)),
        ("champion on 20,000 fresh rows of the final world", fmt(rec.champion_fresh)),
        ("oracle: refit offline on 30,000 rows of the final world, same fresh rows", fmt(rec.oracle)),
        ("distance from the oracle", fmt(rec.oracle_gap)),
    ]
    body = "".join(f"<tr><td>{escape(k)}</td><td>{v}</td></tr>" for k, v in rows)
    return f"<table><tr><th>{escape(rec.metric)}</th><th>value</th></tr>{body}</table>"


def _history_table(history: list[Any]) -> str:
    rows = "".join(
        f"<tr><td>{escape(format_time(parse_time(h.at)))}</td><td>{escape(h.action.value)}</td>"
        f"<td>{h.from_version or '-'}</td>"
        f"<td>v{h.to_version}</td><td>{escape(h.actor)}</td><td>{escape(h.reason)}</td></tr>"
        for h in history
    )
    return (
        "<table><tr><th>when</th><th>action</th><th>from</th><th>to</th><th>actor</th><th>reason</th></tr>"
        f"{rows}</table>"
    )


def _gate_table(gate: dict[str, Any] | None) -> str:
    if not gate:
        return "<p>The serving version was not gated (it is the first champion).</p>"
    rows = []
    for c in gate.get("checks", []):
        css = {"passed": "pass", "failed": "fail"}.get(c["status"], "skip")
        rows.append(
            f"<tr><td>{escape(c['name'])}</td><td class='{css}'>{escape(c['status'])}</td>"
            f"<td>{escape(c['detail'])}</td></tr>"
        )
    return (
        f"<p>{escape(str(gate.get('trigger', '')))}</p>"
        "<table><tr><th>check</th><th>result</th><th>numbers</th></tr>" + "".join(rows) + "</table>"
    )
