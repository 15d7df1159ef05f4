"""Put a first champion into a fresh local stack: train, prove, register and promote."""

from __future__ import annotations

import pandas as pd

from mlops.cloud import aws
from mlops.cloud.registry import Registry, VersionRecord
from mlops.model.admin import promote_version
from mlops.model.registration import register_model, snapshot_training_data
from mlops.model.spec import ModelSpec
from mlops.model.training import train_model
from mlops.shared.resources import ARTIFACT_BUCKET, REGISTRY_TABLE


def ensure_champion(
    env: dict[str, str], spec: ModelSpec, data: pd.DataFrame, actor: str
) -> VersionRecord | None:
    """Train and promote a first version when the registry has no champion; None if it had one."""
    registry = Registry(aws.client("dynamodb"), env[REGISTRY_TABLE.env_var], spec.name)
    if registry.champion() is not None:
        return None
    s3, bucket = aws.client("s3"), env[ARTIFACT_BUCKET.env_var]
    result = train_model(data, spec)
    snapshot = snapshot_training_data(s3, bucket, spec.name, data)
    record = register_model(result, registry, s3, bucket, snapshot, trigger="local bootstrap")
    promote_version(registry, s3, bucket, record.version, actor, "first champion of the local stack")
    return record
