"""Retraining from the code asset plus the ML requirements only (what its image holds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlops.datagen.churn import generate_churn

from tests.artifact.conftest import ReadOnlyArtifact, ServerStack
from tests.integration.serving_helpers import load_event
from tests.traffic import log_traffic


def test_alarm_retrains_and_promotes_a_better_model(
    artifact: ReadOnlyArtifact, server_stack: ServerStack
) -> None:
    # given two days of labelled traffic after the customers' behaviour changed
    stack = server_stack.stack
    registry = stack.registry()
    shifted = generate_churn(3000, seed=31, concept_shift=1.0)
    log_traffic(stack, registry, 1, shifted, datetime.now(UTC) - timedelta(days=2), timedelta(seconds=50))

    # when the retrain function built from the artifact receives the performance alarm
    with server_stack.run(artifact, "Retrain") as retrain:
        out = retrain.invoke(load_event("retrain/alarm_state_change.json"))

    # then it trained, passed the gate and promoted version 2
    assert out["outcome"] == "promoted", out["detail"]
    champion = registry.champion()
    assert champion is not None and champion.version == 2
