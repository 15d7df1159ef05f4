"""Function configuration from the environment, validated once at cold start.

Variable names come from `mlops.shared.resources`, so the CDK stack, the local runtime and
the functions cannot disagree. Logic below the handlers takes plain arguments. Each class
is built on first use: a function reads one of them, and building the others cost its cold start.

The classes are plain pydantic models that read each field from the variable its alias names
(`EnvironmentSettings`): what the functions need of a settings library is exactly that, and
importing pydantic-settings (its dotenv, CLI and cloud secret sources, asyncio) cost the predict
function's cold start more than validating its settings does.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlops.shared import resources as r


class EnvironmentSettings(BaseModel):
    """Settings read from the environment: each field from the variable named by its alias.

    Values passed to the constructor (by alias or by field name) take precedence over the
    environment; strings are converted and validated like any pydantic input ("30" -> 30.0).
    """

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _read_environment(cls, data: Any) -> Any:
        given = dict(data) if isinstance(data, dict) else {}
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            if not isinstance(alias, str) or name in given or alias in given:
                continue
            if alias in os.environ:
                values[alias] = os.environ[alias]
        values.update(given)
        return values


# Request size bounds a deployment may change through the environment; the API document states these.
DEFAULT_MAX_BATCH_ROWS = 1000
DEFAULT_MAX_FEEDBACK_ITEMS = 1000


class _Base(EnvironmentSettings):
    model_name: str = Field(validation_alias=r.MODEL_NAME_ENV)
    registry_table: str = Field(validation_alias=r.REGISTRY_TABLE.env_var)
    artifact_bucket: str = Field(validation_alias=r.ARTIFACT_BUCKET.env_var)


class ServingSettings(_Base):
    prediction_queue_url: str = Field(validation_alias=r.PREDICTION_QUEUE.env_var)
    champion_refresh_seconds: float = Field(30.0, ge=0, validation_alias="MLOPS_CHAMPION_REFRESH_SECONDS")
    max_batch_rows: int = Field(
        DEFAULT_MAX_BATCH_ROWS, ge=1, le=10000, validation_alias="MLOPS_MAX_BATCH_ROWS"
    )
    report_bucket: str | None = Field(None, validation_alias=r.REPORT_BUCKET.env_var)
    # Total time the log send may take per request (the function times out at 10 s); at least one
    # call's worth (mlops.shared.resources.SEND_CALL_SECONDS), or nothing would ever be sent.
    log_send_budget_seconds: float = Field(
        3.0, ge=r.SEND_CALL_SECONDS, le=6.0, validation_alias="MLOPS_LOG_SEND_BUDGET_SECONDS"
    )


class FeedbackSettings(EnvironmentSettings):
    # Feedback is queued with the prediction logs; the log writer writes it (mlops.serving.feedback).
    prediction_queue_url: str = Field(validation_alias=r.PREDICTION_QUEUE.env_var)
    feedback_table: str = Field(validation_alias=r.FEEDBACK_TABLE.env_var)
    max_batch_items: int = Field(
        DEFAULT_MAX_FEEDBACK_ITEMS, ge=1, le=10000, validation_alias="MLOPS_MAX_FEEDBACK_ITEMS"
    )
    # What a label is: 0/1, or a number within the target range (regression; see
    # mlops.regression.feedback.task_environment).
    feedback_label: Literal["binary", "number"] = Field("binary", validation_alias="MLOPS_FEEDBACK_LABEL")
    target_min: float | None = Field(None, validation_alias="MLOPS_TARGET_MIN")
    target_max: float | None = Field(None, validation_alias="MLOPS_TARGET_MAX")


class LogWriterSettings(EnvironmentSettings):
    log_bucket: str = Field(validation_alias=r.LOG_BUCKET.env_var)


class MonitorSettings(_Base):
    log_bucket: str = Field(validation_alias=r.LOG_BUCKET.env_var)
    report_bucket: str = Field(validation_alias=r.REPORT_BUCKET.env_var)
    # An hour partition whose logs hold more than this many bytes is profiled by the SQL engine.
    scan_engine: Literal["python", "duckdb", "athena"] = Field(
        default="python", validation_alias=r.SCAN_ENGINE_ENV
    )
    scan_engine_min_bytes: int = Field(
        default=64 * 1024**2, ge=0, validation_alias=r.SCAN_ENGINE_MIN_BYTES_ENV
    )
    athena_workgroup: str | None = Field(default=None, validation_alias=r.ATHENA_WORKGROUP_ENV)
    glue_database: str | None = Field(default=None, validation_alias=r.GLUE_DATABASE_ENV)


class RetrainSettings(_Base):
    log_bucket: str = Field(validation_alias=r.LOG_BUCKET.env_var)
    report_bucket: str = Field(validation_alias=r.REPORT_BUCKET.env_var)
    alarm_topic_arn: str | None = Field(None, validation_alias=r.ALARM_TOPIC.env_var)
    retraining_alarms: str = Field("", validation_alias=r.RETRAINING_ALARMS_ENV)

    @property
    def retraining_alarm_names(self) -> tuple[str, ...]:
        return tuple(n.strip() for n in self.retraining_alarms.split(",") if n.strip())


class AdminSettings(_Base):
    report_bucket: str | None = Field(None, validation_alias=r.REPORT_BUCKET.env_var)
    retrain_function_name: str | None = Field(None, validation_alias=r.RETRAIN_FUNCTION_ENV)
