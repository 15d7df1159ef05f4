"""The monitor from the code asset plus the ML requirements only (what its image holds)."""

from __future__ import annotations

from datetime import timedelta

from mlops.model.training import TrainingResult

from tests.artifact.conftest import ReadOnlyArtifact, ServerStack
from tests.integration.test_monitor_handler import (
    EVENTS_TIME,
    give_feedback,
    log_window,
    metric,
    scheduled_event,
)


def test_monitor_turns_logs_and_labels_into_metrics(
    artifact: ReadOnlyArtifact, server_stack: ServerStack, trained: TrainingResult
) -> None:
    # given a day of champion traffic with labels for 300 of 500 predictions
    stack = server_stack.stack
    ids, y = log_window(stack, trained, 1, 500, seed=21)
    give_feedback(stack, ids[:300], y[:300], EVENTS_TIME - timedelta(hours=1))

    # when the monitor built from the artifact runs on the scheduled event
    with server_stack.run(artifact, "Monitor") as monitor:
        summary = monitor.invoke(scheduled_event())

    # then the counts reach CloudWatch and the report names the window's day
    (version,) = summary["versions"]
    assert version["report_key"].startswith("reports/model_version=1/dt=2026-11-20/")
    assert metric(stack, "PredictionCount", {"ModelName": "churn"}) == [500.0]
    assert metric(stack, "LabelCount", {"ModelName": "churn", "ModelVersion": "1"}) == [300.0]
    assert metric(stack, "MonitorHeartbeat", {"ModelName": "churn"}) == [1.0]
