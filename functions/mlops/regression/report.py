"""The monitoring page of a regression version and window, and its row in the model's history.

Self-contained HTML with inline SVG like the classification report (`mlops.monitoring.report`),
whose drawing functions it reuses: the error of each hour of the window against the test set
and the alarm line, the residuals (true - predicted) against the held-out rows' residuals, and
the drift of predictions, targets and features.
"""

from __future__ import annotations

from mlops.cloud.storage import parse_time
from mlops.monitoring.history import AlarmFlag, HistoryRun
from mlops.monitoring.report import (
    _CSS,
    _OK,
    _drift_table,
    _e,
    _num,
    _time,
    distribution_svg,
)
from mlops.regression.metrics import lower_is_better
from mlops.regression.monitoring import RegressionReport
from mlops.shared.svgplot import PALETTE, THRESHOLD_COLOUR, Series, line_chart


def alarm_level(metric: str, reference: float | None, max_gap: float) -> float | None:
    """The production value at which MetricGap breaches: reference x (1 + gap) for errors, - gap for r2."""
    if reference is None:
        return None
    return reference * (1.0 + max_gap) if lower_is_better(metric) else reference - max_gap


def _hourly_chart(report: RegressionReport, max_gap: float) -> str:
    metric = report.performance.metric
    hours = [(parse_time(h.hour), h) for h in report.hourly]
    value = {"rmse": lambda h: h.rmse, "mae": lambda h: h.mae, "r2": lambda h: h.r2}[metric]
    points = [(t, v) for t, h in hours if (v := value(h)) is not None]
    bias = [(t, h.mean_error) for t, h in hours if h.mean_error is not None]
    reference = report.performance.reference.value
    level = alarm_level(metric, reference, max_gap)
    span = [t for t, _ in hours]
    series = [Series(f"production {metric} of the hour's labelled rows", points, colour=PALETTE[0])]
    if reference is not None and span:
        series.append(
            Series(
                f"test-set {metric}",
                [(span[0], reference), (span[-1], reference)],
                colour=PALETTE[2],
                step=True,
                dots=False,
            )
        )
    if level is not None and span:
        side = "above" if lower_is_better(metric) else "below"
        series.append(
            Series(
                f"alarm {side} {level:.3g} (window value)",
                [(span[0], level), (span[-1], level)],
                colour=THRESHOLD_COLOUR,
                dashed=True,
                step=True,
                dots=False,
            )
        )
    return line_chart(series, title=f"{metric} hour by hour", y_label=metric, height=280) + line_chart(
        [Series("mean residual (true − predicted) of the hour", bias, colour=PALETTE[1])],
        title="Bias hour by hour: positive when the model predicts too low",
        threshold=0.0,
        threshold_label="no bias",
        y_label="mean residual",
        height=240,
    )


def _performance_table(report: RegressionReport) -> str:
    perf = report.performance
    prod = perf.production
    interval = (
        f"{prod.ci_low:.3f}–{prod.ci_high:.3f} ({prod.method})"
        if prod is not None and prod.ci_low is not None and prod.ci_high is not None
        else "–"
    )
    ref = perf.reference
    rows = [
        ("production (labelled rows of this window)", _num(prod.value if prod else None), interval),
        (
            "test set",
            _num(ref.value),
            f"{ref.ci_low:.3f}–{ref.ci_high:.3f}"
            if ref.ci_low is not None and ref.ci_high is not None
            else "–",
        ),
        ("estimate without labels", _num(report.estimate.value), "–"),
    ]
    body = "".join(f"<tr><td>{_e(a)}</td><td>{b}</td><td>{c}</td></tr>" for a, b, c in rows)
    gap = (
        f"gap {_num(perf.gap)} against a limit of {perf.max_gap:g}"
        + (
            ""
            if perf.p_value is None
            else ", one-sided p < 1e-12"
            if perf.p_value < 1e-12
            else f", one-sided p = {perf.p_value:.2g}"
        )
        if perf.gap is not None
        else f"no gap yet: {perf.min_labels} labels are needed"
    )
    return (
        f"<table><tr><th>{_e(perf.metric)}</th><th>value</th><th>95% interval</th></tr>{body}</table>"
        f"<p>{_e(gap)}. For rmse and mae the gap is the relative increase over the test set; for r2 "
        "the absolute drop.</p>"
    )


def _fairness_html(report: RegressionReport) -> str:
    fair = report.fairness
    if fair is None:
        return "<p>No fairness figure: no sensitive attribute, or too few labels in this window.</p>"
    out = []
    for attribute, groups in fair.groups.items():
        rows = "".join(
            f"<tr><td>{_e(g)}</td><td>{f['n']}</td><td>{_num(f['mae'])}</td><td>{_num(f['rmse'])}</td>"
            f"<td>{_num(f['mean_error'])}</td></tr>"
            for g, f in groups.items()
        )
        out.append(
            f"<h3>{_e(attribute)}</h3><table><tr><th>group</th><th>labelled</th><th>mae</th>"
            f"<th>rmse</th><th>mean residual</th></tr>{rows}</table>"
        )
    return "".join(out)


def render_regression_html(report: RegressionReport, max_gap: float) -> str:
    perf = report.performance
    breached = [a for a in report.alarms if a.breached]
    cards = [
        ("predictions", str(report.prediction_count)),
        ("labels", str(report.label_count)),
        (f"test {perf.metric}", _num(perf.reference.value)),
        (f"production {perf.metric}", _num(perf.production.value if perf.production else None)),
        ("metric gap", _num(perf.gap)),
        (f"estimated {perf.metric}", _num(report.estimate.value)),
        ("mean residual", _num(report.residual_mean)),
        ("drifted features", f"{report.drift.drifted}/{report.drift.tested}" if report.drift else "–"),
        ("prediction PSI", _num(report.prediction_drift.psi)),
        ("target PSI", _num(report.target_drift.psi)),
        ("fairness gap", _num(report.fairness.gap if report.fairness else None)),
    ]
    card_html = "".join(
        f'<div class="card"><div>{_e(k)}</div><div class="big">{_e(v)}</div></div>' for k, v in cards
    )
    alarm_html = (
        f"<p style='color:{THRESHOLD_COLOUR};font-weight:bold'>Alarm conditions met this run: "
        f"{_e(', '.join(a.alarm for a in breached))}</p>"
        if breached
        else f"<p style='color:{_OK}'>No alarm condition met this run.</p>"
    )
    sections = [
        f"<h1>{_e(report.model_name)} v{report.version}{' (champion)' if report.champion else ''}</h1>",
        f"<p>Regression. Window {_e(_time(report.window_start))} to {_e(_time(report.window_end))}; "
        f"run {_e(report.run_id)} at {_e(_time(report.generated_at))}; "
        f"status: <b>{_e(report.status)}</b></p>",
        f'<div class="cards">{card_html}</div>',
        alarm_html,
        f"<h2>Performance ({_e(perf.metric)})</h2>",
        _performance_table(report),
        _hourly_chart(report, max_gap),
        "<h2>Residuals</h2>",
    ]
    residuals = report.residual_drift
    if residuals is not None and residuals.plot is not None:
        sections += [
            f"<p>PSI of the labelled residuals against the test set's: {_num(residuals.psi)}.</p>",
            distribution_svg(
                residuals.plot, "residual (true − predicted)", x_label="bins of the test-set residuals"
            ),
        ]
    else:
        sections.append("<p>Too few labelled predictions in this window to draw their residuals.</p>")
    sections.append(f"<h2>Prediction and target drift (PSI {_num(report.prediction_drift.psi)})</h2>")
    plots = [
        distribution_svg(d.plot, title, x_label=x)
        for d, title, x in (
            (report.prediction_drift, "predicted value", "bins of the test-set predictions"),
            (report.target_drift, "true value (feedback)", "bins of the training targets"),
        )
        if d.plot is not None
    ]
    sections.append(f'<div class="plots">{"".join(plots)}</div>' if plots else "<p>Too few rows.</p>")
    if report.drift is None or report.prediction_count == 0:
        sections.append("<h2>Data drift</h2><p>No data: no prediction in this window.</p>")
    else:
        drift = report.drift
        sections += [
            f"<h2>Data drift: {drift.drifted} of {drift.tested} features</h2>",
            _drift_table(drift),
            '<div class="plots">',
            *[
                distribution_svg(
                    f.plot,
                    f"{f.feature}{' (DRIFT)' if f.drifted else ''}",
                    x_label="bins of " + f.feature if f.kind == "numeric" else "categories of " + f.feature,
                )
                for f in sorted(drift.features, key=lambda f: (not f.drifted, -(f.psi or 0)))
                if f.plot is not None and f.tested
            ],
            "</div>",
        ]
    sections += [
        f"<h2>Errors by group (largest MAE gap {_num(report.fairness.gap if report.fairness else None)} "
        "of the window's MAE)</h2>",
        _fairness_html(report),
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='data:,'>"
        f"<title>{_e(report.model_name)} v{report.version} monitoring</title><style>{_CSS}</style></head>"
        f"<body>{''.join(sections)}</body></html>"
    )


def regression_history_run(report: RegressionReport, max_gap: float, report_html: str | None) -> HistoryRun:
    """The history row of a regression report (the same columns as a classification run's)."""
    perf, est = report.performance, report.estimate
    prod = perf.production
    return HistoryRun(
        run_id=report.run_id,
        generated_at=report.generated_at,
        window_start=report.window_start,
        window_end=report.window_end,
        version=report.version,
        champion=report.champion,
        status=report.status,
        prediction_count=report.prediction_count,
        label_count=report.label_count,
        label_coverage=report.label_count / report.prediction_count if report.prediction_count else None,
        primary_metric=perf.metric,
        test_value=perf.reference.value,
        production_value=prod.value if prod else None,
        production_interval=[prod.ci_low, prod.ci_high]
        if prod is not None and prod.ci_low is not None and prod.ci_high is not None
        else None,
        estimated_value=est.value,
        metric_gap=perf.gap,
        estimated_gap=est.gap,
        max_metric_gap=max_gap,
        alarm_level=alarm_level(perf.metric, perf.reference.value, max_gap),
        task=report.task,
        drift_share=report.drift.drift_share if report.drift else None,
        dataset_drift=report.drift.dataset_drift if report.drift else None,
        drifted_features=[f.feature for f in report.drift.features if f.drifted] if report.drift else [],
        prediction_psi=report.prediction_drift.psi,
        alarms=[AlarmFlag.model_validate(a.model_dump()) for a in report.alarms],
        report_json=report.report_key,
        report_html=report_html,
    )
