"""`mlops demo --task regression`: the life of a pricing model on the local stack, as HTTP traffic.

The story: train v1 on quoted packages and promote it; serve simulated days of quotes through
the local API, the price the customer finally paid arriving as feedback a slot later; from day K
larger packages are quoted (covariate shift) and a new price rule applies (concept shift); the
monitor sees prediction, input and target drift and the RMSE growing; the MetricGap alarm fires
and starts retraining; a candidate that errs less on recent quotes passes the gate and is promoted.

Recovery is judged against an oracle refit offline on ample quotes of the final world, all scored
on the same fresh quotes: the change cost v1 its RMSE minus the oracle's, and the champion must
win back at least `MIN_RECOVERED_SHARE` of that. The run succeeds (exit 0) only when all of that
happened.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from mlops.cloud import aws
from mlops.cloud.registry import Registry
from mlops.datagen.pricing import TARGET, generate_prices
from mlops.local.demo import Api, demo_spec
from mlops.local.demo_outcome import Timeline
from mlops.local.demo_report import metric_series, model_dims
from mlops.local.first_champion import ensure_champion
from mlops.local.stack import LocalStack
from mlops.model import bundle
from mlops.model.schema import FeatureSchema
from mlops.model.spec import ModelSpec, load_spec
from mlops.model.training import feature_frame, frame_rows, train_model
from mlops.regression.metrics import regression_metrics
from mlops.regression.retraining import ValueScorer
from mlops.shared import clock
from mlops.shared.alarm_specs import Metric
from mlops.shared.resources import ARTIFACT_BUCKET, REGISTRY_TABLE
from mlops.shared.svgplot import Marker, bar_chart, line_chart

PRICING_SPEC = Path(__file__).resolve().parents[1] / "examples" / "pricing" / "spec.toml"
ORACLE_ROWS = 20_000
EVALUATION_ROWS = 10_000
# Recovered: the champion wins back at least this share of the RMSE the change cost v1.
MIN_RECOVERED_SHARE = 0.8
RESIDUAL_BINS = (-60.0, -40.0, -20.0, -10.0, 0.0, 10.0, 20.0, 40.0, 60.0)


@dataclass(frozen=True)
class PricingDemoConfig:
    seed: int = 7
    days: int = 5
    shift_day: int = 1
    covariate_shift: float = 1.0
    concept_shift: float = 1.0
    rows_per_slot: int = 300
    slot_hours: int = 6
    batch_rows: int = 25
    report_path: Path = Path("demo-report.html")


@dataclass
class PricingOutcome:
    alarm_fired: bool = False
    promoted_version: int | None = None
    serving_version: int | None = None
    v1_fresh_rmse: float | None = None
    champion_fresh_rmse: float | None = None
    oracle_rmse: float | None = None
    failures: list[str] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def recovered_share(self) -> float | None:
        """(v1 - champion) / (v1 - oracle) in RMSE on the same fresh quotes of the final world."""
        v1, champion, oracle = self.v1_fresh_rmse, self.champion_fresh_rmse, self.oracle_rmse
        if v1 is None or champion is None or oracle is None or v1 <= oracle:
            return None
        return (v1 - champion) / (v1 - oracle)


def run_pricing_demo(cfg: PricingDemoConfig, progress: Any = print) -> PricingOutcome:
    spec = demo_spec(load_spec(PRICING_SPEC), cfg.slot_hours)
    start = (datetime.now(UTC) - timedelta(days=cfg.days + 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    sim = clock.SimulatedClock(start, factor=0.0)
    clock.use(sim)
    timeline = Timeline()

    def on_event(kind: str, detail: dict[str, Any]) -> None:
        if kind == "alarm" and detail["state"] == "ALARM":
            timeline.add(sim(), f"ALARM {detail['name']}: {detail['reason']}")
        elif kind == "retrain" and detail.get("run_id"):
            timeline.add(sim(), f"retraining {detail.get('outcome')}: {detail.get('detail')}")
        elif kind == "error":
            timeline.add(sim(), f"error in {detail['component']}: {detail['error']}")

    stack = LocalStack(spec, prefix="pricing", on_event=on_event)
    stack.start()
    try:
        return _story(cfg, spec, stack, sim, timeline, start, progress)
    finally:
        stack.stop()
        clock.use(None)


def _story(
    cfg: PricingDemoConfig,
    spec: ModelSpec,
    stack: LocalStack,
    sim: clock.SimulatedClock,
    timeline: Timeline,
    start: datetime,
    progress: Any,
) -> PricingOutcome:
    assert stack.gateway is not None
    api = Api(stack.gateway.url)
    outcome = PricingOutcome()
    registry = Registry(aws.client("dynamodb"), stack.env[REGISTRY_TABLE.env_var], spec.name)
    record = ensure_champion(stack.env, spec, generate_prices(5000, seed=cfg.seed), actor="demo")
    assert record is not None
    timeline.add(sim(), f"v1 trained and promoted (rmse {record.test_metrics['rmse']:.2f} on its test set)")
    stack.run_monitor(sim())
    slots_per_day = 24 // cfg.slot_hours
    shift_at = start + timedelta(days=cfg.shift_day)
    pending: list[list[dict[str, Any]]] = []
    for slot in range(cfg.days * slots_per_day):
        slot_start = start + timedelta(hours=cfg.slot_hours * slot)
        shifted = slot_start >= shift_at
        if slot_start == shift_at:
            timeline.add(
                slot_start,
                f"quotes change: larger packages ({cfg.covariate_shift} sd) and a new price rule "
                f"({cfg.concept_shift})",
            )
        quotes = generate_prices(
            cfg.rows_per_slot,
            seed=cfg.seed * 1000 + slot,
            covariate_shift=cfg.covariate_shift if shifted else 0.0,
            concept_shift=cfg.concept_shift if shifted else 0.0,
        )
        rows = frame_rows(feature_frame(quotes, spec))
        truth = quotes[TARGET].astype(float).tolist()
        served: list[dict[str, Any]] = []
        spacing = timedelta(hours=cfg.slot_hours) / max(1, len(rows) // cfg.batch_rows)
        for i in range(0, len(rows), cfg.batch_rows):
            sim.set(slot_start + spacing * (i // cfg.batch_rows))
            status, body = api.call("POST", "/predict", {"instances": rows[i : i + cfg.batch_rows]})
            if status != 200:
                outcome.failures.append(f"/predict answered {status}: {body}")
                return outcome
            for j, p in enumerate(body["predictions"]):
                served.append(
                    {"prediction_id": p["prediction_id"], "label": truth[i + j], "source": "explicit"}
                )
        pending.append(served)
        if len(pending) > 1:
            items = pending.pop(0)
            for i in range(0, len(items), 500):
                status, body = api.call("POST", "/feedback", {"items": items[i : i + 500]})
                if status != 200:
                    outcome.failures.append(f"/feedback answered {status}: {body}")
                    return outcome
        sim.set(slot_start + timedelta(hours=cfg.slot_hours))
        stack.drain_queue()
        stack.run_monitor(sim())
        stack.retry_tick(sim())
        champion = registry.champion()
        if champion and champion.version > 1 and outcome.promoted_version is None:
            outcome.promoted_version = champion.version
        progress(
            f"day {slot // slots_per_day + 1} slot {slot + 1}: "
            f"champion v{champion.version if champion else '?'}"
        )

    status, body = api.call("GET", "/model")
    outcome.serving_version = body.get("model_version") if status == 200 else None
    outcome.alarms = [t.spec.name for t in stack.events.transitions if t.new.value == "ALARM"]
    outcome.alarm_fired = any(
        t.spec.metric is Metric.METRIC_GAP for t in stack.events.transitions if t.new.value == "ALARM"
    )
    progress("scoring v1, the champion and an oracle refit on fresh quotes of the final world ...")
    residuals = _recovery(cfg, spec, stack, registry, outcome)
    champion = registry.champion()
    if outcome.serving_version != (champion.version if champion else None):
        outcome.failures.append(f"the API serves v{outcome.serving_version}, not the champion")
    if not outcome.alarm_fired:
        outcome.failures.append("the MetricGap alarm did not fire")
    if outcome.promoted_version is None:
        outcome.failures.append("no retrained version was promoted")
    share = outcome.recovered_share
    if share is None or share < MIN_RECOVERED_SHARE:
        outcome.failures.append(
            f"the champion won back {'n/a' if share is None else f'{share:.0%}'} of the RMSE the change cost "
            f"(v1 {outcome.v1_fresh_rmse}, champion {outcome.champion_fresh_rmse}, oracle refit "
            f"{outcome.oracle_rmse}; at least {MIN_RECOVERED_SHARE:.0%} needed)"
        )
    write_pricing_report(
        cfg.report_path, spec, registry, timeline, start, sim(), shift_at, outcome, residuals
    )
    return outcome


def _recovery(
    cfg: PricingDemoConfig, spec: ModelSpec, stack: LocalStack, registry: Registry, outcome: PricingOutcome
) -> dict[str, np.ndarray]:
    """RMSE of v1, the champion and an oracle on the same fresh quotes; the residuals for the report."""
    knobs = {"covariate_shift": cfg.covariate_shift, "concept_shift": cfg.concept_shift}
    oracle = train_model(generate_prices(ORACLE_ROWS, cfg.seed * 7919 + 1, **knobs), spec)
    fresh = generate_prices(EVALUATION_ROWS, cfg.seed * 7919 + 2, **knobs)
    rows, y = frame_rows(feature_frame(fresh, spec)), fresh[TARGET].to_numpy(dtype=float)
    s3, bucket = aws.client("s3"), stack.env[ARTIFACT_BUCKET.env_var]

    def served_values(version: int) -> np.ndarray:
        art = registry.get_version(version).artifacts
        schema = FeatureSchema.model_validate_json(bundle.read_artifact(s3, bucket, art[bundle.SCHEMA]))
        return ValueScorer(bundle.read_artifact(s3, bucket, art[bundle.MODEL_ONNX]), schema).values(rows)

    champion = registry.champion()
    v1 = served_values(1)
    current = served_values(champion.version) if champion else v1
    outcome.v1_fresh_rmse = regression_metrics(y, v1)["rmse"]
    outcome.champion_fresh_rmse = regression_metrics(y, current)["rmse"]
    outcome.oracle_rmse = regression_metrics(y, oracle.pipeline.predict(feature_frame(fresh, spec)))["rmse"]
    return {"v1": y - v1, f"v{champion.version if champion else 1} (champion)": y - current}


def residual_histogram(residuals: np.ndarray) -> list[tuple[str, float]]:
    """Share of residuals (true - predicted) per bin, open at both ends."""
    edges = np.asarray(RESIDUAL_BINS)
    counts = np.bincount(np.searchsorted(edges, residuals, side="right"), minlength=edges.size + 1)
    labels = [f"< {edges[0]:g}"]
    labels += [f"{a:g} to {b:g}" for a, b in itertools.pairwise(edges)]
    labels.append(f">= {edges[-1]:g}")
    return [(label, float(c) / max(1, residuals.size)) for label, c in zip(labels, counts, strict=True)]


def write_pricing_report(
    path: Path,
    spec: ModelSpec,
    registry: Registry,
    timeline: Timeline,
    start: datetime,
    end: datetime,
    shift_at: datetime,
    outcome: PricingOutcome,
    residuals: dict[str, np.ndarray],
) -> None:
    dims = model_dims(spec.name)
    markers = [Marker(shift_at, "quotes change")] + [
        Marker(datetime.fromisoformat(h.at.replace("Z", "+00:00")), f"v{h.to_version} promoted")
        for h in registry.history()[1:]
    ]
    charts = [
        line_chart(
            [
                ("production RMSE", metric_series(Metric.PRODUCTION_METRIC, dims, start, end)),
                ("reference RMSE", metric_series(Metric.TEST_METRIC, dims, start, end)),
            ],
            title="RMSE of the champion on labelled quotes",
            markers=markers,
            y_label="price units",
        ),
        line_chart(
            [("MetricGap", metric_series(Metric.METRIC_GAP, dims, start, end))],
            title="Relative RMSE increase over the reference",
            threshold=spec.regression_settings.max_error_increase,
            markers=markers,
            y_label="share",
        ),
        line_chart(
            [
                ("prediction PSI", metric_series(Metric.PREDICTION_DRIFT, dims, start, end)),
                ("estimated gap / limit", metric_series(Metric.ESTIMATED_GAP_RATIO, dims, start, end)),
            ],
            title="Prediction drift and the label-free estimate",
            markers=markers,
        ),
    ]
    charts += [
        bar_chart(
            residual_histogram(r),
            title=f"Residuals (true - predicted) of {name} on fresh quotes",
            x_label="share of quotes",
        )
        for name, r in residuals.items()
    ]
    figures = (
        f"<p>RMSE on fresh quotes of the final world: v1 {outcome.v1_fresh_rmse:.2f}, champion "
        f"{outcome.champion_fresh_rmse:.2f}, oracle refit {outcome.oracle_rmse:.2f}.</p>"
        if outcome.oracle_rmse is not None
        and outcome.v1_fresh_rmse is not None
        and outcome.champion_fresh_rmse is not None
        else ""
    )
    verdict = (
        "the story happened" if outcome.ok else "the story did not complete: " + "; ".join(outcome.failures)
    )
    events = "".join(f"<li>{at:%Y-%m-%d %H:%M} {escape(text)}</li>" for at, text in timeline.entries)
    html = (
        "<!doctype html><html><head><meta charset='utf-8'><title>pricing demo</title></head><body>"
        f"<h1>Pricing model demo: {escape(verdict)}</h1>{figures}"
        + "".join(f"<section>{c}</section>" for c in charts)
        + f"<h2>Timeline</h2><ul>{events}</ul></body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
