"""A stage for a regression model: its label-free alarms watch the series the regression monitor publishes."""

from __future__ import annotations

import pytest
from mlops.shared.alarm_specs import DIM_MODEL, NAMESPACE, Metric

from infrastructure.lambdas import ROOT
from tests.infrastructure.synth_support import Synthesised, synthesise
from tests.infrastructure.test_model_wiring import alarms_by_name, assert_alarms_match_specs

PRICING_SPEC = ROOT / "functions" / "mlops" / "examples" / "pricing" / "spec.toml"


@pytest.fixture(scope="module")
def pricing_stage(tmp_path_factory: pytest.TempPathFactory) -> Synthesised:
    return synthesise(
        tmp_path_factory.mktemp("pricing-stage"), {"stage": "pricing", "spec": str(PRICING_SPEC)}
    )


def test_a_regression_stage_alarms_on_concept_shift_and_the_estimated_gap(pricing_stage: Synthesised) -> None:
    # Given the stack synthesised from the pricing (regression) spec
    config = pricing_stage.stack.config
    assert config.spec.task.value == "regression"
    # Then every model alarm follows its spec, the label-free ones included, on the champion's series
    assert_alarms_match_specs(pricing_stage)
    alarms = alarms_by_name(pricing_stage)
    for name, metric in (
        ("ConceptShiftSuspected", Metric.CONCEPT_SHIFT_SUSPECTED),
        ("EstimatedMetricGap", Metric.ESTIMATED_GAP_RATIO),
    ):
        alarm = alarms[f"{config.prefix}-{config.model_name}-{name}"]
        assert alarm["Namespace"] == NAMESPACE and alarm["MetricName"] == metric.value
        assert alarm["Dimensions"] == [{"Name": DIM_MODEL, "Value": "pricing"}]
