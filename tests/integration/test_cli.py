"""`mlops train` and `mlops registry` end to end on moto, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from mlops.cli import main
from mlops.cloud import aws
from mlops.datagen.churn import generate_churn
from mlops.model import bundle
from mlops.model.registration import TrainingData, load_training_data

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


def test_every_missing_setting_is_named_in_one_message(capsys, monkeypatch):
    for var in ("MLOPS_MODEL_NAME", "MLOPS_REGISTRY_TABLE", "MLOPS_LOG_BUCKET", "MLOPS_REPORT_BUCKET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLOPS_ARTIFACT_BUCKET", "artifacts")
    code, out, err = run(capsys, "monitor", "run")
    assert code == 2 and out == "" and err.count("\n") == 1
    for flag in ("--model", "--table", "--log-bucket", "--report-bucket"):
        assert f"{flag} is required" in err
    assert "--bucket is required" not in err


def test_help_loads_no_heavy_library():
    """`mlops --help` and each command's help must not import what only running a command needs."""
    heavy = ("sklearn", "pandas", "numpy", "scipy", "boto3", "onnxruntime", "skl2onnx", "pydantic")
    commands = [[], ["demo"], ["local", "up"], ["datagen"], ["train"], ["registry", "show"]]
    commands += [["monitor", "run"], ["retrain"], ["reports", "list"], ["reports", "open"]]
    commands += [["local", "traffic"], ["logs", "replay"]]
    probe = (
        "import sys, contextlib, io\n"
        "from mlops.cli import main\n"
        f"for argv in {commands!r}:\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main([*argv, '--help'])\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_logs_go_to_stderr_so_stdout_is_only_json(aws_stack, champion, capsys):
    from mlops.shared.observability import logger

    # Given the shared logger at INFO (a local stack started earlier in this process quiets it),
    before = logger.log_level
    logger.setLevel("INFO")
    try:
        code, out, err = run(capsys, "monitor", "run", "--window", "2h")
    finally:
        logger.setLevel(before)
    assert code == 0
    summary = json.loads(out)  # nothing but the result on stdout
    assert summary["champion"] == champion.version
    assert '"level"' in err  # the run's structured log lines went to stderr


def test_a_version_that_does_not_exist_is_an_error(aws_stack, champion, capsys):
    code, out, err = run(capsys, "monitor", "run", "--version", "99")
    assert code == 2 and out == "" and "has no version 99" in err


def test_registry_show_lists_what_the_admin_api_shows(aws_stack, champion, capsys):
    code, out, _ = run(capsys, "registry", "show", "1")
    shown = json.loads(out)
    assert code == 0 and shown["version"] == 1
    assert {"lineage", "served", "production", "reports"} <= shown.keys()
    assert shown["served"][0]["to"] is None and shown["lineage"]["training_data"]


def test_missing_credentials_point_to_the_local_stack(capsys, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    aws.reset_clients()
    try:
        code, _, err = run(capsys, "registry", "list", "--table", "t", "--model", "m")
    finally:
        aws.reset_clients()
    assert code == 2 and "use --endpoint-url for a local stack" in err


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


def test_retrain_exit_status_tells_rejected_and_skipped_apart(aws_stack, champion, capsys):
    # Given a champion and no labelled production traffic, the gate cannot pass a candidate.
    code, out, _ = run(capsys, "retrain", "--reason", "first try")
    assert json.loads(out)["outcome"] in ("rejected", "failed") and code == 1
    # When asked again inside the cooldown, nothing runs: a distinct status, so a script waits.
    code, out, _ = run(capsys, "retrain", "--reason", "again")
    assert json.loads(out)["outcome"] == "skipped" and code == 3


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


def test_a_monitor_run_another_run_holds_the_lease_of_exits_non_zero_naming_it(aws_stack, champion, capsys):
    from mlops.monitoring.lease import take_lease
    from mlops.shared.resources import REPORT_BUCKET

    # Given a run in progress (it holds the model's lease),
    assert take_lease(aws_stack.s3, aws_stack.env[REPORT_BUCKET.env_var], "scheduled-run") is None
    # when a person runs the monitor, then it exits 1 saying which run holds it, and ran nothing.
    code, out, err = run(capsys, "monitor", "run", "--window", "2h")
    assert code == 1 and "skipped" in err and "scheduled-run" in err
    assert json.loads(out)["outcome"] == "skipped"
