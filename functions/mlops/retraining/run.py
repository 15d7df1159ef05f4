"""One retraining run: lock, assemble data, train, gate, register, promote or hold, notify.

Safety rules this code keeps:
- one run at a time and none within the cooldown (a conditional-write lock in the registry);
- the champion pointer only moves to a registered, verified bundle, and only after the gate;
- any failure leaves the registry and the champion as they were, and is recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import SimpleNamespace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mlops.cloud.logstore import gate_report_key
from mlops.cloud.notify import notify
from mlops.cloud.registry import Registry, VersionRecord, VersionStatus
from mlops.cloud.storage import iso, put_bytes
from mlops.model import bundle
from mlops.model.admin import promote_version
from mlops.model.registration import (
    TrainingData,
    load_training_data,
    prove_export,
    register_model,
    snapshot_training_data,
)
from mlops.model.schema import FeatureSchema
from mlops.model.spec import ModelSpec, Task, spec_from_json
from mlops.model.training import TrainingResult, train_model
from mlops.retraining.data import build_training_set, labelled_production_rows
from mlops.retraining.gate import run_gate
from mlops.shared.errors import ConflictError, MlopsError, NotFoundError

LOCK_NAME = "retrain"
# A run that dies without releasing the lock blocks others for at most this long
# (the Lambda timeout is 15 minutes).
LOCK_TTL = timedelta(minutes=20)
WEIGHT_COLUMN = "_sample_weight"


class TriggerKind(StrEnum):
    SCHEDULE = "schedule"
    ALARM = "alarm"
    MANUAL = "manual"
    RETRY = "retry"  # a later attempt while a retraining condition holds


@dataclass(frozen=True)
class Trigger:
    kind: TriggerKind
    reason: str
    actor: str = "system"
    alarm_name: str | None = None
    at: str | None = None
    attempt: int | None = None

    @property
    def performance(self) -> bool:
        """Only alarms whose spec triggers retraining reach here; they are about performance, and
        so are the retries of the condition they opened."""
        return self.kind in (TriggerKind.ALARM, TriggerKind.RETRY)

    def describe(self) -> str:
        if self.kind is TriggerKind.ALARM:
            return f"retrained after alarm {self.alarm_name} at {self.at}"
        if self.kind is TriggerKind.RETRY:
            return f"retrained (attempt {self.attempt}): {self.reason}"
        return f"retrained ({self.kind.value}): {self.reason}"


class Outcome(StrEnum):
    SKIPPED = "skipped"
    FAILED = "failed"
    REJECTED = "rejected"
    APPROVED = "approved"
    PROMOTED = "promoted"


@dataclass
class RetrainResult:
    run_id: str
    outcome: Outcome
    detail: str
    version: int | None = None
    champion_before: int | None = None
    champion_after: int | None = None
    gate_report: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "version": self.version,
            "champion_before": self.champion_before,
            "champion_after": self.champion_after,
            "gate_report": self.gate_report,
            "data": self.data,
        }


class TrainingEngine(Protocol):
    """Where the fit runs. In-process fits within a Lambda's limits; a managed engine
    (SageMaker training job, AWS Batch) implements the same call for larger data."""

    def train(
        self, data: pd.DataFrame, spec: ModelSpec, weights: np.ndarray, test_data: pd.DataFrame | None
    ) -> TrainingResult: ...


class InProcessEngine:
    def train(
        self, data: pd.DataFrame, spec: ModelSpec, weights: np.ndarray, test_data: pd.DataFrame | None
    ) -> TrainingResult:
        return train_model(data, spec, sample_weight=weights, test_data=test_data)


@dataclass
class RetrainContext:
    """The clients and places a run works with; built by the handler, the CLI or the local stack."""

    registry: Registry
    s3: Any
    sns: Any
    artifact_bucket: str
    log_bucket: str
    report_bucket: str
    topic_arn: str | None = None
    engine: TrainingEngine = field(default_factory=InProcessEngine)
    clock: Callable[[], datetime] | None = None
    # Where the retraining alarms' state is read (None: only their events are known).
    cloudwatch: Any = None
    retraining_alarms: tuple[str, ...] = ()

    def now(self) -> datetime:
        return (self.clock or self.registry.clock)()


def _champion_record(ctx: RetrainContext) -> VersionRecord:
    champion = ctx.registry.champion()
    if champion is None:
        raise NotFoundError(f"{ctx.registry.model_name} has no champion to retrain from")
    return ctx.registry.get_version(champion.version)


def _spec_of(ctx: RetrainContext, record: VersionRecord) -> ModelSpec:
    raw = bundle.read_artifact(ctx.s3, ctx.artifact_bucket, record.artifacts[bundle.SPEC])
    return spec_from_json(raw.decode("utf-8"))


def champion_bundle(ctx: RetrainContext) -> tuple[int, ModelSpec, dict[str, Any], bytes, FeatureSchema]:
    record = _champion_record(ctx)
    art = record.artifacts
    meta = bundle.read_json_artifact(ctx.s3, ctx.artifact_bucket, art[bundle.METADATA])
    onnx_bytes = bundle.read_artifact(ctx.s3, ctx.artifact_bucket, art[bundle.MODEL_ONNX])
    schema = FeatureSchema.model_validate_json(
        bundle.read_artifact(ctx.s3, ctx.artifact_bucket, art[bundle.SCHEMA])
    )
    return record.version, _spec_of(ctx, record), meta, onnx_bytes, schema


def run_retraining(ctx: RetrainContext, trigger: Trigger, *, force: bool = False) -> RetrainResult:
    """Run once, unless another run holds the lock or the cooldown has not passed."""
    run_id = uuid.uuid4().hex[:12]
    started = ctx.now()
    base = {
        "run_id": run_id,
        "started_at": iso(started),
        "trigger": trigger.kind.value,
        "reason": trigger.reason,
        "attempt": trigger.attempt,
    }
    try:
        spec_cooldown = _cooldown(ctx)
        ctx.registry.acquire_lock(
            LOCK_NAME, run_id, ttl=LOCK_TTL, cooldown=timedelta(0) if force else spec_cooldown
        )
    except ConflictError as err:
        result = RetrainResult(run_id, Outcome.SKIPPED, str(err))
        ctx.registry.record_run({**base, "outcome": result.outcome.value, "detail": result.detail})
        return result
    try:
        result = _run_locked(ctx, trigger, run_id)
    except MlopsError as err:
        result = RetrainResult(run_id, Outcome.FAILED, f"{type(err).__name__}: {err}")
    except Exception as err:  # a failed run must still be recorded and must not move the champion
        result = RetrainResult(run_id, Outcome.FAILED, f"unexpected {type(err).__name__}: {err}")
    finally:
        ctx.registry.release_lock(LOCK_NAME, run_id)
    ctx.registry.record_run(
        {
            **base,
            "finished_at": iso(ctx.now()),
            "outcome": result.outcome.value,
            "detail": result.detail,
            "version": result.version,
            "champion_before": result.champion_before,
            "champion_after": result.champion_after,
        }
    )
    notify(
        ctx.sns,
        ctx.topic_arn,
        f"[{ctx.registry.model_name}] retraining {result.outcome.value}",
        result.as_dict(),
    )
    return result


def champion_spec(ctx: RetrainContext) -> ModelSpec | None:
    """The champion's spec only (no model bytes), or None without a champion."""
    try:
        return _spec_of(ctx, _champion_record(ctx))
    except NotFoundError:
        return None


def _cooldown(ctx: RetrainContext) -> timedelta:
    # Only the spec: the model and metadata are read once the lock is held.
    try:
        record = _champion_record(ctx)
    except NotFoundError:
        return timedelta(0)
    return timedelta(minutes=_spec_of(ctx, record).retraining.cooldown_minutes)


def _task_steps(spec: ModelSpec) -> Any:
    """The task's data and gate steps: `mlops.retraining` for classification, `mlops.regression`."""
    if spec.task is Task.REGRESSION:
        from mlops.regression import retraining as regression

        return SimpleNamespace(
            labelled_production_rows=regression.labelled_production_rows,
            build_training_set=regression.build_training_set,
            run_gate=regression.run_regression_gate,
        )
    return SimpleNamespace(
        labelled_production_rows=labelled_production_rows,
        build_training_set=build_training_set,
        run_gate=run_gate,
    )


def _lineage_root(ctx: RetrainContext, champion_version: int) -> dict[str, Any]:
    """The first version of the champion's lineage (trained on the original data alone), as the
    gate's `root_onnx` and `root_schema`; nothing when the champion is that version."""
    record = ctx.registry.get_version(champion_version)
    seen = {record.version}
    while record.parent_version is not None and record.parent_version not in seen:
        record = ctx.registry.get_version(record.parent_version)
        seen.add(record.version)
    if record.version == champion_version:
        return {}
    art = record.artifacts
    return {
        "root_onnx": bundle.read_artifact(ctx.s3, ctx.artifact_bucket, art[bundle.MODEL_ONNX]),
        "root_schema": FeatureSchema.model_validate_json(
            bundle.read_artifact(ctx.s3, ctx.artifact_bucket, art[bundle.SCHEMA])
        ),
    }


def _run_locked(ctx: RetrainContext, trigger: Trigger, run_id: str) -> RetrainResult:
    now = ctx.now()
    champion_version, spec, meta, champion_onnx, champion_schema = champion_bundle(ctx)
    original = load_training_data(ctx.s3, TrainingData(**meta["original_data"]))
    window_start = now - timedelta(days=spec.retraining.production_window_days)
    task = _task_steps(spec)
    production = task.labelled_production_rows(ctx.s3, ctx.log_bucket, spec, window_start, now)
    training_set = task.build_training_set(original, production, spec, performance=trigger.performance)

    snapshot_frame = training_set.data.assign(**{WEIGHT_COLUMN: training_set.weights})
    snapshot = snapshot_training_data(ctx.s3, ctx.artifact_bucket, spec.name, snapshot_frame, retraining=True)
    result = ctx.engine.train(training_set.data, spec, training_set.weights, training_set.test_data)
    onnx_bytes, parity = prove_export(result)
    gate = task.run_gate(
        spec,
        candidate_onnx=onnx_bytes,
        candidate_schema=result.schema,
        parity=parity,
        champion_onnx=champion_onnx,
        champion_schema=champion_schema,
        original_test=training_set.original_test,
        production_holdout=training_set.production_holdout,
        training_rows=len(training_set.data),
        production_labels=training_set.stats["production_labelled_rows"],
        performance_trigger=trigger.performance,
        **_lineage_root(ctx, champion_version),
    )
    report = {**gate.as_dict(), "run_id": run_id, "trigger": trigger.describe(), "data": training_set.stats}
    status = VersionStatus.APPROVED if gate.passed else VersionStatus.REJECTED
    record = register_model(
        result,
        ctx.registry,
        ctx.s3,
        ctx.artifact_bucket,
        snapshot,
        trigger=trigger.describe(),
        parent_version=champion_version,
        original_data=TrainingData(**meta["original_data"]),
        status=status,
        gate_report=report,
        proven_export=(onnx_bytes, parity),
    )
    put_bytes(
        ctx.s3,
        ctx.report_bucket,
        gate_report_key(record.version),
        bundle.json_bytes(report),
        "application/json",
    )
    outcome = RetrainResult(
        run_id,
        Outcome.REJECTED if not gate.passed else Outcome.APPROVED,
        "gate failed: " + ", ".join(gate.failed) if not gate.passed else "gate passed",
        version=record.version,
        champion_before=champion_version,
        champion_after=champion_version,
        gate_report=report,
        data=training_set.stats,
    )
    if gate.passed and spec.retraining.auto_promote:
        promote_version(
            ctx.registry, ctx.s3, ctx.artifact_bucket, record.version, "retrain", trigger.describe()
        )
        outcome.outcome, outcome.champion_after = Outcome.PROMOTED, record.version
        outcome.detail = f"gate passed; v{record.version} promoted ({trigger.describe()})"
    elif gate.passed:
        outcome.detail = f"gate passed; v{record.version} awaits approval (auto_promote is off)"
    return outcome
