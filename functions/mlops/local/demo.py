"""`mlops demo`: the whole life of a model on the local stack, as real HTTP traffic.

The story: train v1 and promote it; serve simulated days of customers through the
local API, with ground truth arriving a few hours later; from day K the customers
change (covariate shift) and so does what makes them leave (concept shift); the
monitor sees the drift and the metric gap; the MetricGap alarm fires and starts
retraining; the candidate passes the gate and is promoted; the gap closes.

Time is simulated: each step sets the shared clock, so the logs, monitoring windows,
metrics and registry history all tell one consistent story in well under a minute.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from mlops import aws, clock
from mlops.alarms import Metric
from mlops.datagen import generate_churn
from mlops.local.bootstrap import ensure_champion
from mlops.local.demo_report import metric_series, model_dims, write_demo_report
from mlops.local.stack import LocalStack
from mlops.registry import Registry
from mlops.resources import REGISTRY_TABLE
from mlops.spec import ModelSpec, load_spec
from mlops.training import frame_rows

BATCH = 20  # rows per /predict request


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


def demo_spec(base: ModelSpec, slot_hours: int) -> ModelSpec:
    """The demo compresses time: monitor every slot over one day, retrain from the last day's labels."""
    monitoring = base.monitoring.model_copy(
        update={"schedule": f"rate({slot_hours} hours)", "window_hours": 24}
    )
    retraining = base.retraining.model_copy(
        update={"auto_promote": True, "production_window_days": 1, "cooldown_minutes": 12 * 60}
    )
    return base.model_copy(update={"monitoring": monitoring, "retraining": retraining})


@dataclass
class Timeline:
    entries: list[tuple[datetime, str]] = field(default_factory=list)

    def add(self, at: datetime, text: str) -> None:
        self.entries.append((at, text))
        print(f"  {at:%a %d %b %H:%M}  {text}", flush=True)


class Api:
    """A small HTTP client for the local API (what any client would do with curl)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")


@dataclass
class Outcome:
    alarm_fired: bool = False
    promoted_version: int | None = None
    serving_version: int | None = None
    final_gap: float | None = None
    threshold: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


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
    elif kind == "retrain":
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
    outcome = Outcome(threshold=spec.monitoring.max_metric_gap)
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
        spacing = timedelta(hours=cfg.slot_hours) / max(1, len(rows) // BATCH)
        for i in range(0, len(rows), BATCH):
            sim.set(slot_start + spacing * (i // BATCH))
            status, body = api.call("POST", "/predict", {"instances": rows[i : i + BATCH]})
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
        champion = registry.champion()
        if champion and champion.version > 1 and not first_promotion_seen:
            first_promotion_seen = True
            outcome.promoted_version = champion.version
        progress(_progress_line(slot + 1, cfg.days * slots_per_day, day + 1, spec, champion, sim()))

    status, body = api.call("GET", "/model")
    outcome.serving_version = body.get("model_version") if status == 200 else None
    outcome.alarm_fired = any(
        t.spec.metric is Metric.METRIC_GAP and t.new.value == "ALARM" for t in stack.events.transitions
    )
    gaps = metric_series(Metric.METRIC_GAP, model_dims(spec.name), start, sim())
    outcome.final_gap = gaps[-1][1] if gaps else None
    if not outcome.alarm_fired:
        outcome.failures.append("the MetricGap alarm never fired")
    if outcome.promoted_version is None:
        outcome.failures.append("no retrained version was promoted")
    elif outcome.serving_version != registry.champion().version:  # type: ignore[union-attr]
        outcome.failures.append(f"the API serves v{outcome.serving_version}, not the champion")
    if outcome.final_gap is None or outcome.final_gap > outcome.threshold:
        outcome.failures.append(f"the metric gap did not close (last value {outcome.final_gap})")
    write_demo_report(cfg.report_path, spec, registry, timeline, start, sim(), outcome)
    return outcome


def _progress_line(done: int, total: int, day: int, spec: ModelSpec, champion: Any, at: datetime) -> str:
    width = 30
    filled = int(width * done / total)
    recent = metric_series(Metric.METRIC_GAP, model_dims(spec.name), at - timedelta(hours=6), at)
    gap_text = "n/a (too few labels)" if not recent else f"{recent[-1][1]:+.3f}"
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] day {day} slot {done}/{total}  "
        f"champion v{champion.version if champion else '?'}  metric gap {gap_text}"
    )
