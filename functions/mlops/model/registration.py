"""Registration: export, prove, package and record a trained model as a new version.

The order matters for safety: the ONNX export must match sklearn, every artifact is
written and read back against its sha256, and only then is the registry record
written. A failure at any step leaves the registry exactly as it was.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any

import joblib
import pandas as pd

from mlops.cloud.registry import Registry, VersionRecord, VersionStatus
from mlops.cloud.storage import get_bytes, iso, put_new_bytes, sha256_hex
from mlops.model import bundle
from mlops.model.onnx_export import PARITY_TOLERANCE, ParityReport, check_parity, export_onnx
from mlops.model.spec import Task
from mlops.model.training import TrainingResult, frame_rows, read_csv_text, rows_frame
from mlops.shared.errors import DataError, ExportError, IntegrityError


@dataclass(frozen=True)
class TrainingData:
    """Where the training data came from, for lineage."""

    sha256: str
    rows: int
    uri: str | None = None


def snapshot_training_data(
    s3: Any, bucket: str, model_name: str, frame: pd.DataFrame, *, retraining: bool = False
) -> TrainingData:
    """Store the exact training data, content-addressed (same data, same key), for lineage and retraining.

    `retraining` marks a retraining run's training set (original plus production rows), kept apart
    so that it can expire with the production logs.
    """
    body = gzip.compress(frame.to_csv(index=False).encode("utf-8"), mtime=0)
    digest = sha256_hex(body)
    key = bundle.dataset_key(model_name, digest, retraining=retraining)
    put_new_bytes(s3, bucket, key, body, "application/gzip")  # already there: the same bytes
    return TrainingData(sha256=digest, rows=len(frame), uri=f"s3://{bucket}/{key}")


def load_training_data(s3: Any, data: TrainingData) -> pd.DataFrame:
    """Read a snapshot back, refusing bytes whose sha256 differs from the one recorded."""
    if not data.uri or not data.uri.startswith("s3://"):
        raise DataError(f"training data {data.uri!r} is not an S3 snapshot")
    bucket, _, key = data.uri[len("s3://") :].partition("/")
    body = get_bytes(s3, bucket, key)
    if sha256_hex(body) != data.sha256:
        raise IntegrityError(f"{data.uri}: sha256 does not match the recorded {data.sha256[:12]}...")
    # Read as the training file was: text, so categories come back exactly as they were written.
    return read_csv_text(io.StringIO(gzip.decompress(body).decode("utf-8")))


def code_version() -> str | None:
    """The git commit of the code that trained, when known (env wins: Lambda has no .git)."""
    env = os.environ.get("MLOPS_CODE_VERSION")
    if env:
        return env
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=os.path.dirname(__file__),
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def prove_export(result: TrainingResult) -> tuple[bytes, ParityReport]:
    """Export to ONNX and compare with sklearn; refuse with the worst rows when they differ."""
    onnx_bytes = export_onnx(result.pipeline, result.schema, result.spec.estimator.kind)
    regression = result.spec.task is Task.REGRESSION
    # A regressor's tolerance is in the target's units, so the spec states it.
    tolerance = result.spec.regression_settings.parity_tolerance if regression else PARITY_TOLERANCE
    report = check_parity(
        result.pipeline,
        onnx_bytes,
        result.schema,
        frame_rows(result.test_features),
        lambda rows: rows_frame(rows, result.spec),
        tolerance,
        regression=regression,
    )
    if not report.passed:
        worst = "; ".join(
            f"row {w['row']}: sklearn {w['sklearn']:.9f} vs onnx {w['onnx']:.9f}"
            for w in report.worst_rows[:3]
        )
        raise ExportError(
            f"ONNX export differs from sklearn by up to {report.max_abs_diff:.3g} "
            f"(tolerance {report.tolerance:g}); worst rows: {worst}"
        )
    return onnx_bytes, report


def bundle_artifacts(
    result: TrainingResult,
    onnx_bytes: bytes,
    parity: ParityReport,
    metadata: dict[str, Any],
) -> dict[str, bytes]:
    buffer = io.BytesIO()
    joblib.dump(result.pipeline, buffer)
    metrics = {
        "primary_metric": result.spec.primary_metric.value,
        "test": result.test_metrics,
        "groups": result.group_metrics,
        "train_rows": result.train_rows,
        "test_rows": result.test_rows,
        "reference": reference.model_dump() if (reference := result.profile.reference_metric) else None,
    }
    return {
        bundle.MODEL_ONNX: onnx_bytes,
        bundle.PIPELINE: buffer.getvalue(),
        bundle.SPEC: result.spec.to_json().encode("utf-8"),
        bundle.SCHEMA: result.schema.model_dump_json(indent=2).encode("utf-8"),
        bundle.METRICS: bundle.json_bytes(metrics),
        bundle.PROFILE: result.profile.model_dump_json().encode("utf-8"),
        bundle.METADATA: bundle.json_bytes(metadata),
        bundle.PARITY: bundle.json_bytes(parity.as_dict()),
    }


def _lineage(data: TrainingData) -> dict[str, Any]:
    return {"sha256": data.sha256, "rows": data.rows, "uri": data.uri}


def register_model(
    result: TrainingResult,
    registry: Registry,
    s3: Any,
    bucket: str,
    data: TrainingData,
    *,
    trigger: str = "manual",
    parent_version: int | None = None,
    original_data: TrainingData | None = None,
    status: VersionStatus = VersionStatus.REGISTERED,
    gate_report: dict[str, Any] | None = None,
    proven_export: tuple[bytes, ParityReport] | None = None,
) -> VersionRecord:
    """Export, prove parity (unless `proven_export` is passed in), write the verified bundle,
    then record the version."""
    onnx_bytes, parity = proven_export or prove_export(result)
    if not parity.passed:
        raise ExportError(f"ONNX export differs from sklearn by up to {parity.max_abs_diff:.3g}")
    version = registry.next_version()
    created_at = iso(registry.clock())
    code = code_version()
    metadata = {
        "model_name": result.spec.name,
        "version": version,
        "created_at": created_at,
        "training_data": _lineage(data),
        # The data set retraining starts from: a first model's own data, a retrained one's ancestor's.
        "original_data": _lineage(original_data or data),
        "code_version": code,
        "estimator": {"kind": result.spec.estimator.kind.value, "params": result.estimator_params},
        "parent_version": parent_version,
        "trigger": trigger,
        "train_rows": result.train_rows,
        "test_rows": result.test_rows,
        "parity_max_abs_diff": parity.max_abs_diff,
    }
    artifacts = bundle_artifacts(result, onnx_bytes, parity, metadata)
    refs = bundle.write_bundle(s3, bucket, result.spec.name, version, artifacts)
    record = VersionRecord(
        model_name=result.spec.name,
        version=version,
        status=status,
        created_at=created_at,
        primary_metric=result.spec.primary_metric.value,
        test_metrics=result.test_metrics,
        artifacts=refs,
        trigger=trigger,
        parent_version=parent_version,
        training_rows=data.rows,
        training_data_sha256=data.sha256,
        code_version=code,
        gate_report=json.loads(json.dumps(gate_report, default=str)) if gate_report else None,
        reference_metric=reference.model_dump() if (reference := result.profile.reference_metric) else None,
    )
    registry.put_version(record)
    return record
