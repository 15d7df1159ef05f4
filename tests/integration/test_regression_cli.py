"""`mlops train` with a regression spec on moto: a verified bundle whose profile, metrics and
parity are the regression ones; bad regression input exits with one line and registers nothing."""

from __future__ import annotations

import json

import pytest
from mlops.datagen.pricing import TARGET, generate_prices
from mlops.model import bundle
from mlops.regression.profile import read_regression_profile

from tests.integration.test_cli import run
from tests.unit.test_regression_spec import PRICING_SPEC


@pytest.fixture
def prices_csv(tmp_path):
    path = tmp_path / "prices.csv"
    generate_prices(1500, seed=7).to_csv(path, index=False)
    return path


def test_a_regression_model_is_trained_proven_and_registered_through_the_cli(aws_stack, capsys, prices_csv):
    code, out, _ = run(capsys, "train", "--spec", str(PRICING_SPEC), "--data", str(prices_csv), "--promote")
    assert code == 0
    trained = json.loads(out)
    assert trained["primary_metric"] == "rmse" and trained["promoted"]["to_version"] == 1
    assert 0 < trained["test_metrics"]["rmse"] < 20 and trained["test_metrics"]["r2"] > 0.8

    registry = aws_stack.registry("pricing")
    record = registry.get_version(1)
    bundle.verify_bundle(aws_stack.s3, aws_stack.artifact_bucket, record.artifacts)
    read = lambda name: bundle.read_artifact(aws_stack.s3, aws_stack.artifact_bucket, record.artifacts[name])  # noqa: E731
    parity = json.loads(read(bundle.PARITY))
    assert parity["passed"] and parity["tolerance"] == 0.001
    profile = read_regression_profile(read(bundle.PROFILE))
    assert profile.test_metrics == record.test_metrics
    assert record.reference_metric is not None and record.reference_metric["metric"] == "rmse"
    assert (
        record.reference_metric["ci_low"] < record.test_metrics["rmse"] < record.reference_metric["ci_high"]
    )
    assert json.loads(read(bundle.SPEC))["task"] == "regression"


def test_a_target_outside_the_range_exits_with_one_line_and_registers_nothing(aws_stack, capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    frame = generate_prices(400, seed=1)
    frame.loc[3, TARGET] = -12.5
    frame.to_csv(bad, index=False)
    code, out, err = run(capsys, "train", "--spec", str(PRICING_SPEC), "--data", str(bad))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "outside the spec's range [0.0, 100000.0], e.g. -12.5" in err
    assert aws_stack.registry("pricing").list_versions() == []


def test_a_regression_spec_with_a_classification_metric_exits_with_one_line(
    aws_stack, capsys, tmp_path, prices_csv
):
    spec = tmp_path / "spec.toml"
    spec.write_text(PRICING_SPEC.read_text().replace('primary_metric = "rmse"', 'primary_metric = "roc_auc"'))
    code, _, err = run(capsys, "train", "--spec", str(spec), "--data", str(prices_csv))
    assert code == 2 and err.count("\n") == 1
    assert "primary_metric 'roc_auc' is not a regression metric; use one of mae, r2, rmse" in err


def test_datagen_writes_pricing_data_that_trains_through_the_cli(aws_stack, capsys, tmp_path):
    path = tmp_path / "prices.csv"
    code, out, _ = run(capsys, "datagen", "--task", "regression", "--rows", "600", "--out", str(path))
    assert code == 0 and "wrote 600 rows" in out
    code, out, _ = run(capsys, "train", "--spec", str(PRICING_SPEC), "--data", str(path))
    assert code == 0 and json.loads(out)["primary_metric"] == "rmse"
