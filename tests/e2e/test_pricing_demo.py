"""The pricing model's whole life through the local stack's HTTP API (a shortened regression demo)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlops.cli import main
from mlops.local.pricing_demo import MIN_RECOVERED_SHARE, PricingDemoConfig, run_pricing_demo

pytestmark = pytest.mark.slow


def test_drift_alarm_retrain_promote_and_recover_a_pricing_model(tmp_path: Path) -> None:
    # Given quotes that change on day 2 (larger packages, a new price rule)
    cfg = PricingDemoConfig(days=4, shift_day=1, rows_per_slot=300, report_path=tmp_path / "report.html")
    # when the story plays on the local stack
    outcome = run_pricing_demo(cfg, progress=lambda _: None)
    # then the alarm fired, a retrained version serves, and it won back most of the error
    assert outcome.ok, outcome.failures
    assert outcome.alarm_fired and "MetricGap" in outcome.alarms
    assert outcome.promoted_version is not None and outcome.serving_version == outcome.promoted_version
    assert outcome.recovered_share is not None and outcome.recovered_share >= MIN_RECOVERED_SHARE
    assert outcome.champion_fresh_rmse is not None and outcome.v1_fresh_rmse is not None
    assert outcome.champion_fresh_rmse < outcome.v1_fresh_rmse / 2
    report = cfg.report_path.read_text(encoding="utf-8")
    assert "the story happened" in report
    assert "Residuals (true - predicted) of v1 on fresh quotes" in report
    assert f"Residuals (true - predicted) of v{outcome.serving_version} (champion)" in report
    assert "<svg" in report


def test_a_pricing_story_that_cannot_be_told_is_refused_with_one_line(capsys) -> None:
    code = main(["demo", "--task", "regression", "--days", "3", "--shift-day", "2"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and "--shift-day must be between 1 and 1" in err
