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

from mlops.model.evaluation import LOWER_IS_BETTER, classification_metrics, fairness_gap, group_metrics
from mlops.model.inference import load_session, predict_proba_onnx, session_numeric_dtype
from mlops.model.onnx_export import ParityReport
from mlops.model.schema import FeatureSchema, encode_rows
from mlops.model.spec import ModelSpec
from mlops.monitoring.performance import FAIRNESS_MIN_POSITIVES
from mlops.monitoring.significance import paired_comparison

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


def schema_check(champion: FeatureSchema | None, candidate: FeatureSchema) -> Check:
    """The API contract: clients of the champion can call the candidate unchanged."""
    if champion is None:
        return Check("schema_compatible", None, "no champion to compare with")
    problems = champion.compatible_with(candidate)
    return Check("schema_compatible", not problems, "; ".join(problems) or "same features and kinds")


def parity_check(parity: ParityReport) -> Check:
    """The export serves what sklearn computes, within the stated tolerance."""
    return Check(
        "onnx_parity",
        parity.passed,
        f"max |onnx - sklearn| {parity.max_abs_diff:.2e} over {parity.rows_checked} rows "
        f"(tolerance {parity.tolerance:g})",
        {"max_abs_diff": parity.max_abs_diff, "rows": parity.rows_checked},
    )


def latency_check(candidate: Scorer, row: Mapping[str, Any], budget_ms: float) -> Check:
    """One row's median answer time against the spec's budget."""
    latency = candidate.single_row_latency_ms(row)
    return Check(
        "latency",
        latency <= budget_ms,
        f"single-row p50 {latency:.3f} ms vs budget {budget_ms} ms",
        {"p50_ms": latency, "budget_ms": budget_ms},
    )


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
    root_onnx: bytes | None = None,
    root_schema: FeatureSchema | None = None,
) -> GateReport:
    """Run every check; none is skipped silently. `root_onnx` is the lineage's first version, trained
    on the original data alone: the model the original test set describes."""
    policy = spec.retraining
    metric = spec.primary_metric.value
    checks: list[Check] = []

    # 1. API contract: clients of the champion can call the candidate unchanged.
    checks.append(schema_check(champion_schema, candidate_schema))

    # 2. Quality on the original test set (never trained on).
    candidate = Scorer(candidate_onnx, candidate_schema)
    champion = Scorer(champion_onnx, champion_schema) if champion_onnx and champion_schema else None
    test_p = candidate.proba(original_test.rows)
    holdout_p = candidate.proba(production_holdout.rows) if len(production_holdout) else np.zeros(0)
    champion_test_p = champion.proba(original_test.rows) if champion is not None else None
    champion_holdout_p = (
        champion.proba(production_holdout.rows) if champion is not None and len(production_holdout) else None
    )
    test_m = classification_metrics(original_test.labels, test_p)
    value = test_m.get(metric)
    floor_detail = f"{metric} on the original test set {_fmt(value)} vs minimum {policy.min_primary_metric}"
    floor_figures = {"value": value, "minimum": policy.min_primary_metric, "rows": len(original_test)}
    if performance_trigger and champion is not None:
        # A changed world can make an absolute bar on the old test set unreachable for the model
        # the new world needs; there the guard below (relative to the champion) decides.
        checks.append(
            Check(
                "min_primary_metric",
                None,
                floor_detail + "; not decisive under a performance alarm (see original_test_guard)",
                floor_figures,
            )
        )
    else:
        checks.append(
            Check(
                "min_primary_metric",
                value is not None and value >= policy.min_primary_metric,
                floor_detail,
                floor_figures,
            )
        )
    root = Scorer(root_onnx, root_schema) if root_onnx and root_schema else None
    root_p = (
        (root.proba(original_test.rows), root.proba(production_holdout.rows))
        if root is not None and len(production_holdout)
        else None
    )
    checks.append(
        _original_test_guard(
            spec,
            value,
            champion_test_p,
            champion_holdout_p,
            original_test,
            production_holdout,
            performance_trigger,
            root_p,
        )
    )

    # 3. Against the champion on the same recent labelled production rows.
    checks.append(
        _champion_comparison(
            spec, champion is not None, holdout_p, champion_holdout_p, production_holdout, performance_trigger
        )
    )

    # 4. The export serves what sklearn computes.
    checks.append(parity_check(parity))

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
        checks.append(latency_check(candidate, original_test.rows[0], policy.max_latency_ms))

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

    # 8. Calibration: the label-free estimate in monitoring relies on it. Under a performance alarm
    # it is judged on the recent traffic the candidate will serve, when there is enough of it.
    on_recent = performance_trigger and len(production_holdout) >= spec.monitoring.min_labels
    calib_m = classification_metrics(production_holdout.labels, holdout_p) if on_recent else test_m
    brier = calib_m.get("brier")
    checks.append(
        Check(
            "calibration",
            brier is not None and brier <= policy.max_brier,
            f"Brier score {_fmt(brier)} vs limit {policy.max_brier} on "
            f"{'recent production' if on_recent else 'original test'} rows",
            {
                "brier": brier,
                "calibration_error": calib_m.get("calibration_error"),
                "limit": policy.max_brier,
                "rows": len(production_holdout) if on_recent else len(original_test),
            },
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


def _original_test_guard(
    spec: ModelSpec,
    candidate_value: float | None,
    champion_test_p: np.ndarray | None,
    champion_holdout_p: np.ndarray | None,
    original_test: LabelledRows,
    holdout: LabelledRows,
    performance_trigger: bool,
    root_p: tuple[np.ndarray, np.ndarray] | None = None,
) -> Check:
    """The candidate must not collapse on the original test set relative to the champion.

    It may lose there what the world's change costs on recent traffic (which a model of the new
    world rightly pays on the old test set) plus `max_original_test_drop`. The change is what the
    champion lost, or what the lineage's first version lost if that is more: a champion already
    refit on part of the new world shows only part of the change, and holding its successor to
    that part would veto the model the new world needs.
    """
    metric = spec.primary_metric.value
    margin = spec.retraining.max_original_test_drop
    if champion_test_p is None:
        return Check("original_test_guard", None, "no champion to compare with")
    champion_value = classification_metrics(original_test.labels, champion_test_p).get(metric)
    if candidate_value is None or champion_value is None:
        return Check("original_test_guard", False, f"{metric} is undefined on the original test set")
    champion_recent = None
    if champion_holdout_p is not None and len(holdout) >= spec.monitoring.min_labels:
        champion_recent = classification_metrics(holdout.labels, champion_holdout_p).get(metric)
    world_change = 0.0
    if performance_trigger and champion_recent is not None:
        world_change = max(0.0, champion_value - champion_recent)
    root_change = None
    if performance_trigger and root_p is not None and len(holdout) >= spec.monitoring.min_labels:
        root_old = classification_metrics(original_test.labels, root_p[0]).get(metric)
        root_recent = classification_metrics(holdout.labels, root_p[1]).get(metric)
        if root_old is not None and root_recent is not None:
            root_change = root_old - root_recent
            world_change = max(world_change, root_change)
    allowed = world_change + margin
    drop = champion_value - candidate_value
    root_text = "" if root_change is None else f", or the first version's {root_change:+.4f}"
    return Check(
        "original_test_guard",
        drop <= allowed,
        f"{metric} on the original test set: candidate {candidate_value:.4f} vs champion "
        f"{champion_value:.4f} (drop {drop:+.4f}); allowed {allowed:.4f} = the world's change on "
        f"recent traffic {world_change:.4f} (the champion's loss{root_text}) + margin {margin}",
        {
            "candidate": candidate_value,
            "champion": champion_value,
            "drop": drop,
            "allowed": allowed,
            "champion_recent": champion_recent,
            "world_change": world_change,
            "first_version_change": root_change,
            "margin": margin,
            "rows": len(original_test),
        },
    )


def _champion_comparison(
    spec: ModelSpec,
    has_champion: bool,
    candidate_p: np.ndarray,
    champion_p: np.ndarray | None,
    holdout: LabelledRows,
    performance_trigger: bool,
) -> Check:
    """Paired comparison on recent labelled traffic: under a performance alarm the candidate must
    be significantly better (the interval of the difference above zero), otherwise it may trail
    by at most `max_regression`."""
    metric = spec.primary_metric.value
    eps = spec.retraining.max_regression
    if not has_champion:
        return Check("beats_champion", None, "no champion to compare with")
    comparison = (
        paired_comparison(holdout.labels, candidate_p, champion_p, metric)
        if champion_p is not None and len(holdout) >= spec.monitoring.min_labels
        else None
    )
    if comparison is None:
        return Check(
            "beats_champion",
            False if performance_trigger else None,
            f"only {len(holdout)} labelled recent production rows "
            f"(need {spec.monitoring.min_labels}, both classes)",
            {"rows": len(holdout)},
        )
    c = comparison
    interval = f"difference {c.delta:+.4f}, {c.confidence:.0%} interval [{c.ci_low:+.4f}, {c.ci_high:+.4f}]"
    if performance_trigger:
        passed, rule = c.significantly_better, "must be significantly better (performance alarm)"
    else:
        passed, rule = c.delta >= -eps, f"may trail the champion by at most {eps}"
    return Check(
        "beats_champion",
        passed,
        f"{metric} on {c.rows} recent production rows: candidate {c.candidate:.4f} vs champion "
        f"{c.champion:.4f}; {interval} ({c.method}); {rule}",
        {**c.as_dict(), "epsilon": eps},
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
