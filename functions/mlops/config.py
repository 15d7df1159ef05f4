"""Function configuration from the environment, validated once at cold start.

Variable names come from `mlops.resources`, so the CDK stack, the local runtime and
the functions cannot disagree. Logic below the handlers takes plain arguments. Each class
is built on first use: a function reads one of them, and building the others cost its cold start.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlops import resources as r
from mlops.serving.log_queue import SEND_CALL_SECONDS

# Request size bounds a deployment may change through the environment; the API document states these.
DEFAULT_MAX_BATCH_ROWS = 1000
DEFAULT_MAX_FEEDBACK_ITEMS = 1000


class _Base(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

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
    # call's worth (mlops.serving.log_queue.SEND_CALL_SECONDS), or nothing would ever be sent.
    log_send_budget_seconds: float = Field(
        3.0, ge=SEND_CALL_SECONDS, le=6.0, validation_alias="MLOPS_LOG_SEND_BUDGET_SECONDS"
    )


class FeedbackSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    log_bucket: str = Field(validation_alias=r.LOG_BUCKET.env_var)
    feedback_table: str = Field(validation_alias=r.FEEDBACK_TABLE.env_var)
    max_batch_items: int = Field(
        DEFAULT_MAX_FEEDBACK_ITEMS, ge=1, le=10000, validation_alias="MLOPS_MAX_FEEDBACK_ITEMS"
    )
    # What a label is: 0/1, or a number within the target range (regression; see
    # mlops.regression.feedback.task_environment).
    feedback_label: Literal["binary", "number"] = Field("binary", validation_alias="MLOPS_FEEDBACK_LABEL")
    target_min: float | None = Field(None, validation_alias="MLOPS_TARGET_MIN")
    target_max: float | None = Field(None, validation_alias="MLOPS_TARGET_MAX")


class LogWriterSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    log_bucket: str = Field(validation_alias=r.LOG_BUCKET.env_var)


class MonitorSettings(_Base):
    log_bucket: str = Field(validation_alias=r.LOG_BUCKET.env_var)
    report_bucket: str = Field(validation_alias=r.REPORT_BUCKET.env_var)


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
