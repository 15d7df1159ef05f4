"""The reference profile of a regression version: what monitoring compares production against.

Stored as the bundle's profile artifact like the classification profile, told apart by ``task``.
Histograms are on quantile edges of the held-out rows, so windows profiled on the same
edges merge exactly (see `mlops.monitoring.profile`).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from mlops.monitoring.profile import PROFILE_FORMAT, DatasetProfile, NumericHistogram
from mlops.regression.estimation import LossModel
from mlops.regression.metrics import MetricInterval
from mlops.shared.errors import UnsupportedProfileFormat


class RegressionProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    format: int = PROFILE_FORMAT
    task: Literal["regression"] = "regression"
    features: DatasetProfile
    # On the held-out rows: what the model predicted, what was true, and true - predicted.
    predictions: NumericHistogram
    targets: NumericHistogram
    residuals: NumericHistogram
    # The training rows' target: what target drift in feedback is measured against.
    training_targets: NumericHistogram
    test_metrics: dict[str, float | None]
    seen_categories: dict[str, list[str]]
    reference_metric: MetricInterval
    # Label-free estimation: the loss model fitted on the held-out rows.
    loss_model: LossModel


def read_regression_profile(data: bytes | str, source: str = "reference profile") -> RegressionProfile:
    try:
        raw = json.loads(data)
    except json.JSONDecodeError as err:
        raise UnsupportedProfileFormat(f"{source}: not JSON ({err})") from None
    if not isinstance(raw, dict) or raw.get("task") != "regression" or raw.get("format") != PROFILE_FORMAT:
        raise UnsupportedProfileFormat(
            f"{source}: not a format {PROFILE_FORMAT} regression profile; "
            "register the model again (mlops train)"
        )
    try:
        return RegressionProfile.model_validate(raw)
    except ValidationError as err:
        raise UnsupportedProfileFormat(f"{source}: invalid regression profile: {err}") from None
