"""Each function's integration path on moto, every AWS call authorized against its deployed role.

Set-up (training, registering, logging traffic) is done by the test as an administrator; only the
handler call runs inside `iam.acting_as(<function>)`. A refused call fails the test with the
action and the resource, whether or not the function caught the error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from mlops.cloud.logstore import LATE_PREFIX, latest_report_key
from mlops.cloud.registry import VersionRecord
from mlops.cloud.storage import iso, list_keys
from mlops.datagen.churn import generate_churn
from mlops.handlers import admin as admin_handler
from mlops.handlers import feedback as feedback_handler
from mlops.handlers import log_writer as log_writer_handler
from mlops.handlers import monitor as monitor_handler
from mlops.handlers import predict as predict_handler
from mlops.handlers import retrain as retrain_handler
from mlops.monitoring.engine import duckdb_feedback, duckdb_predictions
from mlops.shared.alarm_specs import DIM_MODEL, NAMESPACE, Metric
from mlops.shared.resources import (
    ATHENA_WORKGROUP_ENV,
    GLUE_DATABASE_ENV,
    LOG_BUCKET,
    REPORT_BUCKET,
    SCAN_ENGINE_ENV,
    SCAN_ENGINE_MIN_BYTES_ENV,
)

from tests.conftest import AwsStack, register_and_promote
from tests.iam.conftest import create_retrain_function
from tests.iam.enforcement import IamEnforcer
from tests.iam.policy import authorizations
from tests.integration.serving_helpers import (
    CONTEXT,
    drain_queue,
    load_event,
    response_json,
    scheduled,
    sqs_event_from,
)
from tests.traffic import log_traffic


def _answer(response: dict[str, Any]) -> tuple[int, Any]:
    return response["statusCode"], response_json(response)


def test_predict_answers_and_queues_its_log_as_the_predict_role(
    iam: IamEnforcer, aws_stack: AwsStack, champion: VersionRecord
) -> None:
    report_bucket = aws_stack.env[REPORT_BUCKET.env_var]
    predict_handler.use_runtime(None)  # a fresh container: settings, clients and champion load
    try:
        with iam.acting_as("Predict"):
            status, body = _answer(predict_handler.handler(load_event("predict_single.json"), CONTEXT))
            # Before the monitor's first run there is no summary: a 404 to the role, not a 403.
            _, before = _answer(predict_handler.handler(load_event("model_get.json"), CONTEXT))
        aws_stack.s3.put_object(
            Bucket=report_bucket, Key=latest_report_key(1), Body=json.dumps({"metric_gap": 0.01}).encode()
        )
        with iam.acting_as("Predict"):
            model_status, model = _answer(predict_handler.handler(load_event("model_get.json"), CONTEXT))
    finally:
        predict_handler.use_runtime(None)

    assert status == 200 and body["model_version"] == 1
    assert before["model_version"] == 1 and before["production"] is None
    assert model_status == 200 and model["production"] == {"metric_gap": 0.01}
    queued = [json.loads(m["Body"]) for m in drain_queue(aws_stack)]
    assert [q["prediction_id"] for q in queued] == [[p["prediction_id"] for p in body["predictions"]]]


def test_feedback_is_queued_as_the_feedback_role_and_written_as_the_log_writer_role(
    iam: IamEnforcer, aws_stack: AwsStack
) -> None:
    feedback_handler.settings.cache_clear()
    log_writer_handler.settings.cache_clear()
    event = load_event("feedback_single.json")
    try:
        with iam.acting_as("Feedback"):
            first, _ = _answer(feedback_handler.handler(event, CONTEXT))
            second, _ = _answer(feedback_handler.handler(event, CONTEXT))
        messages = drain_queue(aws_stack)
        with iam.acting_as("LogWriter"):
            answer = log_writer_handler.handler(sqs_event_from(messages), CONTEXT)
    finally:
        feedback_handler.settings.cache_clear()
        log_writer_handler.settings.cache_clear()

    assert (first, second) == (200, 200)
    assert (len(messages), answer) == (1, {"batchItemFailures": []})
    keys = list(list_keys(aws_stack.s3, aws_stack.env[LOG_BUCKET.env_var], "feedback/"))
    assert len(keys) == 1


def test_log_writer_writes_a_batch_as_the_log_writer_role(iam: IamEnforcer, aws_stack: AwsStack) -> None:
    log_writer_handler.settings.cache_clear()
    try:
        with iam.acting_as("LogWriter"):
            answer = log_writer_handler.handler(load_event("log_writer_batch.json"), CONTEXT)
    finally:
        log_writer_handler.settings.cache_clear()

    assert answer == {"batchItemFailures": []}
    assert len(list(list_keys(aws_stack.s3, aws_stack.env[LOG_BUCKET.env_var], "predictions/"))) == 2
    # The sample batch is of hours long past: each object is late, and its marker was written first.
    assert len(list(list_keys(aws_stack.s3, aws_stack.env[LOG_BUCKET.env_var], LATE_PREFIX))) == 2


def test_admin_routes_and_the_retrain_request_as_the_admin_role(
    iam: IamEnforcer, aws_stack: AwsStack, trained: Any, churn_data: Any
) -> None:
    register_and_promote(aws_stack, trained, churn_data)
    register_and_promote(aws_stack, trained, churn_data, reason="second")
    create_retrain_function(aws_stack)
    report_bucket = aws_stack.env[REPORT_BUCKET.env_var]
    aws_stack.s3.put_object(
        Bucket=report_bucket, Key="reports/model_version=1/dt=2026-11-20/run=r1/report.json", Body=b"{}"
    )
    admin_handler.settings.cache_clear()
    admin_handler.use_retrain_dispatch(None)  # the real asynchronous invoke of the retrain function
    try:
        with iam.acting_as("Admin"):
            answers = {
                name: _answer(admin_handler.handler(load_event(name), CONTEXT))
                for name in (
                    "admin_list_models.json",
                    "admin_show_model.json",
                    "admin_rollback.json",
                    "admin_promote.json",
                    "admin_history.json",
                    "admin_retrain.json",
                )
            }
    finally:
        admin_handler.settings.cache_clear()

    assert {name: status for name, (status, _) in answers.items()} == {
        "admin_list_models.json": 200,
        "admin_show_model.json": 200,
        "admin_rollback.json": 200,
        "admin_promote.json": 200,
        "admin_history.json": 200,
        "admin_retrain.json": 202,
    }
    assert [r["run"] for r in answers["admin_show_model.json"][1]["reports"]] == ["r1"]
    assert aws_stack.registry().champion().version == 2


def test_monitor_run_as_the_monitor_role(
    iam: IamEnforcer, aws_stack: AwsStack, champion: VersionRecord
) -> None:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    log_traffic(
        aws_stack,
        aws_stack.registry(),
        1,
        generate_churn(400, seed=5),
        end - timedelta(hours=20),
        timedelta(minutes=2),
    )
    event = scheduled(end)
    monitor_handler.settings.cache_clear()
    try:
        with iam.acting_as("Monitor"):
            summary = monitor_handler.handler(event, CONTEXT)
            # The next run reads the late writes' markers since the first one, and lists unsettled hours only.
            event["time"] = iso(end + timedelta(hours=1))
            assert monitor_handler.handler(event, CONTEXT)
    finally:
        monitor_handler.settings.cache_clear()

    assert summary
    reports = list(list_keys(aws_stack.s3, aws_stack.env[REPORT_BUCKET.env_var], "reports/model_version=1/"))
    assert any(k.endswith("report.json") for k in reports)
    listed = aws_stack.cloudwatch.list_metrics(
        Namespace=NAMESPACE,
        MetricName=Metric.MONITOR_HEARTBEAT.value,
        Dimensions=[{"Name": DIM_MODEL, "Value": "churn"}],
    )["Metrics"]
    assert listed


def test_regression_monitor_run_as_the_monitor_role(
    pricing_iam: IamEnforcer, aws_stack: AwsStack, monkeypatch: Any
) -> None:
    from mlops.datagen.pricing import generate_prices
    from mlops.model.spec import load_spec
    from mlops.model.training import train_model
    from mlops.regression.truths import TRUTH_STATE_KEY
    from mlops.shared.resources import MODEL_NAME_ENV

    from tests.integration.test_incremental_monitor import stored_report
    from tests.integration.test_regression_partials import Quotes
    from tests.unit.test_regression_spec import PRICING_SPEC

    # Given a regression champion with three hours of quotes, the first hour's true prices received,
    data = generate_prices(1500, seed=2)
    result = train_model(data, load_spec(PRICING_SPEC))
    monkeypatch.setenv(MODEL_NAME_ENV, result.spec.name)
    register_and_promote(aws_stack, result, data)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    quotes = Quotes(aws_stack, result, seed=11)
    hours = [quotes.hour(end - timedelta(hours=3 - h)) for h in range(3)]
    quotes.label(hours[0], end - timedelta(minutes=30))
    event = scheduled(end)
    monitor_handler.settings.cache_clear()

    # when two scheduled runs go as the monitor's role, the second after more prices arrived,
    try:
        with pricing_iam.acting_as("Monitor"):
            first = monitor_handler.handler(event, CONTEXT)
            quotes.label(hours[1], end + timedelta(minutes=10))
            event["time"] = iso(end + timedelta(hours=1))
            second = monitor_handler.handler(event, CONTEXT)
    finally:
        monitor_handler.settings.cache_clear()

    # then each read its feedback and stored its truths under the deployed grants.
    assert first["reads"]["feedback_gets"] == 1 and second["reads"]["feedback_gets"] == 1
    assert stored_report(aws_stack, second)["label_count"] == 100
    aws_stack.s3.head_object(Bucket=aws_stack.env[REPORT_BUCKET.env_var], Key=TRUTH_STATE_KEY)


def test_retrain_after_an_alarm_promotes_as_the_retrain_role(
    iam: IamEnforcer, aws_stack: AwsStack, champion: VersionRecord
) -> None:
    registry = aws_stack.registry()
    start = datetime.now(UTC) - timedelta(days=2)
    log_traffic(
        aws_stack, registry, 1, generate_churn(3000, seed=31, concept_shift=1.0), start, timedelta(seconds=50)
    )
    retrain_handler.settings.cache_clear()
    try:
        with iam.acting_as("Retrain"):
            out = retrain_handler.handler(load_event("retrain/alarm_state_change.json"), CONTEXT)
    finally:
        retrain_handler.settings.cache_clear()

    assert out["outcome"] == "promoted", out["detail"]
    assert registry.champion().version == 2


class AthenaOverTheLogs:
    """moto's Athena answers queries from a queue; this one runs each query's SQL with DuckDB over the
    log bucket's objects (predictions and feedback), under the Glue database's name, as Athena would
    over the Glue tables, and writes the answer as CSV to the workgroup's results location, as Athena
    does."""

    def __init__(self, stack: AwsStack, spec: Any, database: str, results: str, root: Path) -> None:
        self.stack, self.spec, self.database, self.results, self.root = stack, spec, database, results, root
        self.queries: list[str] = []

    def answer(self, backend: Any, exec_id: str) -> None:
        import duckdb
        from moto.athena.models import QueryResults

        if exec_id in backend.query_results:
            return
        bucket = self.stack.env[LOG_BUCKET.env_var]
        keys = [
            *list_keys(self.stack.s3, bucket, "predictions/"),
            *list_keys(self.stack.s3, bucket, "feedback/"),
        ]
        for key in keys:
            path = self.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        execution = backend.executions[exec_id]
        self.queries.append(execution.query)
        con = duckdb.connect()
        con.execute(f'CREATE SCHEMA "{self.database}"')
        con.execute(f'USE "{self.database}"')
        duckdb_predictions(con, self.spec, self.root)
        if any(k.startswith("feedback/") for k in keys):
            duckdb_feedback(con, self.spec, self.root)
        cursor = con.execute(execution.query)
        names = [d[0] for d in cursor.description]
        answer = cursor.fetchall()
        rows = [{"Data": [{"VarCharValue": n} for n in names]}]
        rows += [{"Data": [{} if v is None else {"VarCharValue": str(v)} for v in row]} for row in answer]
        backend.query_results[exec_id] = QueryResults(rows=rows, column_info=[{"Name": n} for n in names])
        # Athena's CSV: every value quoted, NULL as an empty field.
        location = f"{self.results}{exec_id}.csv"
        execution.config = {"OutputLocation": location}
        lines = [",".join(f'"{n}"' for n in names)]
        lines += [
            ",".join("" if v is None else '"' + str(v).replace('"', '""') + '"' for v in r) for r in answer
        ]
        out_bucket, _, key = location.removeprefix("s3://").partition("/")
        self.stack.s3.put_object(Bucket=out_bucket, Key=key, Body=("\n".join(lines) + "\n").encode())


def test_monitor_profiles_big_hours_with_athena_as_the_monitor_role(
    iam: IamEnforcer,
    aws_stack: AwsStack,
    champion: VersionRecord,
    deployed: Any,
    monkeypatch: Any,
    tmp_path: Path,
) -> None:
    from moto.athena.models import AthenaBackend

    # Given traffic of a few hours, and the monitor configured as deployed to profile every hour in Athena,
    end = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    log_traffic(
        aws_stack,
        aws_stack.registry(),
        1,
        generate_churn(120, seed=9),
        end - timedelta(hours=3),
        timedelta(minutes=1),
    )
    (workgroup,) = iam.athena_results
    (database,) = [
        r["Properties"]["DatabaseInput"]["Name"]
        for r in deployed.resources.values()
        if r["Type"] == "AWS::Glue::Database"
    ]
    boto3.client("athena", region_name="us-east-1").create_work_group(
        Name=workgroup,
        Configuration={"ResultConfiguration": {"OutputLocation": iam.athena_results[workgroup]}},
    )
    monkeypatch.setenv(SCAN_ENGINE_ENV, "athena")
    monkeypatch.setenv(SCAN_ENGINE_MIN_BYTES_ENV, "0")
    monkeypatch.setenv(ATHENA_WORKGROUP_ENV, workgroup)
    monkeypatch.setenv(GLUE_DATABASE_ENV, database)
    athena = AthenaOverTheLogs(
        aws_stack, champion_spec(aws_stack), database, iam.athena_results[workgroup], tmp_path
    )
    monkeypatch.setattr(
        AthenaBackend,
        "_store_predefined_query_results",
        lambda backend, exec_id: athena.answer(backend, exec_id),
    )
    event = scheduled(end)
    monitor_handler.settings.cache_clear()

    # when the scheduled run profiles its window as the monitor's role,
    try:
        with iam.acting_as("Monitor"):
            summary = monitor_handler.handler(event, CONTEXT)
    finally:
        monitor_handler.settings.cache_clear()

    # then Athena profiled each hour with traffic and joined it to its labels (three queries an hour),
    # every call allowed by the deployed grants,
    assert summary["reads"]["engines"] == {"athena": 2}
    assert len(athena.queries) == 2 * 3 and all(f'"{database}".' in q for q in athena.queries)
    assert sum(f'"{database}"."feedback"' in q for q in athena.queries) == 2
    (version,) = summary["versions"]
    assert version["prediction_count"] == 120 and version["label_count"] == 120
    # and a role without the Athena grant would have been refused.
    start = {
        "QueryString": athena.queries[0],
        "WorkGroup": workgroup,
        "QueryExecutionContext": {"Database": database},
    }
    for request in authorizations("athena", "StartQueryExecution", start, {}, iam.athena_results):
        assert iam.allows("Monitor", request), request.describe()
        if request.action.startswith(("athena:", "glue:")):
            assert not iam.allows("Predict", request), request.describe()


def champion_spec(stack: AwsStack) -> Any:
    from mlops.monitoring.run import load_reference

    record = stack.registry().champion()
    assert record is not None
    return load_reference(stack.registry(), stack.s3, stack.artifact_bucket, record.version).spec
