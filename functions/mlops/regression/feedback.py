"""Feedback on a regression model: the label is the true number, within the spec's target range.

The feedback function learns the task and the range from its environment, which the stack (and
the local runtime) derive from the spec by `task_environment`: one source of truth.
"""

from __future__ import annotations

import math
from typing import Any

from mlops.model.spec import ModelSpec, Task

FEEDBACK_LABEL_ENV = "MLOPS_FEEDBACK_LABEL"
TARGET_MIN_ENV = "MLOPS_TARGET_MIN"
TARGET_MAX_ENV = "MLOPS_TARGET_MAX"
BINARY = "binary"
NUMBER = "number"


def task_environment(spec: ModelSpec) -> dict[str, str]:
    """The variables that tell the feedback function what a label of this model is."""
    if spec.task is not Task.REGRESSION:
        return {}
    settings = spec.regression_settings
    env = {FEEDBACK_LABEL_ENV: NUMBER}
    if settings.target_min is not None:
        env[TARGET_MIN_ENV] = repr(settings.target_min)
    if settings.target_max is not None:
        env[TARGET_MAX_ENV] = repr(settings.target_max)
    return env


class NumericLabel:
    """Checks a regression label: a finite JSON number within [low, high] where those are set."""

    def __init__(self, low: float | None, high: float | None) -> None:
        self.low, self.high = low, high

    def __call__(self, label: Any) -> str | None:
        if type(label) not in (int, float) or not math.isfinite(label):
            return "expected a number (the true value)"
        if self.low is not None and label < self.low:
            return f"{label!r} is below the target's minimum {self.low!r}"
        if self.high is not None and label > self.high:
            return f"{label!r} is above the target's maximum {self.high!r}"
        return None
