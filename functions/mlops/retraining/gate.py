"""The production gate: test cases a candidate must pass before it may replace the champion.

Each check reports passed / failed (or skipped, with why) and the numbers behind the
verdict, so a rejected candidate says exactly what failed. Both models are scored with
their ONNX exports, the code that would serve them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops.evaluation import LOWER_IS_BETTER, classification_metrics, fairness_gap, group_metrics
from mlops.inference import load_session, predict_proba_onnx, session_numeric_dtype
from mlops.monitoring.performance import FAIRNESS_MIN_POSITIVES
from mlops.onnx_export import ParityReport
from mlops.schema import FeatureSchema, encode_rows
from mlops.spec import ModelSpec

LATENCY_CALLS = 300
# Groups smaller than this are left out of disparity figures: their rates are mostly noise.
MIN_FAIRNESS_GROUP = 50
# As in monitoring: a true-positive rate from fewer positives is mostly noise.
MIN_TPR_POSITIVES = FAIRNESS_MIN_POSITIVES


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool | None  # None: skipped, with the reason in `detail`
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        status = "skipped" if self.passed is None else ("passed" if self.passed else "failed")
        return {"name": self.name, "status": status, "detail": self.detail, "figures": self.figures}


@dataclass(frozen=True)
class GateReport:
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.passed is False]

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "failed": self.failed, "checks": [c.as_dict() for c in self.checks]}


@dataclass(frozen=True)
class LabelledRows:
    """Rows as clients send them (None = missing) with their labels."""

    rows: Sequence[Mapping[str, Any]]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


class Scorer:
    """One exported model loaded once, scoring rows the way serving encodes them."""

    def __init__(self, onnx_bytes: bytes, schema: FeatureSchema) -> None:
        self.session = load_session(onnx_bytes)
        self.schema = schema
        self.dtype = session_numeric_dtype(self.session)

    def proba(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return predict_proba_onnx(self.session, encode_rows(rows, self.schema, self.dtype))

    def single_row_latency_ms(self, row: Mapping[str, Any]) -> float:
        """Median time of one single-row inference (encode + run), as serving does it."""
        timings = []
        for _ in range(LATENCY_CALLS):
            start = time.perf_counter()
            self.proba([row])
            timings.append(time.perf_counter() - start)
        return float(np.median(timings) * 1000.0)


def _higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def run_gate(
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
) -> GateReport:
    """Run every check; none is skipped silently."""
    policy = spec.retraining
    metric = spec.primary_metric.value
    checks: list[Check] = []

    # 1. API contract: clients of the champion can call the candidate unchanged.
    if champion_schema is None:
        checks.append(Check("schema_compatible", None, "no champion to compare with"))
    else:
        problems = champion_schema.compatible_with(candidate_schema)
        checks.append(
            Check("schema_compatible", not problems, "; ".join(problems) or "same features and kinds")
        )

    # 2. Quality on the original test set (never trained on).
    candidate = Scorer(candidate_onnx, candidate_schema)
    champion = Scorer(champion_onnx, champion_schema) if champion_onnx and champion_schema else None
    test_p = candidate.proba(original_test.rows)
    holdout_p = candidate.proba(production_holdout.rows) if len(production_holdout) else np.zeros(0)
    test_m = classification_metrics(original_test.labels, test_p)
    value = test_m.get(metric)
    checks.append(
        Check(
            "min_primary_metric",
            value is not None and value >= policy.min_primary_metric,
            f"{metric} on the original test set {_fmt(value)} vs minimum {policy.min_primary_metric}",
            {"value": value, "minimum": policy.min_primary_metric, "rows": len(original_test)},
        )
    )

    # 3. Against the champion on the same recent labelled production rows.
    checks.append(_champion_comparison(spec, holdout_p, champion, production_holdout, performance_trigger))

    # 4. The export serves what sklearn computes.
    checks.append(
        Check(
            "onnx_parity",
            parity.passed,
            f"max |onnx - sklearn| {parity.max_abs_diff:.2e} over {parity.rows_checked} rows "
            f"(tolerance {parity.tolerance:g})",
            {"max_abs_diff": parity.max_abs_diff, "rows": parity.rows_checked},
        )
    )

    # 5. Fairness: selection-rate and TPR disparity between groups of each sensitive attribute.
    if spec.sensitive_attributes:
        # Judged on the traffic the model will face when there is enough of it.
        recent = len(production_holdout) >= spec.monitoring.min_labels
        fair_rows = production_holdout if recent else original_test
        fair_p = holdout_p if recent else test_p
        groups = group_metrics(
            {a: [r.get(a) for r in fair_rows.rows] for a in spec.sensitive_attributes},
            fair_rows.labels,
            fair_p,
            min_group_size=MIN_FAIRNESS_GROUP,
        )
        gaps = {}
        for attr, per in groups.items():
            with_positives = {g: m for g, m in per.items() if int(m["positives"] or 0) >= MIN_TPR_POSITIVES}
            for key, members in (("selection_rate", per), ("true_positive_rate", with_positives)):
                if (gap := fairness_gap(members, key)) is not None:
                    gaps[f"{attr}.{key}"] = gap
        worst = max(gaps.values()) if gaps else 0.0
        limit = spec.monitoring.max_fairness_gap
        checks.append(
            Check(
                "fairness",
                worst <= limit,
                f"largest group disparity {worst:.3f} vs limit {limit} "
                f"on {'recent production' if recent else 'original test'} rows",
                {"gaps": gaps, "limit": limit, "rows": len(fair_rows)},
            )
        )
    else:
        checks.append(Check("fairness", None, "the spec names no sensitive attributes"))

    # 6. Latency budget for one row.
    if original_test.rows:
        latency = candidate.single_row_latency_ms(original_test.rows[0])
        checks.append(
            Check(
                "latency",
                latency <= policy.max_latency_ms,
                f"single-row p50 {latency:.3f} ms vs budget {policy.max_latency_ms} ms",
                {"p50_ms": latency, "budget_ms": policy.max_latency_ms},
            )
        )

    # 7. Sane outputs: finite, and not one constant answer.
    spread = float(np.std(test_p)) if test_p.size else 0.0
    finite = bool(np.isfinite(test_p).all())
    checks.append(
        Check(
            "sane_predictions",
            finite and spread > 1e-4,
            f"{'all' if finite else 'not all'} finite; std of probabilities {spread:.4f}",
            {"std": spread, "finite": finite},
        )
    )

    # 8. Calibration: the label-free estimate in monitoring relies on it.
    brier = test_m.get("brier")
    checks.append(
        Check(
            "calibration",
            brier is not None and brier <= policy.max_brier,
            f"Brier score {_fmt(brier)} vs limit {policy.max_brier}",
            {"brier": brier, "calibration_error": test_m.get("calibration_error"), "limit": policy.max_brier},
        )
    )

    # 9. Enough data behind the candidate.
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


def _champion_comparison(
    spec: ModelSpec,
    candidate_p: np.ndarray,
    champion: Scorer | None,
    holdout: LabelledRows,
    performance_trigger: bool,
) -> Check:
    metric = spec.primary_metric.value
    eps = spec.retraining.max_regression
    if champion is None:
        return Check("beats_champion", None, "no champion to compare with")
    if len(holdout) < spec.monitoring.min_labels or len(set(holdout.labels.tolist())) < 2:
        return Check(
            "beats_champion",
            False if performance_trigger else None,
            f"only {len(holdout)} labelled recent production rows "
            f"(need {spec.monitoring.min_labels}, both classes)",
            {"rows": len(holdout)},
        )
    cand = classification_metrics(holdout.labels, candidate_p)[metric]
    champ = classification_metrics(holdout.labels, champion.proba(holdout.rows))[metric]
    assert cand is not None and champ is not None  # both classes are present
    delta = cand - champ if _higher_is_better(metric) else champ - cand
    if performance_trigger:
        passed, rule = delta > 0, "must beat the champion (performance alarm)"
    else:
        passed, rule = delta >= -eps, f"may trail the champion by at most {eps}"
    return Check(
        "beats_champion",
        passed,
        f"{metric} on {len(holdout)} recent production rows: "
        f"candidate {cand:.4f} vs champion {champ:.4f}; {rule}",
        {"candidate": cand, "champion": champ, "delta": delta, "rows": len(holdout), "epsilon": eps},
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
