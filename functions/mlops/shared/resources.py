"""The AWS resources the system needs, defined once.

The CDK stack and the local runtime both build from these definitions, and the
functions find each resource through the environment variable named here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ResourceKind(StrEnum):
    BUCKET = "bucket"
    TABLE = "table"
    QUEUE = "queue"
    TOPIC = "topic"


@dataclass(frozen=True)
class Resource:
    logical_id: str
    kind: ResourceKind
    env_var: str
    purpose: str
    # Tables: partition/sort key attribute names (all strings) and optional TTL attribute.
    partition_key: str | None = None
    sort_key: str | None = None
    ttl_attribute: str | None = None
    # Queues: visibility timeout must exceed the consumer's timeout; DLQ after max_receive.
    visibility_timeout_s: int | None = None
    max_receive_count: int | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def physical_name(self, prefix: str) -> str:
        """The name used where we choose names ourselves (local runtime, tests)."""
        return f"{prefix}-{self.logical_id.lower()}"


ARTIFACT_BUCKET = Resource(
    "Artifacts",
    ResourceKind.BUCKET,
    "MLOPS_ARTIFACT_BUCKET",
    "model bundles (immutable, per-version prefix) and training-data snapshots",
)
LOG_BUCKET = Resource(
    "Logs",
    ResourceKind.BUCKET,
    "MLOPS_LOG_BUCKET",
    "prediction and feedback logs (JSON Lines, gzip, Hive partitions)",
)
REPORT_BUCKET = Resource(
    "Reports",
    ResourceKind.BUCKET,
    "MLOPS_REPORT_BUCKET",
    "monitoring reports (JSON + HTML) and gate reports",
)
REGISTRY_TABLE = Resource(
    "Registry",
    ResourceKind.TABLE,
    "MLOPS_REGISTRY_TABLE",
    "model versions, champion pointer, promotion history, retrain lock",
    partition_key="pk",
    sort_key="sk",
)
FEEDBACK_TABLE = Resource(
    "FeedbackIndex",
    ResourceKind.TABLE,
    "MLOPS_FEEDBACK_TABLE",
    "one row per (prediction_id, source): makes feedback idempotent",
    partition_key="pk",
    ttl_attribute="expires_at",
)
PREDICTION_QUEUE = Resource(
    "PredictionQueue",
    ResourceKind.QUEUE,
    "MLOPS_PREDICTION_QUEUE_URL",
    "prediction records on their way to the log writer",
    # Six times the log writer's timeout (30 s) plus its batching window: what SQS event sources need.
    visibility_timeout_s=240,
    max_receive_count=5,
)
# How long the predict function waits on one SendMessageBatch to the prediction queue. One call of
# 256 KiB takes tens of milliseconds in a region; a call that has not connected in 0.5 s or answered
# in 1 s is not going to, and waiting longer only delays the client. The function's log send budget
# (settings) must hold at least one such call.
SEND_CONNECT_TIMEOUT = 0.5
SEND_READ_TIMEOUT = 1.0
SEND_CALL_SECONDS = SEND_CONNECT_TIMEOUT + SEND_READ_TIMEOUT
# The log writer's SQS batch: up to this many messages or this many seconds, whichever comes first
# (Lambda also stops at a 6 MB payload). One invocation writes one object per hour partition, so the
# batch sets the size of log objects: at 1,000 requests/s about 10,000 records (~1.7 MB gzip) an
# object instead of 100 (bench/log_layout.py has the figures).
LOG_WRITER_BATCH_SIZE = 10_000
LOG_WRITER_BATCHING_WINDOW_S = 60
ALARM_TOPIC = Resource(
    "AlarmTopic",
    ResourceKind.TOPIC,
    "MLOPS_ALARM_TOPIC_ARN",
    "alarm and approval notifications for people",
)

ALL_RESOURCES: tuple[Resource, ...] = (
    ARTIFACT_BUCKET,
    LOG_BUCKET,
    REPORT_BUCKET,
    REGISTRY_TABLE,
    FEEDBACK_TABLE,
    PREDICTION_QUEUE,
    ALARM_TOPIC,
)

MODEL_NAME_ENV = "MLOPS_MODEL_NAME"
# Where `mlops logs replay` finds the predict function's log group (the stack output PredictLogGroup).
PREDICT_LOG_GROUP_ENV = "MLOPS_PREDICT_LOG_GROUP"
# Set on the admin function: POST /retrain hands the run to the retrain function (async invoke).
RETRAIN_FUNCTION_ENV = "MLOPS_RETRAIN_FUNCTION_NAME"
METRICS_NAMESPACE = "ServerlessMLOps"

# Retraining asked for by a person (admin API, CLI): an EventBridge event the stack routes
# to the retrain function, so the API never waits for a training run.
RETRAIN_REQUEST_SOURCE = "serverless-mlops"
RETRAIN_REQUEST_DETAIL_TYPE = "Retrain Requested"
# A monitor run asked for outside the schedule (another window or versions), from the same source.
MONITOR_REQUEST_DETAIL_TYPE = "Monitor Requested"

# The retry tick: a schedule at the monitor's cadence that lets the retrain function attempt again
# while a retraining condition holds (its input is this event, not the bare scheduled event).
RETRAIN_RETRY_DETAIL_TYPE = "Retraining Retry Due"
# Set on the retrain function: the alarms whose ALARM state means retraining is wanted (comma-separated).
RETRAINING_ALARMS_ENV = "MLOPS_RETRAINING_ALARMS"

# Set on the monitor function: the SQL engine that profiles an hour partition holding more than
# SCAN_ENGINE_MIN_BYTES of logs ("athena" on AWS, "duckdb" locally, "python": never SQL), and
# the Athena workgroup and Glue database it queries.
SCAN_ENGINE_ENV = "MLOPS_SCAN_ENGINE"
SCAN_ENGINE_MIN_BYTES_ENV = "MLOPS_SCAN_ENGINE_MIN_BYTES"
ATHENA_WORKGROUP_ENV = "MLOPS_ATHENA_WORKGROUP"
GLUE_DATABASE_ENV = "MLOPS_GLUE_DATABASE"
