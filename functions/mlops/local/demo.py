"""`mlops demo`: the whole life of a model on the local stack, as real HTTP traffic.

The story: train v1 and promote it; serve simulated days of customers through the
local API, with ground truth arriving a few hours later; from day K the customers
change (covariate shift) and so does what makes them leave (concept shift); the
monitor sees the drift and the metric gap; the MetricGap alarm fires and starts
retraining, retried while the alarm holds; a candidate passes the gate and is promoted.

Recovery is judged against an oracle, not against the new version's own test figure: a
model refit offline on ample traffic of the final world, scored on fresh rows of it next
to the champion. A run without a concept shift is meant to stay quiet: it succeeds when no
performance alarm fires and nothing is retrained (drift alarms on a covariate shift are
the truth about the data and are reported).

Time is simulated: each step sets the shared clock, so the logs, monitoring windows,
metrics and registry history all tell one consistent story in well under a minute.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from mlops.cloud import aws
from mlops.cloud.registry import Registry
from mlops.cloud.storage import parse_time
from mlops.datagen.churn import generate_churn
from mlops.local.demo_outcome import Outcome, Recovery, Timeline
from mlops.local.demo_report import metric_series, model_dims, write_demo_report
from mlops.local.first_champion import ensure_champion
from mlops.local.stack import LocalStack
from mlops.model import bundle
from mlops.model.evaluation import classification_metrics
from mlops.model.schema import FeatureSchema
from mlops.model.spec import ModelSpec, load_spec
from mlops.model.training import feature_frame, frame_rows, train_model
from mlops.retraining.gate import Scorer
from mlops.shared import clock
from mlops.shared.alarm_specs import Metric
from mlops.shared.resources import ARTIFACT_BUCKET, REGISTRY_TABLE

BATCH = 20  # rows per /predict request
ORACLE_ROWS = 30_000
EVALUATION_ROWS = 20_000
# Recovery means serving within this distance of the oracle on fresh traffic of the final world.
ORACLE_TOLERANCE = 0.05


@dataclass(frozen=True)
class DemoConfig:
    spec_path: Path
    seed: int = 7
    days: int = 7
    shift_day: int = 2
    covariate_shift: float = 1.0
    concept_shift: float = 1.0
    rows_per_slot: int = 400
    slot_hours: int = 6
    feedback_delay_slots: int = 1
    feedback_rate: float = 0.9
    report_path: Path = Path("demo-report.html")
    batch_rows: int = BATCH

    @property
    def performance_changes(self) -> bool:
        """Only a concept shift changes how good the model is; covariate shift alone does not."""
        return self.concept_shift > 0


def demo_spec(base: ModelSpec, slot_hours: int) -> ModelSpec:
    """The demo compresses time: monitor every slot over one day, retrain from the last day's labels."""
    monitoring = base.monitoring.model_copy(
        update={"schedule": f"rate({slot_hours} hours)", "window_hours": 24}
    )
    retraining = base.retraining.model_copy(
        update={"auto_promote": True, "production_window_days": 1, "cooldown_minutes": 12 * 60}
    )
    return base.model_copy(update={"monitoring": monitoring, "retraining": retraining})


class Api:
    """A small HTTP client for the local API (what any client would do with curl)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")


def run_demo(
    cfg: DemoConfig,
    progress: Callable[[str], None] = print,
    inspect: Callable[[LocalStack], None] | None = None,
) -> Outcome:
    """Play the story; `inspect` sees the stack before it stops (tests look inside moto)."""
    spec = demo_spec(load_spec(cfg.spec_path), cfg.slot_hours)
    start = (datetime.now(UTC) - timedelta(days=cfg.days + 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    sim = clock.SimulatedClock(start, factor=0.0)  # time moves only when the story moves it
    clock.use(sim)
    progress("starting the local stack (moto, API, log writer, monitor, alarms) and training v1 ...")
    timeline = Timeline()
    stack = LocalStack(spec, prefix="demo", on_event=lambda kind, d: _on_event(kind, d, timeline, sim))
    stack.start()
    try:
        outcome = _story(cfg, spec, stack, sim, timeline, start, progress)
        if inspect is not None:
            inspect(stack)
        return outcome
    finally:
        stack.stop()
        clock.use(None)


def _on_event(kind: str, detail: dict[str, Any], timeline: Timeline, sim: clock.SimulatedClock) -> None:
    if kind == "alarm" and detail["state"] == "ALARM":
        timeline.add(sim(), f"ALARM {detail['name']}: {detail['reason']}")
    elif kind == "alarm":
        timeline.add(sim(), f"alarm {detail['name']} -> {detail['state']}")
    elif kind == "retrain" and detail.get("run_id"):  # ticks with nothing due are not news
        timeline.add(sim(), f"retraining {detail.get('outcome')}: {detail.get('detail')}")
    elif kind == "error":
        timeline.add(sim(), f"error in {detail['component']}: {detail['error']}")


def _story(
    cfg: DemoConfig,
    spec: ModelSpec,
    stack: LocalStack,
    sim: clock.SimulatedClock,
    timeline: Timeline,
    start: datetime,
    progress: Callable[[str], None],
) -> Outcome:
    assert stack.gateway is not None
    api = Api(stack.gateway.url)
    outcome = Outcome(threshold=spec.monitoring.max_metric_gap, quiet_expected=not cfg.performance_changes)
    registry = Registry(aws.client("dynamodb"), stack.env[REGISTRY_TABLE.env_var], spec.name)

    record = ensure_champion(stack.env, spec, generate_churn(5000, seed=cfg.seed), actor="demo")
    assert record is not None
    timeline.add(
        sim(),
        f"v1 trained and promoted ({spec.primary_metric.value} "
        f"{record.test_metrics.get(spec.primary_metric.value):.3f} on its test set)",
    )

    # The monitor's schedule starts with the deployment: a first run before any traffic.
    stack.run_monitor(sim())
    slots_per_day = 24 // cfg.slot_hours
    pending: list[list[dict[str, Any]]] = []  # feedback waiting to arrive, one list per slot
    rng = np.random.default_rng(cfg.seed)
    first_promotion_seen = False
    for slot in range(cfg.days * slots_per_day):
        slot_start = start + timedelta(hours=cfg.slot_hours * slot)
        day = slot // slots_per_day
        shifted = day >= cfg.shift_day
        if shifted and slot == cfg.shift_day * slots_per_day:
            outcome.shift_at = slot_start
            timeline.add(
                slot_start,
                f"customers change: covariate shift {cfg.covariate_shift} sd, "
                f"concept shift {cfg.concept_shift}",
            )
        customers = generate_churn(
            cfg.rows_per_slot,
            seed=cfg.seed * 1000 + slot,
            covariate_shift=cfg.covariate_shift if shifted else 0.0,
            concept_shift=cfg.concept_shift if shifted else 0.0,
            id_prefix="cust",
        )
        rows = frame_rows(customers[spec.feature_names])
        truth = customers[spec.target].astype(int).tolist()
        served: list[dict[str, Any]] = []
        batch = cfg.batch_rows
        spacing = timedelta(hours=cfg.slot_hours) / max(1, len(rows) // batch)
        for i in range(0, len(rows), batch):
            sim.set(slot_start + spacing * (i // batch))
            status, body = api.call("POST", "/predict", {"instances": rows[i : i + batch]})
            if status != 200:
                outcome.failures.append(f"/predict answered {status}: {body}")
                return outcome
            for j, p in enumerate(body["predictions"]):
                served.append({"prediction_id": p["prediction_id"], "label": truth[i + j]})
        pending.append(served)
        # Ground truth for earlier slots arrives now (some customers never tell).
        if len(pending) > cfg.feedback_delay_slots:
            arrived = pending.pop(0)
            items = [
                {"prediction_id": f["prediction_id"], "label": f["label"], "source": "explicit"}
                for f in arrived
                if rng.random() < cfg.feedback_rate
            ]
            for i in range(0, len(items), 500):
                status, body = api.call("POST", "/feedback", {"items": items[i : i + 500]})
                if status != 200:
                    outcome.failures.append(f"/feedback answered {status}: {body}")
                    return outcome
        # End of the slot: the log writer catches up, the scheduled monitor runs, alarms are evaluated.
        sim.set(slot_start + timedelta(hours=cfg.slot_hours))
        stack.drain_queue()
        stack.run_monitor(sim())
        stack.retry_tick(sim())  # the retry schedule: attempts again while retraining is wanted
        champion = registry.champion()
        if champion and champion.version > 1 and not first_promotion_seen:
            first_promotion_seen = True
            outcome.promoted_version = champion.version
        progress(_progress_line(slot + 1, cfg.days * slots_per_day, day + 1, spec, champion, sim()))

    outcome.ended_at = sim()
    status, body = api.call("GET", "/model")
    outcome.serving_version = body.get("model_version") if status == 200 else None
    for t in stack.events.transitions:
        if t.new.value == "ALARM":
            outcome.alarms.append((t.at, t.spec.name, t.spec.metric))
    assert stack.alarms is not None
    outcome.final_states = {name: state.value for name, state in stack.alarms.states.items()}
    outcome.promotions = [(parse_time(h.at), h.to_version) for h in registry.history()[1:]]
    outcome.retrain_runs = list(reversed(registry.runs(limit=200)))
    outcome.alarm_fired = any(t.spec.metric is Metric.METRIC_GAP for t in _alarm_transitions(stack))
    gaps = metric_series(Metric.METRIC_GAP, model_dims(spec.name), start, sim())
    outcome.final_gap = gaps[-1][1] if gaps else None
    progress("scoring the champion and an oracle refit on fresh traffic of the final world ...")
    outcome.recovery = _recovery(cfg, spec, stack, registry, start, outcome.shift_at, sim())
    champion = registry.champion()
    if outcome.serving_version != (champion.version if champion else None):
        outcome.failures.append(f"the API serves v{outcome.serving_version}, not the champion")
    if outcome.quiet_expected:
        _judge_quiet(outcome, cfg)
    else:
        _judge_recovery(outcome)
    write_demo_report(cfg.report_path, spec, registry, timeline, start, sim(), outcome)
    return outcome


def _alarm_transitions(stack: LocalStack) -> list[Any]:
    return [t for t in stack.events.transitions if t.new.value == "ALARM"]


def _judge_quiet(outcome: Outcome, cfg: DemoConfig) -> None:
    """Nothing about performance may fire, nothing may be retrained; with no shift at all, no alarm."""
    fired = outcome.alarms if cfg.covariate_shift == 0 else outcome.performance_alarms
    for at, name, _ in fired:
        outcome.failures.append(f"{name} fired at {at:%a %H:%M} although nothing it watches changed")
    if outcome.promotions:
        outcome.failures.append(
            f"v{outcome.promotions[0][1]} was promoted although performance did not change"
        )


def _judge_recovery(outcome: Outcome) -> None:
    if not outcome.performance_alarms:
        outcome.failures.append("no performance alarm fired")
    if outcome.promoted_version is None:
        outcome.failures.append("no retrained version was promoted")
    rec = outcome.recovery
    if rec is not None and rec.oracle_gap > ORACLE_TOLERANCE:
        outcome.failures.append(
            f"the champion reaches {rec.metric} {rec.champion_fresh:.3f} on fresh traffic, "
            f"{rec.oracle_gap:.3f} below a refit on ample new traffic ({rec.oracle:.3f}; tolerance "
            f"{ORACLE_TOLERANCE})"
        )


def _recovery(
    cfg: DemoConfig,
    spec: ModelSpec,
    stack: LocalStack,
    registry: Registry,
    start: datetime,
    shift_at: datetime | None,
    end: datetime,
) -> Recovery | None:
    """Champion and oracle on the same fresh rows of the final world; the production level before
    the shift and at the end, from the champion's ProductionMetric series."""
    champion = registry.champion()
    if champion is None:
        return None
    metric = spec.primary_metric.value
    cov, con = cfg.covariate_shift, cfg.concept_shift
    oracle_data = generate_churn(ORACLE_ROWS, cfg.seed * 7919 + 1, covariate_shift=cov, concept_shift=con)
    fresh = generate_churn(EVALUATION_ROWS, cfg.seed * 7919 + 2, covariate_shift=cov, concept_shift=con)
    oracle = train_model(oracle_data, spec)
    fresh_rows = frame_rows(fresh[spec.feature_names])
    labels = fresh[spec.target].astype(int).to_numpy()
    record = registry.get_version(champion.version)
    s3, bucket = aws.client("s3"), stack.env[ARTIFACT_BUCKET.env_var]
    scorer = Scorer(
        bundle.read_artifact(s3, bucket, record.artifacts[bundle.MODEL_ONNX]),
        FeatureSchema.model_validate_json(bundle.read_artifact(s3, bucket, record.artifacts[bundle.SCHEMA])),
    )
    champion_value = classification_metrics(labels, scorer.proba(fresh_rows))[metric]
    oracle_value = classification_metrics(
        labels, oracle.pipeline.predict_proba(feature_frame(fresh, spec))[:, 1]
    )[metric]
    production = metric_series(Metric.PRODUCTION_METRIC, model_dims(spec.name), start, end)
    before = [v for t, v in production if shift_at is None or t < shift_at]
    return Recovery(
        pre_shift=float(np.mean(before)) if before else None,
        final_production=production[-1][1] if production else None,
        champion_fresh=float(champion_value or 0.0),
        oracle=float(oracle_value or 0.0),
        metric=metric,
    )


def _progress_line(done: int, total: int, day: int, spec: ModelSpec, champion: Any, at: datetime) -> str:
    width = 30
    filled = int(width * done / total)
    recent = metric_series(Metric.METRIC_GAP, model_dims(spec.name), at - timedelta(hours=6), at)
    gap_text = "n/a (too few labels)" if not recent else f"{recent[-1][1]:+.3f}"
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] day {day} slot {done}/{total}  "
        f"champion v{champion.version if champion else '?'}  metric gap {gap_text}"
    )
