"""Function environments derived from the settings classes in `mlops.shared.settings`, never listed twice."""

from __future__ import annotations

from collections.abc import Mapping

from mlops.shared import settings
from mlops.shared.observability import SERVICE
from mlops.shared.resources import (
    METRICS_NAMESPACE,
    MODEL_NAME_ENV,
)
from mlops.shared.settings import EnvironmentSettings

# Which settings class each function validates at cold start.
SETTINGS: dict[str, type[EnvironmentSettings] | tuple[str, ...]] = {
    "Predict": settings.ServingSettings,
    "Feedback": settings.FeedbackSettings,
    "LogWriter": settings.LogWriterSettings,
    "Monitor": settings.MonitorSettings,
    "Retrain": settings.RetrainSettings,
    "Admin": settings.AdminSettings,
}


def required_and_optional(function_key: str) -> tuple[list[str], list[str]]:
    """The env vars a function's settings require, and those it can do without."""
    source = SETTINGS[function_key]
    if isinstance(source, tuple):
        return list(source), []
    required: list[str] = []
    optional: list[str] = []
    for field in source.model_fields.values():
        alias = field.validation_alias
        if not isinstance(alias, str):
            continue
        (required if field.is_required() else optional).append(alias)
    return required, optional


def function_environment(function_key: str, model_name: str, values: Mapping[str, str]) -> dict[str, str]:
    """Every variable the function reads that the stack can supply; fails at synth if one is missing.

    `values` maps env var names to their values (resource names, URLs, ARNs, tunables).
    """
    required, optional = required_and_optional(function_key)
    supplied = {MODEL_NAME_ENV: model_name, **values}
    missing = [name for name in required if name not in supplied]
    if missing:
        raise ValueError(f"{function_key}: the stack does not supply {', '.join(missing)}")
    env = {name: supplied[name] for name in (*required, *optional) if name in supplied}
    env["POWERTOOLS_SERVICE_NAME"] = SERVICE
    env["POWERTOOLS_METRICS_NAMESPACE"] = METRICS_NAMESPACE
    return env
