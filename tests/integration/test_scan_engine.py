"""The hour profile in SQL (DuckDB over the logged objects) equals the Python reader's, and the monitor
hands an hour to SQL by its size alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import sqlglot
from mlops.cloud.logstore import (
    FeedbackRecord,
    feedback_key,
    feedback_objects_between,
    prediction_prefix,
    unique_predictions_sql,
    write_feedback,
)
from mlops.cloud.registry import VersionRecord
from mlops.cloud.storage import iso, list_objects, parse_time, read_jsonl_gz
from mlops.handlers import monitor
from mlops.model.training import TrainingResult
from mlops.monitoring.engine import duckdb_hour_engine, hour_profile_sql, hour_rows_sql, label_join_sql
from mlops.monitoring.labels import Label
from mlops.monitoring.partials import python_hour_profile
from mlops.monitoring.rollup import HourLabels, sql_labels
from mlops.monitoring.run import load_reference
from mlops.shared.resources import LOG_BUCKET, SCAN_ENGINE_ENV, SCAN_ENGINE_MIN_BYTES_ENV
from sqlglot import exp

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


def test_the_sql_label_join_equals_the_python_join(
    aws_stack: AwsStack, champion: VersionRecord, trained: TrainingResult
) -> None:
    # Given an hour of traffic with two predictions delivered again in a later object,
    traffic = Traffic(aws_stack, trained, seed=13)
    hour = END - timedelta(hours=2)
    records = traffic.hour(hour, n=120, objects=2)
    traffic.write(records[:2], hour)
    other_hour = traffic.hour(hour + timedelta(hours=1), n=20, objects=1)
    # and feedback: explicit labels for a third, implicit ones (some disagreeing) for a fifth, labels
    # of another hour's predictions and of ids never logged, and labels that arrived before the range,
    received_from, until = hour + timedelta(minutes=30), END + timedelta(hours=1)
    traffic.label(records[::3], hour + timedelta(minutes=45))
    implicit = [
        FeedbackRecord(
            prediction_id=r.prediction_id,
            label=1 - traffic.truth[r.prediction_id] if i % 2 else traffic.truth[r.prediction_id],
            source="implicit",
            observed_at=iso(END),
            received_at=iso(END + timedelta(minutes=5)),
        )
        for i, r in enumerate(records[::5])
    ]
    bucket = aws_stack.env[LOG_BUCKET.env_var]
    write_feedback(aws_stack.s3, bucket, feedback_key(END + timedelta(minutes=5), ["implicit"]), implicit)
    traffic.label(other_hour, END)
    ghosts = [r.model_copy(update={"prediction_id": f"ghost-{i}"}) for i, r in enumerate(records[:3])]
    traffic.truth.update({g.prediction_id: 1 for g in ghosts})
    traffic.label(ghosts, END)
    traffic.label(records[1::3], hour + timedelta(minutes=10))  # before the range: not joined
    monitor.settings.cache_clear()
    reference, covers = _hour_inputs(aws_stack, hour)
    spec = trained.spec
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
    in_range = [
        fb
        for key, _, _ in feedback_objects_between(aws_stack.s3, bucket, received_from, until)
        for fb in (
            FeedbackRecord.model_validate(r)
            for r in read_jsonl_gz(aws_stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        )
    ]
    by_id: dict[str, list[Label]] = {}
    for label in (Label.of(fb) for fb in in_range):
        by_id.setdefault(label.prediction_id, []).append(label)

    # when the hour is joined to the feedback of the range in SQL (DuckDB) and in Python, whole and cut,
    for lo, hi in ((None, None), (None, iso(hour + timedelta(minutes=30)))):
        _, rows_python = python_hour_profile(*args, lo, hi)
        python_join = HourLabels()
        python_join.join(rows_python, by_id)
        _, rows_sql = duckdb_hour_engine(spec, (received_from, until))(*args, lo, hi)
        assert rows_sql.joined is not None
        sql_join = HourLabels()
        sql_join.join(rows_sql, sql_labels(rows_sql.joined))

        # then both give every row the same feedback records and so the same label,
        def by_prediction(join: HourLabels, rows: Any) -> dict[str, set[Label]]:
            return {rows.prediction_ids[i]: set(held) for i, held in join.records.items()}

        assert by_prediction(sql_join, rows_sql) == by_prediction(python_join, rows_python)
        # which are the labels of the hour's logged predictions from the range only (counted apart):
        inside = {r.prediction_id for r in records if hi is None or iso(parse_time(r.timestamp)) < hi}
        explicit = {r.prediction_id for r in records[::3]} & inside
        implicit_ids = {r.prediction_id for r in records[::5]} & inside
        assert set(by_prediction(sql_join, rows_sql)) == explicit | implicit_ids
        assert sum(len(held) for held in sql_join.records.values()) == len(explicit) + len(implicit_ids)
        holding = sql_join.holding()
        for i, label in holding.items():
            pid = rows_sql.prediction_ids[i]
            # explicit feedback holds over implicit; an implicit label holds only where it is alone
            if pid in explicit:
                assert (label.rank[0], label.label) == (1, traffic.truth[pid])
            else:
                assert label.rank[0] == 0


def _reads(sql: str, relation: str) -> int:
    """How many times Trino (Athena's engine) reads `relation` to answer `sql`: once per reference,
    a WITH query's tables once per reference to the WITH query (Trino inlines it)."""
    tree = sqlglot.parse_one(sql, read="trino")
    wanted = sqlglot.parse_one(f"SELECT * FROM {relation}", read="trino").find(exp.Table)
    assert wanted is not None
    ctes = {cte.alias: cte.this for cte in tree.find_all(exp.CTE)}
    outside = [t for t in tree.find_all(exp.Table) if t.find_ancestor(exp.CTE) is None]

    def count(table: exp.Table) -> int:
        if table.name in ctes:
            return sum(count(t) for t in ctes[table.name].find_all(exp.Table))
        return 1 if (table.db, table.name) == (wanted.db, wanted.name) else 0

    return sum(count(t) for t in outside)


def test_the_sql_is_one_text_that_trino_reads_and_that_reads_the_hour_twice_at_most(
    champion: VersionRecord, trained: TrainingResult
) -> None:
    # Given the reference profile, when the SQL of one hour is written for a relation,
    relation = '"db"."predictions_unique"'
    sql = hour_profile_sql(trained.spec, trained.profile, relation, 1, END)
    # then it uses no engine-specific spelling: exponent double literals, standard aggregates,
    assert "predictions_unique" in sql and "hour = 12" in sql and "dt = '2026-11-20'" in sql
    for dialect_only in ("::", "infinity", "width_bucket", "QUALIFY", "EXCLUDE"):
        assert dialect_only not in sql
    # it is Trino's SQL, and it reads the hour twice whatever the number of features (Athena bills
    # each read: a query per histogram read it once per histogram),
    features = len(trained.profile.features.numeric) + len(trained.profile.features.categorical)
    assert features > 10
    assert _reads(sql, relation) == 2
    # and so are the queries of the hour's rows and of its label join (one read of the hour each).
    assert _reads(hour_rows_sql(trained.spec, relation, 1, END, None, None), relation) == 1
    join = label_join_sql(relation, '"db"."feedback"', 1, END, None, None, END, END + timedelta(hours=1))
    assert _reads(join, relation) == 1 and _reads(join, '"db"."feedback"') == 1
    assert _reads(unique_predictions_sql(trained.spec, '"db"."predictions"'), '"db"."predictions"') == 1


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
