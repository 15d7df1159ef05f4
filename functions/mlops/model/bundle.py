"""Model bundles: the immutable, verifiable set of artifacts of one model version.

Layout: ``models/<model>/v<version:06d>/<artifact>`` in the artifact bucket, next to the
training-data snapshots ``datasets/<model>/[retraining/]<sha256>.csv.gz``. Every
artifact's sha256 is recorded in the registry; `read_artifact` refuses bytes that do
not match. Nothing here unpickles: the sklearn pipeline is stored for retraining and
analysis only and is loaded by the training side through `load_pipeline`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlops.cloud.storage import get_bytes, put_new_bytes, sha256_hex
from mlops.shared.errors import ConflictError, IntegrityError, NotFoundError

MODEL_ONNX = "model.onnx"
PIPELINE = "pipeline.joblib"
SPEC = "spec.json"
SCHEMA = "schema.json"
METRICS = "metrics.json"
PROFILE = "profile.json"
METADATA = "metadata.json"
PARITY = "parity.json"
ARTIFACTS = (MODEL_ONNX, PIPELINE, SPEC, SCHEMA, METRICS, PROFILE, METADATA, PARITY)
# What the serving function needs; it never reads the pickled pipeline.
SERVING_ARTIFACTS = (MODEL_ONNX, SCHEMA)

_CONTENT_TYPES = {".json": "application/json", ".onnx": "application/octet-stream"}


class ArtifactRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    sha256: str
    size: int


MODELS_PREFIX = "models/"


def model_prefix(model_name: str) -> str:
    """Every bundle of one model (the stack grants reads and writes under it, nothing wider)."""
    return f"{MODELS_PREFIX}{model_name}/"


def bundle_prefix(model_name: str, version: int) -> str:
    return f"{model_prefix(model_name)}v{version:06d}/"


DATASETS_PREFIX = "datasets/"
# Retraining snapshots hold labelled production rows; they are lineage only (no run reads them
# back) and expire with the logs they were drawn from. Original data sets never expire: every
# retraining run starts from its model's original data.
RETRAINING_SNAPSHOTS = "retraining/"


def datasets_prefix(model_name: str) -> str:
    """Training-data snapshots of one model, content-addressed (same data, same key)."""
    return f"{DATASETS_PREFIX}{model_name}/"


def retraining_snapshots_prefix(model_name: str) -> str:
    return f"{datasets_prefix(model_name)}{RETRAINING_SNAPSHOTS}"


def dataset_key(model_name: str, sha256: str, *, retraining: bool = False) -> str:
    prefix = retraining_snapshots_prefix(model_name) if retraining else datasets_prefix(model_name)
    return f"{prefix}{sha256}.csv.gz"


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, default=str).encode("utf-8")


def write_bundle(
    s3: Any, bucket: str, model_name: str, version: int, artifacts: Mapping[str, bytes]
) -> dict[str, ArtifactRef]:
    """Write every artifact under the version's prefix, then read each back and verify it.

    Refuses to overwrite: a version prefix is written once. Returns the refs to record.
    """
    missing = [a for a in ARTIFACTS if a not in artifacts]
    if missing:
        raise ValueError(f"bundle is missing artifact(s): {', '.join(missing)}")
    prefix = bundle_prefix(model_name, version)
    refs: dict[str, ArtifactRef] = {}
    for name, body in artifacts.items():
        key = prefix + name
        suffix = name[name.rfind(".") :]
        if not put_new_bytes(s3, bucket, key, body, _CONTENT_TYPES.get(suffix, "application/octet-stream")):
            raise ConflictError(f"s3://{bucket}/{key} already exists: bundles are immutable")
        refs[name] = ArtifactRef(key=key, sha256=sha256_hex(body), size=len(body))
    for ref in refs.values():
        read_artifact(s3, bucket, ref)
    return refs


def read_artifact(s3: Any, bucket: str, ref: ArtifactRef) -> bytes:
    body = get_bytes(s3, bucket, ref.key)
    actual = sha256_hex(body)
    if actual != ref.sha256:
        raise IntegrityError(
            f"s3://{bucket}/{ref.key}: sha256 {actual[:12]}... "
            f"does not match the registry's {ref.sha256[:12]}..."
        )
    return body


def read_json_artifact(s3: Any, bucket: str, ref: ArtifactRef) -> Any:
    return json.loads(read_artifact(s3, bucket, ref))


def verify_bundle(s3: Any, bucket: str, refs: Mapping[str, ArtifactRef]) -> None:
    for ref in refs.values():
        read_artifact(s3, bucket, ref)


def verify_servable(s3: Any, bucket: str, version: int, refs: Mapping[str, ArtifactRef]) -> None:
    """Refuse a version that could not serve: an artifact missing, altered, or an ONNX model that
    does not load. Run before the champion pointer moves, so a bad version is refused while the
    serving one stays. IntegrityError names the artifact and what is wrong with it.
    """
    missing = [a for a in ARTIFACTS if a not in refs]
    if missing:
        raise IntegrityError(f"version {version}: no {', '.join(missing)} in its registry record")
    for name in ARTIFACTS:
        ref = refs[name]
        try:
            body = read_artifact(s3, bucket, ref)
        except NotFoundError:
            raise IntegrityError(f"version {version}: {name} is missing (s3://{bucket}/{ref.key})") from None
        except IntegrityError as err:
            raise IntegrityError(f"version {version}: {name} was altered: {err}") from None
        if name == MODEL_ONNX:
            _check_loads(version, body)


def _check_loads(version: int, onnx_bytes: bytes) -> None:
    # Imported here: onnxruntime costs cold start to functions that never verify a model.
    from mlops.model.inference import load_session
    from mlops.shared.errors import ExportError

    try:
        load_session(onnx_bytes)
    except ExportError as err:
        raise IntegrityError(f"version {version}: {MODEL_ONNX} does not load: {err}") from None
