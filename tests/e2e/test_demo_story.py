"""The whole life of a model through the local stack's HTTP API (a shortened demo)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlops.cli.local import DEMO_SPEC
from mlops.cloud import aws
from mlops.local.demo import Api, DemoConfig, run_demo
from mlops.local.stack import LocalStack

pytestmark = pytest.mark.slow


def test_drift_alarm_retrain_promote_and_recover(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def inspect(stack: LocalStack) -> None:
        assert stack.gateway is not None
        api = Api(stack.gateway.url)
        status, body = api.call("POST", "/predict", {"features": _row()})
        seen["predict"] = (status, body)
        seen["model"] = api.call("GET", "/model")
        s3 = aws.client("s3")
        logs = s3.list_objects_v2(Bucket=stack.env["MLOPS_LOG_BUCKET"], Prefix="predictions/")
        seen["log_keys"] = [o["Key"] for o in logs.get("Contents", [])]
        feedback = s3.list_objects_v2(Bucket=stack.env["MLOPS_LOG_BUCKET"], Prefix="feedback/")
        seen["feedback_keys"] = [o["Key"] for o in feedback.get("Contents", [])]
        reports = s3.list_objects_v2(Bucket=stack.env["MLOPS_REPORT_BUCKET"], Prefix="reports/")
        seen["report_keys"] = [o["Key"] for o in reports.get("Contents", [])]
        seen["transitions"] = [(t.alarm_name, t.new.value) for t in stack.events.transitions]

    cfg = DemoConfig(
        spec_path=DEMO_SPEC, days=5, shift_day=2, rows_per_slot=400, report_path=tmp_path / "demo-report.html"
    )
    outcome = run_demo(cfg, progress=lambda line: None, inspect=inspect)

    assert outcome.ok, outcome.failures
    assert outcome.alarm_fired and outcome.promoted_version == 2
    assert ("demo-churn-MetricGap", "ALARM") in seen["transitions"]
    # Recovery is judged against a refit on ample traffic of the new world, not the new version's own bar.
    assert outcome.recovery is not None and outcome.recovery.oracle_gap <= 0.05
    serving = outcome.serving_version
    assert serving is not None and serving >= 2
    status, body = seen["predict"]
    assert status == 200 and body["model_version"] == serving
    assert seen["model"][1]["model_version"] == serving
    assert any("model_version=1/" in k for k in seen["log_keys"])
    assert any("model_version=2/" in k for k in seen["log_keys"])
    assert seen["feedback_keys"] and any(k.endswith("report.html") for k in seen["report_keys"])
    html = cfg.report_path.read_text()
    assert "<svg" in html and "MetricGap" in html and "beats_champion" in html and "oracle" in html


def test_a_covariate_shift_alone_is_a_quiet_run_and_the_demo_exits_zero(tmp_path: Path) -> None:
    # Given customers who change but leave for the same reasons (no concept shift); a process of its
    # own, since the stand-in's state lives in the process
    report = tmp_path / "quiet.html"
    argv = ["demo", "--days", "3", "--shift-day", "1", "--concept-shift", "0", "--out", str(report)]
    # When the demo plays it
    done = subprocess.run(
        [sys.executable, "-c", f"from mlops.cli import main; raise SystemExit(main({argv!r}))"],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    # Then nothing about performance fired, nothing was retrained, and it says so with exit code 0
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "kept quiet" in done.stdout and "oracle refit" in done.stdout
    html = report.read_text()
    assert "kept quiet" in html and "oracle" in html


def _row() -> dict[str, Any]:
    from mlops.datagen.churn import generate_churn
    from mlops.model.training import frame_rows

    frame = generate_churn(1, seed=99)
    features = [c for c in frame.columns if c not in ("customer_id", "churned")]
    return json.loads(json.dumps(frame_rows(frame[features])[0]))
