"""Stage configuration from cdk context (`-c key=value`), validated once, with the model spec it names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.cloud.logstore import MAX_WINDOW_HOURS
from mlops.model.spec import ModelSpec, load_spec

from infrastructure.lambdas import CODE_ASSET_DIR, LAYER_BUILD_DIR, ROOT

DEFAULT_SPEC = "functions/mlops/examples/churn/spec.toml"
_STAGE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653)


@dataclass(frozen=True)
class ArtifactSources:
    """Where the deployable code comes from; tests point these at small stand-ins.

    `functions_dir` is a built folder shipped as it is (source plus its bytecode), not the
    source tree filtered at synthesis.
    """

    functions_dir: Path
    serving_layer_dir: Path
    ml_image_dir: Path


def built_sources() -> ArtifactSources:
    """The real artifacts, as `make layers` leaves them."""
    return ArtifactSources(
        functions_dir=CODE_ASSET_DIR,
        serving_layer_dir=LAYER_BUILD_DIR / "serving",
        ml_image_dir=LAYER_BUILD_DIR / "ml-image",
    )


@dataclass(frozen=True)
class StageConfig:
    stage: str
    spec_path: Path
    spec: ModelSpec
    alarm_email: str | None = None
    log_retention_days: int = 30
    prediction_log_expire_days: int = 400
    # Retraining snapshots hold production rows: by default they go when the logs they came from go.
    retraining_snapshot_expire_days: int = 400
    report_expire_days: int = 400
    access_log_expire_days: int = 90
    api_rate_limit: int = 100
    api_burst_limit: int = 200
    champion_refresh_seconds: int = 30

    @property
    def prefix(self) -> str:
        """Prefix of the names we choose ourselves (alarms, Glue, Athena), unique per stage."""
        return f"mlops-{self.stage}"

    @property
    def stack_name(self) -> str:
        return f"ServerlessMlops-{self.stage}"

    @property
    def model_name(self) -> str:
        return self.spec.name

    @classmethod
    def from_context(cls, get: Any) -> StageConfig:
        """Build from a context getter (`node.try_get_context`); unset keys keep their defaults."""
        stage = str(get("stage") or "dev")
        if not _STAGE.match(stage):
            raise ValueError(f"stage {stage!r}: lower-case letters, digits and '-', at most 20 characters")
        spec_path = Path(str(get("spec") or DEFAULT_SPEC))
        if not spec_path.is_absolute():
            spec_path = ROOT / spec_path
        email = get("alarmEmail") or None
        if email is not None and not _EMAIL.match(str(email)):
            raise ValueError(f"alarmEmail {email!r} is not an e-mail address")
        ints: dict[str, int] = {}
        for key, attr in (
            ("logRetentionDays", "log_retention_days"),
            ("predictionLogExpireDays", "prediction_log_expire_days"),
            ("retrainingSnapshotExpireDays", "retraining_snapshot_expire_days"),
            ("reportExpireDays", "report_expire_days"),
            ("accessLogExpireDays", "access_log_expire_days"),
            ("apiRateLimit", "api_rate_limit"),
            ("apiBurstLimit", "api_burst_limit"),
            ("championRefreshSeconds", "champion_refresh_seconds"),
        ):
            value = get(key)
            if value is not None:
                ints[attr] = int(value)
        config = cls(
            stage=stage,
            spec_path=spec_path,
            spec=load_spec(spec_path),
            alarm_email=str(email) if email else None,
            **ints,
        )
        config.validate()
        return config

    def validate(self) -> None:
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ValueError(f"logRetentionDays must be one of {LOG_RETENTION_DAYS}")
        # Retraining reads the production window back from the logs; expiring them sooner would
        # silently shrink what a run can learn from.
        window = self.spec.retraining.production_window_days
        if self.prediction_log_expire_days < window:
            raise ValueError(f"predictionLogExpireDays must cover the retraining window ({window} days)")
        # A day's roll-up is written again while labels reach it, its hours' counts only when they
        # change: the reports must outlive the longest window by a day, or a day object could be
        # read after its hours object expired (mlops.monitoring.rollup).
        if self.report_expire_days * 24 < MAX_WINDOW_HOURS + 24:
            raise ValueError(
                f"reportExpireDays must outlast the longest monitoring window by a day "
                f"({MAX_WINDOW_HOURS // 24 + 1} days at least)"
            )
        for key, days in (
            ("retrainingSnapshotExpireDays", self.retraining_snapshot_expire_days),
            ("reportExpireDays", self.report_expire_days),
            ("accessLogExpireDays", self.access_log_expire_days),
        ):
            if days < 1:
                raise ValueError(f"{key} must be a positive number of days")
        if self.api_rate_limit < 1:
            raise ValueError("apiRateLimit must be positive")
        if self.api_burst_limit < 1 or self.champion_refresh_seconds < 0:
            raise ValueError("apiBurstLimit must be positive and championRefreshSeconds not negative")
