"""Retraining a regression champion through the retrain handler on moto: the same mix and gate
checks adapted to errors, promotion only for a candidate that errs less on recent traffic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
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
from mlops.model import bundle
from mlops.model.registration import prove_export
from mlops.model.spec import load_spec
from mlops.model.training import feature_frame, frame_rows, train_model
from mlops.regression.retraining import paired_loss_test, run_regression_gate
from mlops.retraining.gate import LabelledRows
from mlops.shared.resources import LOG_BUCKET, MODEL_NAME_ENV
from scipy import stats

from tests.conftest import register_and_promote
from tests.integration.serving_helpers import load_event
from tests.unit.test_regression_spec import PRICING_SPEC


@pytest.fixture(scope="module")
def pricing():
    spec = load_spec(PRICING_SPEC)
    data = generate_prices(2000, seed=2)
    return spec, data, train_model(data, spec)


@pytest.fixture
def champion(aws_stack, pricing, monkeypatch):
    spec, data, result = pricing
    monkeypatch.setenv(MODEL_NAME_ENV, spec.name)
    register_and_promote(aws_stack, result, data)
    return result


def log_labelled_traffic(stack, result, n: int, seed: int, **drift) -> None:
    """Quotes scored by the champion over the last two days, each with its true price."""
    data = generate_prices(n, seed=seed, **drift)
    features = feature_frame(data, result.spec)
    predicted = result.pipeline.predict(features)
    rows, truth = frame_rows(features), data[TARGET].to_numpy(dtype=float)
    bucket = stack.env[LOG_BUCKET.env_var]
    start = datetime.now(UTC) - timedelta(days=2)
    for lo in range(0, n, 200):
        at = start + timedelta(minutes=lo)
        ids = [f"p{seed}-{i}" for i in range(lo, min(n, lo + 200))]
        records = [
            RegressionPredictionRecord(
                prediction_id=pid,
                request_id="r",
                timestamp=iso(at + timedelta(seconds=k)),
                model_name="pricing",
                model_version=1,
                features=rows[lo + k],
                value=float(predicted[lo + k]),
            )
            for k, pid in enumerate(ids)
        ]
        write_predictions(stack.s3, bucket, prediction_key(1, at, ids), records)
        feedback = [
            FeedbackRecord(
                prediction_id=pid,
                label=float(truth[lo + k]),
                source="explicit",
                observed_at=iso(at + timedelta(hours=1)),
                received_at=iso(at + timedelta(hours=1)),
            )
            for k, pid in enumerate(ids)
        ]
        write_feedback(stack.s3, bucket, feedback_key(at + timedelta(hours=1), ids), feedback)


def retrain(event_name: str, lambda_context):
    import mlops.handlers.retrain as module

    module.settings.cache_clear()
    return module.handler(load_event(event_name), lambda_context)


def test_an_alarm_on_a_new_price_rule_promotes_a_candidate_that_errs_less(
    aws_stack, champion, lambda_context
):
    # Given a month of quotes priced by a new rule, labelled, and the MetricGap alarm firing
    log_labelled_traffic(aws_stack, champion, 2000, seed=41, concept_shift=1.0)
    out = retrain("retrain/alarm_state_change.json", lambda_context)
    # then the candidate passes every check that applies and becomes the champion
    checks = {c["name"]: c for c in out["gate_report"]["checks"]}
    assert out["outcome"] == "promoted", {
        k: c["detail"] for k, c in checks.items() if c["status"] == "failed"
    }
    registry = aws_stack.registry("pricing")
    assert registry.champion().version == 2
    assert checks["beats_champion"]["status"] == "passed"
    assert checks["beats_champion"]["figures"]["ci_high"] < 0
    assert checks["residual_sanity"]["status"] == "passed"
    assert checks["min_primary_metric"]["status"] == "skipped"
    assert "calibration" not in checks
    # and its recorded test error is on the recent traffic, far below the champion's there
    record = registry.get_version(2)
    bundle.verify_servable(aws_stack.s3, aws_stack.artifact_bucket, 2, record.artifacts)
    assert record.test_metrics["rmse"] < checks["beats_champion"]["figures"]["champion"] / 2


def test_without_a_change_the_scheduled_candidate_may_only_trail_slightly(
    aws_stack, champion, lambda_context
):
    log_labelled_traffic(aws_stack, champion, 1500, seed=42)
    out = retrain("retrain/scheduled.json", lambda_context)
    checks = {c["name"]: c for c in out["gate_report"]["checks"]}
    figures = checks["beats_champion"]["figures"]
    worse = (figures["candidate"] - figures["champion"]) / figures["champion"]
    assert (checks["beats_champion"]["status"] == "passed") == (
        worse <= champion.spec.retraining.max_regression
    )


def test_the_paired_loss_test_agrees_with_scipy():
    rng = np.random.default_rng(3)
    y = rng.normal(100, 20, 800)
    a, b = y + rng.normal(0, 5, 800), y + rng.normal(0.5, 5.5, 800)
    for metric, loss in (("rmse", np.square), ("mae", np.abs)):
        test = paired_loss_test(metric, y, a, b)
        reference = stats.ttest_rel(loss(y - a), loss(y - b), alternative="less")
        assert test["mean_difference"] == pytest.approx(np.mean(loss(y - a) - loss(y - b)))
        assert test["p_value"] == pytest.approx(reference.pvalue, abs=2e-3)


def test_the_original_test_guard_measures_the_world_change_by_the_lineage_root_too(pricing):
    # Given the lineage's first model (original prices), a champion already refit on the new price
    # rule (so it errs little on recent traffic), and a candidate fit further to the new rule
    spec, original, root = pricing
    shifted = generate_prices(3000, seed=43, concept_shift=1.0)
    champion = train_model(pd.concat([original, shifted.iloc[:1000]], ignore_index=True), spec)
    candidate = train_model(shifted.iloc[:2000], spec)
    recent = shifted.iloc[2000:]

    def labelled(frame):
        return LabelledRows(frame_rows(feature_frame(frame, spec)), frame[TARGET].to_numpy(dtype=float))

    def gate(**root_model):
        onnx_bytes, parity = prove_export(candidate)
        report = run_regression_gate(
            spec,
            candidate_onnx=onnx_bytes,
            candidate_schema=candidate.schema,
            parity=parity,
            champion_onnx=prove_export(champion)[0],
            champion_schema=champion.schema,
            original_test=labelled(original.iloc[:600]),
            production_holdout=labelled(recent),
            training_rows=2000,
            production_labels=len(recent),
            performance_trigger=True,
            **root_model,
        )
        return {c.name: c for c in report.checks}["original_test_guard"]

    # When the gate runs without and with the lineage's root
    alone = gate()
    with_root = gate(root_onnx=prove_export(root)[0], root_schema=root.schema)

    # Then the allowance includes what the root lost on recent traffic (independently computed)
    def rmse(model, frame):
        predicted = model.pipeline.predict(feature_frame(frame, spec))
        return float(np.sqrt(np.mean((frame[TARGET].to_numpy(dtype=float) - predicted) ** 2)))

    root_change = rmse(root, recent) / rmse(root, original.iloc[:600]) - 1
    assert with_root.figures["allowed"] == pytest.approx(
        max(root_change, alone.figures["allowed"] - spec.retraining.max_original_test_drop)
        + spec.retraining.max_original_test_drop,
        rel=1e-3,
    )
    assert with_root.figures["allowed"] > alone.figures["allowed"]
