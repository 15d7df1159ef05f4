"""The hour profile in SQL (DuckDB over the logged objects) equals the Python reader's, and the monitor
hands an hour to SQL by its size alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from mlops.handlers import monitor
from mlops.logstore import prediction_prefix
from mlops.monitoring.engine import duckdb_hour_engine, hour_profile_sql
from mlops.monitoring.partials import python_hour_profile
from mlops.monitoring.run import load_reference
from mlops.registry import VersionRecord
from mlops.resources import LOG_BUCKET, SCAN_ENGINE_ENV, SCAN_ENGINE_MIN_BYTES_ENV
from mlops.storage import list_objects
from mlops.training import TrainingResult

from tests.conftest import AwsStack
from tests.integration.test_incremental_monitor import (
    END,
    Traffic,
    assert_close,
    run,
    stored_report,
)


def _hour_inputs(stack: AwsStack, hour: Any) -> tuple[Any, list[tuple[str, str]]]:
    settings = monitor.settings()
    reference = load_reference(stack.registry(), stack.s3, settings.artifact_bucket, 1)
    listed = list_objects(stack.s3, stack.env[LOG_BUCKET.env_var], prediction_prefix(1, hour))
    return reference, [(k, e) for k, e, _ in listed]


def test_the_sql_hour_profile_equals_the_python_profile(
    aws_stack: AwsStack, champion: VersionRecord, trained: TrainingResult
) -> None:
    # Given an hour of traffic in three objects, with missing values in a numeric and a categorical
    # feature, and two predictions SQS delivered again in a later object,
    traffic = Traffic(aws_stack, trained, seed=11)
    hour = END - timedelta(hours=1)
    records = traffic.hour(hour, n=400, objects=3)
    spec = trained.spec
    num, cat = spec.numeric_features[0], spec.categorical_features[0]
    holes = [
        r.model_copy(update={"prediction_id": f"hole-{i}", "features": {**r.features, num: None, cat: None}})
        for i, r in enumerate(records[:5])
    ]
    traffic.write(holes, hour)
    traffic.write(records[10:12], hour)
    monitor.settings.cache_clear()
    reference, covers = _hour_inputs(aws_stack, hour)
    bucket = aws_stack.env[LOG_BUCKET.env_var]
    args = (
        aws_stack.s3,
        bucket,
        reference.profile,
        spec.sensitive_attributes,
        spec.numeric_features,
        spec.categorical_features,
        1,
        hour,
        covers,
    )

    # when the hour is profiled by the Python reader and by SQL in DuckDB, whole and cut by a window,
    for lo, hi in ((None, None), (None, (hour + timedelta(minutes=37)).isoformat().replace("+00:00", "Z"))):
        from_python, rows_python = python_hour_profile(*args, lo, hi)
        from_sql, rows_sql = duckdb_hour_engine(spec)(*args, lo, hi)

        # then every count is the same and every sum equal to rounding,
        want = from_python.model_dump(mode="json", exclude={"engine"})
        assert_close(from_sql.model_dump(mode="json", exclude={"engine"}), want)
        assert from_python.rows == len(rows_python.prediction_ids) == len(set(rows_python.prediction_ids))
        # and the label join sees the same predictions with the same probabilities and groups.
        python_rows = {
            pid: (p, *(rows_python.groups[a][i] for a in spec.sensitive_attributes))
            for i, (pid, p) in enumerate(
                zip(rows_python.prediction_ids, rows_python.probability, strict=True)
            )
        }
        sql_rows = {
            pid: (p, *(rows_sql.groups[a][i] for a in spec.sensitive_attributes))
            for i, (pid, p) in enumerate(zip(rows_sql.prediction_ids, rows_sql.probability, strict=True))
        }
        assert sql_rows == python_rows
    # The whole hour counts each prediction once: 405, the redelivered two not again.
    whole, _ = python_hour_profile(*args, None, None)
    assert whole.rows == 405
    assert whole.features.numeric[num].missing == 5 and whole.features.categorical[cat].missing == 5


def test_the_profile_sql_is_one_text_for_both_engines(
    champion: VersionRecord, trained: TrainingResult
) -> None:
    # Given the reference profile, when the SQL of one hour is written for a relation,
    sql = hour_profile_sql(trained.spec, trained.profile, '"db"."predictions_unique"', 1, END)
    # then it uses no engine-specific spelling: exponent double literals, standard aggregates.
    assert "predictions_unique" in sql and "hour = 12" in sql and "dt = '2026-11-20'" in sql
    for dialect_only in ("::", "infinity", "width_bucket", "QUALIFY", "EXCLUDE"):
        assert dialect_only not in sql


@pytest.mark.parametrize(("min_bytes", "engine"), [(10**12, "python"), (0, "duckdb")])
def test_the_monitor_hands_big_hours_to_sql_by_configuration(
    aws_stack: AwsStack,
    champion: VersionRecord,
    trained: TrainingResult,
    monkeypatch: pytest.MonkeyPatch,
    min_bytes: int,
    engine: str,
) -> None:
    # Given a day of traffic with labels, and the SQL engine configured above a size threshold,
    traffic = Traffic(aws_stack, trained, seed=13)
    start = END - timedelta(hours=24)
    hours = [traffic.hour(start + timedelta(hours=h), n=40) for h in range(24)]
    traffic.label([r for h in hours for r in h[::2]], END - timedelta(minutes=1))
    monkeypatch.setenv(SCAN_ENGINE_ENV, "duckdb")
    monkeypatch.setenv(SCAN_ENGINE_MIN_BYTES_ENV, str(min_bytes))

    # when the scheduled run profiles the window,
    summary = run(END)

    # then the hours went to the engine the threshold names, and the figures do not depend on it.
    assert summary["reads"]["engines"] == {engine: 24}
    report = stored_report(aws_stack, summary)
    monkeypatch.setenv(SCAN_ENGINE_ENV, "python")
    bucket = aws_stack.env["MLOPS_REPORT_BUCKET"]
    for key, _, _ in list(list_objects(aws_stack.s3, bucket, "reports/partials/")):
        aws_stack.s3.delete_object(Bucket=bucket, Key=key)
    python_report = stored_report(aws_stack, run(END))
    for field in ("prediction_count", "drift", "prediction_drift", "fairness"):
        assert_close(report[field], python_report[field], field)
    assert report["performance"]["metrics"] == pytest.approx(python_report["performance"]["metrics"])
    labelled = [r for h in hours for r in h[::2]]
    assert report["labels"]["label_count"] == len(labelled)
    assert np.isfinite(report["performance"]["metrics"]["roc_auc"])
