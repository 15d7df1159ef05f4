"""`mlops train` and `mlops registry` end to end on moto, and one-line errors for bad input."""

from __future__ import annotations

import json

import pytest
from mlops import bundle
from mlops.cli import main
from mlops.datagen import generate_churn
from mlops.lifecycle import TrainingData, load_training_data

from tests.conftest import DEMO_SPEC


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def churn_csv(tmp_path):
    path = tmp_path / "churn.csv"
    generate_churn(1500, seed=7).to_csv(path, index=False)
    return path


def test_train_registry_and_history_through_the_cli(aws_stack, capsys, churn_csv):
    code, out, _ = run(capsys, "train", "--spec", str(DEMO_SPEC), "--data", str(churn_csv), "--promote")
    assert code == 0
    trained = json.loads(out)
    assert trained["version"] == 1 and trained["promoted"]["to_version"] == 1
    assert trained["test_metrics"]["roc_auc"] > 0.7

    record = aws_stack.registry().get_version(1)
    bundle.verify_bundle(aws_stack.s3, aws_stack.artifact_bucket, record.artifacts)
    assert record.training_rows == 1500 and len(record.training_data_sha256 or "") == 64
    meta = bundle.read_json_artifact(
        aws_stack.s3, aws_stack.artifact_bucket, record.artifacts[bundle.METADATA]
    )
    snapshot = load_training_data(aws_stack.s3, TrainingData(**meta["training_data"]))
    assert len(snapshot) == 1500 and meta["original_data"] == meta["training_data"]

    assert run(capsys, "train", "--spec", str(DEMO_SPEC), "--data", str(churn_csv))[0] == 0
    code, out, _ = run(capsys, "registry", "list")
    listed = json.loads(out)
    assert [(v["version"], v["champion"]) for v in listed] == [(1, True), (2, False)]

    assert run(capsys, "registry", "promote", "2", "--reason", "better")[0] == 0
    code, out, _ = run(capsys, "registry", "show", "2")
    assert json.loads(out)["status"] == "promoted"
    code, out, _ = run(capsys, "registry", "rollback", "--reason", "worse in production")
    assert json.loads(out)["to_version"] == 1

    code, out, _ = run(capsys, "registry", "history")
    assert [h["to_version"] for h in json.loads(out)] == [1, 2, 1]
    code, out, _ = run(capsys, "registry", "history", "--at", "2000-01-01T00:00:00Z")
    assert json.loads(out)["version"] is None
    code, out, _ = run(capsys, "registry", "history", "--at", "2999-01-01T00:00:00Z")
    assert json.loads(out)["version"] == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--spec", "nope.toml", "--data", "x.csv"], "spec file not found"),
        (["train", "--spec", str(DEMO_SPEC), "--data", "missing.csv"], "data file not found"),
        (["registry", "show", "42"], "has no version 42"),
        (["registry", "rollback", "--reason", "x"], "no champion to roll back"),
        (["registry", "history", "--at", "yesterday"], "not an ISO 8601 time"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(aws_stack, capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_unusable_training_data_leaves_the_registry_empty(aws_stack, capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    generate_churn(300, seed=1).drop(columns=["churned"]).to_csv(bad, index=False)
    code, _, err = run(capsys, "train", "--spec", str(DEMO_SPEC), "--data", str(bad))
    assert code == 2 and "no target column 'churned'" in err
    assert aws_stack.registry().list_versions() == []


def test_missing_settings_are_named(capsys, monkeypatch):
    monkeypatch.delenv("MLOPS_REGISTRY_TABLE", raising=False)
    code, _, err = run(capsys, "registry", "list", "--model", "churn")
    assert code == 2 and "--table is required (or set MLOPS_REGISTRY_TABLE)" in err


def test_datagen_then_train_from_the_written_file(aws_stack, capsys, tmp_path):
    out = tmp_path / "data" / "churn.csv"
    code, printed, _ = run(capsys, "datagen", "--rows", "800", "--seed", "3", "--out", str(out))
    assert code == 0 and "wrote 800 rows" in printed
    assert run(capsys, "train", "--spec", str(DEMO_SPEC), "--data", str(out))[0] == 0
    code, _, err = run(capsys, "datagen", "--rows", "10", "--out", str(tmp_path / "x.txt"))
    assert code == 2 and "use a .csv or .parquet" in err
    code, _, err = run(capsys, "datagen", "--concept-shift", "3", "--out", str(out))
    assert code == 2 and "concept_shift must be within [0, 1]" in err


def test_retrain_through_the_cli_needs_a_champion(aws_stack, capsys):
    code, out, _ = run(capsys, "retrain", "--reason", "try")
    assert code == 1
    assert json.loads(out)["outcome"] == "failed" and "no champion" in json.loads(out)["detail"]


def test_a_person_pauses_and_resumes_retraining_through_the_cli(aws_stack, capsys):
    # Given no retraining condition yet
    code, out, _ = run(capsys, "retrain", "--status")
    assert code == 0 and json.loads(out) == {"state": "none"}
    # When a person pauses it, the pause is stored with who and why
    code, out, _ = run(capsys, "retrain", "--pause", "--reason", "feature pipeline under repair")
    paused = json.loads(out)
    assert code == 0 and paused["paused"] is True
    assert paused["paused_reason"] == "feature pipeline under repair" and paused["paused_by"].startswith(
        "cli:"
    )
    assert json.loads(run(capsys, "retrain", "--status")[1])["paused"] is True
    # Then resuming clears it
    code, out, _ = run(capsys, "retrain", "--resume")
    assert code == 0 and json.loads(out)["paused"] is False and json.loads(out)["paused_by"] is None
