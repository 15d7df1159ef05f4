"""The monitor function on a regression champion (moto): drift of inputs, predictions and targets,
the production error against the reference, the label-free estimate and group errors, published
under the metric names the alarms watch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from mlops.cloud.logstore import (
    FeedbackRecord,
    RegressionPredictionRecord,
    feedback_key,
    prediction_key,
    write_feedback,
    write_predictions,
)
from mlops.cloud.storage import iso
from mlops.datagen.pricing import TARGET, generate_prices
from mlops.handlers import monitor
from mlops.local.alarm_evaluator import AlarmEvaluator, AlarmState
from mlops.model.spec import load_spec
from mlops.model.training import feature_frame, frame_rows, train_model
from mlops.shared.alarm_specs import Metric, alarm_specs
from mlops.shared.resources import LOG_BUCKET, MODEL_NAME_ENV, REPORT_BUCKET
from sklearn import metrics as skm

from tests.conftest import register_and_promote
from tests.integration.serving_helpers import CONTEXT
from tests.integration.test_monitor_handler import metric, scheduled_event
from tests.unit.test_regression_spec import PRICING_SPEC

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CHAMPION = {"ModelName": "pricing"}


@pytest.fixture(scope="module")
def pricing():
    spec = load_spec(PRICING_SPEC)
    data = generate_prices(3000, seed=2)
    return spec, data, train_model(data, spec)


@pytest.fixture
def champion(aws_stack, pricing, monkeypatch):
    spec, data, result = pricing
    monkeypatch.setenv(MODEL_NAME_ENV, spec.name)
    register_and_promote(aws_stack, result, data)
    return result


def log_window(
    stack, result, n: int, seed: int, labelled: bool, **drift: Any
) -> tuple[np.ndarray, np.ndarray, Any]:
    """Score generated quotes with the champion, log them over the 20 hours before AT, and send the
    true prices as feedback when `labelled`."""
    data = generate_prices(n, seed=seed, **drift)
    features = feature_frame(data, result.spec)
    predicted = result.pipeline.predict(features)
    rows = frame_rows(features)
    ids = [f"s{seed}-{i}" for i in range(n)]
    bucket = stack.env[LOG_BUCKET.env_var]
    for start in range(0, n, 500):
        ts = AT - timedelta(hours=20) + timedelta(hours=20 * start / n)
        records = [
            RegressionPredictionRecord(
                prediction_id=ids[i],
                request_id=f"r{i}",
                timestamp=iso(ts + timedelta(seconds=i - start)),
                model_name="pricing",
                model_version=1,
                features=rows[i],
                value=float(predicted[i]),
            )
            for i in range(start, min(n, start + 500))
        ]
        write_predictions(stack.s3, bucket, prediction_key(1, ts, ids[start : start + 500]), records)
    truth = data[TARGET].to_numpy(dtype=float)
    if labelled:
        at = AT - timedelta(hours=1)
        feedback = [
            FeedbackRecord(
                prediction_id=pid, label=float(y), source="explicit", observed_at=iso(at), received_at=iso(at)
            )
            for pid, y in zip(ids, truth, strict=True)
        ]
        write_feedback(stack.s3, bucket, feedback_key(at, ids), feedback)
    return truth, predicted, data


def run() -> dict[str, Any]:
    monitor.settings.cache_clear()
    return monitor.handler(scheduled_event(AT), CONTEXT)


def stored_report(stack, summary) -> dict[str, Any]:
    key = summary["versions"][0]["report_key"]
    body = stack.s3.get_object(Bucket=stack.env[REPORT_BUCKET.env_var], Key=key)["Body"].read()
    return json.loads(body)


def test_a_stable_window_matches_sklearn_and_raises_nothing(aws_stack, champion):
    # Given a window like the training data, every price labelled
    y, p, data = log_window(aws_stack, champion, 1500, seed=21, labelled=True)
    # when the monitor runs
    summary = run()
    (version,) = summary["versions"]
    # then the production RMSE is sklearn's on those rows, and no quality alarm breaches
    assert version["task"] == "regression" and version["label_count"] == 1500
    assert version["production_metric"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert version["metric_gap"] < champion.spec.regression_settings.max_error_increase
    assert version["breached"] == []
    report = stored_report(aws_stack, summary)
    assert report["target_drift"]["psi"] < 0.1 and report["prediction_drift"]["psi"] < 0.1
    groups = report["fairness"]["groups"]["region"]
    for region, figures in groups.items():
        mask = data["region"].to_numpy() == region
        assert figures["mae"] == pytest.approx(skm.mean_absolute_error(y[mask], p[mask]))
    published = metric(aws_stack, "MetricGap", CHAMPION, AT)
    assert published == [pytest.approx(version["metric_gap"])]
    # and labels agree with the label-free estimate: no concept shift, published as 0
    assert version["concept_shift_suspected"] is False
    assert metric(aws_stack, "ConceptShiftSuspected", CHAMPION, AT) == [0.0]
    # and the label-free estimate's interval holds the RMSE the labels show
    estimate = report["estimate"]
    assert estimate["ci_low"] <= np.sqrt(skm.mean_squared_error(y, p)) <= estimate["ci_high"]
    assert metric(aws_stack, "EstimatedMetricGap", CHAMPION, AT) == [pytest.approx(estimate["gap"])]


def test_a_new_price_rule_breaches_the_metric_gap_and_moves_the_target(aws_stack, champion):
    # Given quotes priced by a new rule (storage dearer, no enterprise discount), labelled
    y, p, _ = log_window(aws_stack, champion, 1500, seed=22, labelled=True, concept_shift=1.0)
    summary = run()
    (version,) = summary["versions"]
    # then the error grew far past the limit, significantly, and the truths drifted
    assert version["metric_gap"] > champion.spec.regression_settings.max_error_increase
    assert "MetricGap" in version["breached"]
    report = stored_report(aws_stack, summary)
    assert report["performance"]["p_value"] < 1e-6
    assert report["target_drift"]["psi"] > 0.1
    assert report["residual_mean"] == pytest.approx(float(np.mean(y - p)))
    assert metric(aws_stack, "MetricGap", CHAMPION, AT)[0] > 0.15
    # and the labels contradict the label-free estimate on the same rows: concept shift
    assert report["concept_shift"]["realized"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, p)))
    assert report["concept_shift"]["realized"] > report["estimate"]["ci_high"]
    assert version["concept_shift_suspected"] is True and "ConceptShiftSuspected" in version["breached"]
    assert metric(aws_stack, "ConceptShiftSuspected", CHAMPION, AT) == [1.0]


def test_concept_shift_on_two_monitor_runs_raises_the_alarm_people_are_told_of(aws_stack, champion):
    # Given a labelled window priced by a new rule, and the stack's ConceptShiftSuspected alarm
    log_window(aws_stack, champion, 1500, seed=24, labelled=True, concept_shift=1.0)
    (spec,) = [a for a in alarm_specs(champion.spec) if a.metric is Metric.CONCEPT_SHIFT_SUSPECTED]
    topic = aws_stack.env["MLOPS_ALARM_TOPIC_ARN"]
    evaluator = AlarmEvaluator(
        aws_stack.cloudwatch, aws_stack.sns, topic, [spec], "pricing", "local", lambda t, e: None
    )
    evaluator.create_alarms(AT - timedelta(hours=1))
    # When the monitor runs on two schedule ticks (the alarm wants 2 of 3 periods)
    for at in (AT, AT + timedelta(hours=1)):
        monitor.settings.cache_clear()
        monitor.handler(scheduled_event(at), CONTEXT)
    changes = evaluator.evaluate_all(AT + timedelta(hours=1, minutes=1))
    # Then the alarm the CDK stack defines from the same spec is in ALARM
    assert [(t.alarm_name, t.new) for t in changes] == [
        ("local-pricing-ConceptShiftSuspected", AlarmState.ALARM)
    ]


def test_larger_packages_without_labels_show_drift_and_a_rising_estimate(aws_stack, champion):
    # Given quotes for much larger packages and no labels yet
    y, p, _ = log_window(aws_stack, champion, 1500, seed=23, labelled=False, covariate_shift=2.5)
    summary = run()
    (version,) = summary["versions"]
    report = stored_report(aws_stack, summary)
    # then predictions and inputs drifted, the error is not known (nothing published) ...
    assert version["label_count"] == 0 and version["metric_gap"] is None
    assert report["prediction_drift"]["psi"] > champion.spec.monitoring.psi_drift
    assert report["drift"]["drifted"] >= 2
    assert metric(aws_stack, "MetricGap", CHAMPION, AT) == []
    # ... and the label-free estimate rose toward the realized error the labels will show
    realized = float(np.sqrt(np.mean((y - p) ** 2)))
    reference = report["estimate"]["reference"]
    assert reference < report["estimate"]["value"] <= realized * 1.05
    assert metric(aws_stack, "EstimatedGapRatio", CHAMPION, AT) == [
        pytest.approx(report["estimate"]["gap_ratio"])
    ]
