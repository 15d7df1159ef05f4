"""Retraining a regression model: its labelled production rows, the training mix, and the gate.

The mix follows `mlops.retraining.data` (the original data split with the spec's seed, the most
recent labelled production rows held out, production weighted by the same rule) with a numeric
target and no stratification. The gate runs the classification gate's checks adapted to errors:

- beats_champion: a paired test on per-row losses (squared error for rmse and r2, absolute
  for mae) of both models on the same recent labelled rows;
- residual_sanity instead of calibration: the mean residual (bias) must be small next to the
  error (|mean residual| at most `RESIDUAL_BIAS_SHARE` of the RMSE, so the bias takes at most a
  quarter of the mean squared error);
- min_primary_metric applies to r2 only: an error in the target's units has no floor in the spec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from mlops.cloud.logstore import (
    FirstSeen,
    RegressionPredictionRecord,
    iter_feedback,
    latest_values,
    model_versions_logged,
    prediction_objects,
)
from mlops.cloud.storage import get_bytes, iso, parse_time, read_jsonl_gz
from mlops.model.inference import predict_values_onnx
from mlops.model.onnx_export import ParityReport
from mlops.model.schema import FeatureSchema, encode_rows
from mlops.model.spec import ModelSpec
from mlops.model.training import feature_frame, frame_rows
from mlops.regression.metrics import group_error_gap, group_error_metrics, regression_metrics
from mlops.regression.monitoring import metric_gap
from mlops.regression.training import numeric_target
from mlops.retraining.data import TIMESTAMP, TrainingSet, mix_training_set
from mlops.retraining.gate import (
    MIN_FAIRNESS_GROUP,
    Check,
    GateReport,
    LabelledRows,
    Scorer,
    latency_check,
    parity_check,
    schema_check,
)

RESIDUAL_BIAS_SHARE = 0.5
CONFIDENCE = 0.95
_NORMAL = NormalDist()


def labelled_production_rows(
    s3: Any, log_bucket: str, spec: ModelSpec, start: datetime, end: datetime
) -> pd.DataFrame:
    """Every logged prediction in [start, end) with a true value, with its features and time."""
    truths = latest_values(iter_feedback(s3, log_bucket, start, end + timedelta(days=1)))
    lo, hi = iso(start), iso(end)
    rows: list[dict[str, Any]] = []
    for version in model_versions_logged(s3, log_bucket):
        first = FirstSeen()
        for key in prediction_objects(s3, log_bucket, version, start, end):
            records = [
                RegressionPredictionRecord.model_validate(r)
                for r in read_jsonl_gz(get_bytes(s3, log_bucket, key))
            ]
            keep = first.keep(key, [r.prediction_id for r in records])
            for i, record in enumerate(records):
                truth = truths.get(record.prediction_id)
                if truth is None or (keep is not None and not keep[i]):
                    continue
                if not lo <= iso(parse_time(record.timestamp)) < hi:
                    continue
                row = {name: record.features.get(name) for name in spec.feature_names}
                row[spec.target] = truth
                if spec.id_column:
                    row[spec.id_column] = record.prediction_id
                row[TIMESTAMP] = record.timestamp
                rows.append(row)
    columns = [*spec.feature_names, spec.target, TIMESTAMP] + ([spec.id_column] if spec.id_column else [])
    frame = pd.DataFrame.from_records(rows, columns=columns)
    return frame.sort_values(TIMESTAMP, kind="stable").reset_index(drop=True)


def _labelled(frame: pd.DataFrame, spec: ModelSpec) -> LabelledRows:
    if frame.empty:
        return LabelledRows(rows=[], labels=np.zeros(0))
    return LabelledRows(rows=frame_rows(feature_frame(frame, spec)), labels=numeric_target(frame, spec))


def build_training_set(
    original: pd.DataFrame, production: pd.DataFrame, spec: ModelSpec, performance: bool = False
) -> TrainingSet:
    """The mix of `mlops.retraining.data.build_training_set` for a numeric target (not stratified)."""
    numeric_target(original, spec)  # refuse an unusable original target before anything else
    return mix_training_set(original, production, spec, performance, stratify=None, labelled=_labelled)


class ValueScorer(Scorer):
    def values(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        if not rows:
            return np.zeros(0)
        return predict_values_onnx(self.session, encode_rows(rows, self.schema, self.dtype))

    def proba(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        # The latency check times this call: a regressor's answer is its value.
        return self.values(rows)


def row_losses(metric: str, y: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """The per-row loss whose mean the metric is built on."""
    residual = y - predicted
    return np.abs(residual) if metric == "mae" else residual**2


def paired_loss_test(
    metric: str, y: np.ndarray, candidate: np.ndarray, champion: np.ndarray
) -> dict[str, float]:
    """Mean per-row loss difference (candidate - champion; negative: the candidate errs less),
    its two-sided interval and the one-sided p-value of "the candidate is no better"."""
    d = row_losses(metric, y, candidate) - row_losses(metric, y, champion)
    mean = float(d.mean())
    se = float(d.std(ddof=1) / np.sqrt(d.size))
    z = _NORMAL.inv_cdf(0.5 + CONFIDENCE / 2)
    p_better = _NORMAL.cdf(mean / se) if se > 0 else (0.0 if mean < 0 else 1.0)
    return {"mean_difference": mean, "ci_low": mean - z * se, "ci_high": mean + z * se, "p_value": p_better}


def run_regression_gate(
    spec: ModelSpec,
    *,
    candidate_onnx: bytes,
    candidate_schema: FeatureSchema,
    parity: ParityReport,
    champion_onnx: bytes | None,
    champion_schema: FeatureSchema | None,
    original_test: LabelledRows,
    production_holdout: LabelledRows,
    training_rows: int,
    production_labels: int,
    performance_trigger: bool,
    root_onnx: bytes | None = None,
    root_schema: FeatureSchema | None = None,
) -> GateReport:
    """Every check of the gate for a regressor; none is skipped silently. `root_onnx` is the
    lineage's first version, trained on the original data alone: the model the original test set
    describes."""
    policy, metric = spec.retraining, spec.primary_metric.value
    min_labels = spec.monitoring.min_labels
    checks: list[Check] = []
    checks.append(schema_check(champion_schema, candidate_schema))

    candidate = ValueScorer(candidate_onnx, candidate_schema)
    champion = ValueScorer(champion_onnx, champion_schema) if champion_onnx and champion_schema else None
    test_p = candidate.values(original_test.rows)
    holdout_p = candidate.values(production_holdout.rows)
    test_m = regression_metrics(original_test.labels, test_p)
    value = test_m[metric]
    if metric == "r2" and not (performance_trigger and champion is not None):
        checks.append(
            Check(
                "min_primary_metric",
                value is not None and value >= policy.min_primary_metric,
                f"r2 on the original test set {value} vs minimum {policy.min_primary_metric}",
                {"value": value, "minimum": policy.min_primary_metric},
            )
        )
    else:
        why = (
            "an error has no floor in the spec"
            if metric != "r2"
            else "not decisive under a performance alarm"
        )
        checks.append(Check("min_primary_metric", None, f"{metric} {value}: {why} (see original_test_guard)"))

    # Not to collapse on the original test set: it may lose there (relatively, for an error) what the
    # champion lost on recent traffic, plus max_original_test_drop.
    recent = len(production_holdout) >= min_labels
    if champion is None or value is None:
        checks.append(Check("original_test_guard", None, "no champion to compare with"))
    else:
        champion_value = regression_metrics(original_test.labels, champion.values(original_test.rows))[metric]
        # How much the world changed: what the champion lost from the original test set to recent
        # traffic, or what the lineage's first version lost, whichever is larger. A champion already
        # refit on part of the new traffic loses little there, and would otherwise veto every refit
        # that follows the new world further.
        world_change = 0.0
        if performance_trigger and recent:
            scorers = [champion]
            if root_onnx and root_schema:
                scorers.append(ValueScorer(root_onnx, root_schema))
            for scorer in scorers:
                on_test = regression_metrics(original_test.labels, scorer.values(original_test.rows))[metric]
                on_recent = regression_metrics(
                    production_holdout.labels, scorer.values(production_holdout.rows)
                )[metric]
                if on_test is not None and on_recent is not None:
                    world_change = max(world_change, metric_gap(metric, on_recent, on_test))
        drop = metric_gap(metric, value, champion_value) if champion_value is not None else float("inf")
        allowed = world_change + policy.max_original_test_drop
        checks.append(
            Check(
                "original_test_guard",
                drop <= allowed,
                f"{metric} on the original test set: candidate {value:.4f} vs champion {champion_value} "
                f"(worse by {drop:+.4f}); allowed {allowed:.4f}",
                {"candidate": value, "champion": champion_value, "drop": drop, "allowed": allowed},
            )
        )

    if champion is None:
        checks.append(Check("beats_champion", None, "no champion to compare with"))
    elif not recent:
        checks.append(
            Check(
                "beats_champion",
                False if performance_trigger else None,
                f"only {len(production_holdout)} labelled recent production rows (need {min_labels})",
                {"rows": len(production_holdout)},
            )
        )
    else:
        y = production_holdout.labels
        champion_p = champion.values(production_holdout.rows)
        test = paired_loss_test(metric, y, holdout_p, champion_p)
        cand_m, champ_m = regression_metrics(y, holdout_p)[metric], regression_metrics(y, champion_p)[metric]
        if performance_trigger:
            passed, rule = test["ci_high"] < 0, "must err significantly less (performance alarm)"
        else:
            worse = metric_gap(metric, cand_m or 0.0, champ_m or 0.0)
            passed, rule = (
                worse <= policy.max_regression,
                f"may trail the champion by at most {policy.max_regression}",
            )
        checks.append(
            Check(
                "beats_champion",
                passed,
                f"{metric} on {y.size} recent production rows: candidate {cand_m:.4f} vs champion "
                f"{champ_m:.4f}; mean loss difference {test['mean_difference']:+.4f} "
                f"[{test['ci_low']:+.4f}, {test['ci_high']:+.4f}]; {rule}",
                {**test, "candidate": cand_m, "champion": champ_m, "rows": int(y.size)},
            )
        )

    checks.append(parity_check(parity))

    fair_rows, fair_p = (production_holdout, holdout_p) if recent else (original_test, test_p)
    if spec.sensitive_attributes and len(fair_rows):
        groups = group_error_metrics(
            {a: [r.get(a) for r in fair_rows.rows] for a in spec.sensitive_attributes},
            fair_rows.labels,
            fair_p,
            min_group_size=MIN_FAIRNESS_GROUP,
        )
        mae = float(np.mean(np.abs(fair_rows.labels - fair_p)))
        gaps = {
            a: g / mae for a, per in groups.items() if (g := group_error_gap(per)) is not None and mae > 0
        }
        worst = max(gaps.values()) if gaps else 0.0
        limit = spec.monitoring.max_fairness_gap
        checks.append(
            Check(
                "fairness",
                worst <= limit,
                f"largest MAE gap between groups {worst:.3f} of the MAE vs limit {limit}",
                {"gaps": gaps, "limit": limit, "rows": len(fair_rows)},
            )
        )
    else:
        checks.append(Check("fairness", None, "the spec names no sensitive attributes"))

    if original_test.rows:
        checks.append(latency_check(candidate, original_test.rows[0], policy.max_latency_ms))

    spread = float(np.std(test_p)) if test_p.size else 0.0
    finite = bool(np.isfinite(test_p).all())
    checks.append(
        Check(
            "sane_predictions",
            finite and spread > 0.0,
            f"{'all' if finite else 'not all'} finite; std of predictions {spread:.4g}",
            {"std": spread, "finite": finite},
        )
    )

    sanity_rows, sanity_p = (
        (production_holdout, holdout_p) if performance_trigger and recent else (original_test, test_p)
    )
    residual = sanity_rows.labels - sanity_p
    bias = float(residual.mean()) if residual.size else None
    rmse = float(np.sqrt(np.mean(residual**2))) if residual.size else None
    checks.append(
        Check(
            "residual_sanity",
            bias is not None and rmse is not None and abs(bias) <= RESIDUAL_BIAS_SHARE * rmse,
            f"mean residual {bias} vs at most {RESIDUAL_BIAS_SHARE} x RMSE {rmse}",
            {"mean_residual": bias, "rmse": rmse, "rows": int(residual.size)},
        )
    )

    enough = training_rows >= policy.min_training_rows and production_labels >= policy.min_production_labels
    checks.append(
        Check(
            "data_volume",
            enough,
            f"{training_rows} training rows (minimum {policy.min_training_rows}), "
            f"{production_labels} labelled production rows (minimum {policy.min_production_labels})",
            {"training_rows": training_rows, "production_labels": production_labels},
        )
    )
    return GateReport(checks)
