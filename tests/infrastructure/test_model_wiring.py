"""The stack follows the model spec: alarms, schedules, the retrain trigger, the log tables, the functions."""

from __future__ import annotations

import base64
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from mlops.cloud.logstore import unique_predictions_sql
from mlops.model.spec import FeatureKind
from mlops.shared.alarm_specs import DIM_MODEL, NAMESPACE, alarm_specs
from mlops.shared.resources import RETRAIN_REQUEST_SOURCE, RETRAIN_RETRY_DETAIL_TYPE, RETRAINING_ALARMS_ENV

from infrastructure.components.environment import required_and_optional
from infrastructure.components.monitoring import UNIQUE_PREDICTIONS_VIEW
from infrastructure.config import DEFAULT_SPEC
from infrastructure.lambdas import FUNCTIONS, ROOT
from tests.infrastructure.synth_support import Synthesised, synthesise


def alarms_by_name(synth: Synthesised) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
    }


def assert_alarms_match_specs(synth: Synthesised) -> None:
    config = synth.stack.config
    alarms = alarms_by_name(synth)
    topic = {"Ref": synth.ref(synth.stack.notifications.topic)}
    specs = alarm_specs(config.spec)
    assert specs, "the spec defines model alarms"
    for spec in specs:
        name = spec.alarm_name(config.prefix, config.model_name)
        assert name in alarms, f"no alarm {name}"
        alarm = alarms[name]
        assert alarm["Namespace"] == NAMESPACE
        assert alarm["MetricName"] == spec.metric.value
        assert alarm["Dimensions"] == [{"Name": DIM_MODEL, "Value": config.model_name}]
        assert alarm["Statistic"] == spec.statistic
        assert alarm["Period"] == spec.period_s
        assert alarm["Threshold"] == spec.threshold
        assert alarm["ComparisonOperator"] == spec.comparison.value
        assert alarm["EvaluationPeriods"] == spec.evaluation_periods
        assert alarm["DatapointsToAlarm"] == spec.datapoints_to_alarm
        assert alarm["TreatMissingData"] == spec.treat_missing_data.value
        assert alarm["AlarmActions"] == alarm["OKActions"] == [topic]


def rule_targeting(synth: Synthesised, function: Any, key: str) -> list[dict[str, Any]]:
    arn = {"Fn::GetAtt": [synth.ref(function), "Arn"]}
    return [
        r["Properties"]
        for r in synth.of_type("AWS::Events::Rule").values()
        if key in r["Properties"] and any(t["Arn"] == arn for t in r["Properties"]["Targets"])
    ]


def assert_schedules_match_spec(synth: Synthesised) -> None:
    spec = synth.stack.config.spec
    monitor = rule_targeting(synth, synth.stack.monitoring.monitor.function, "ScheduleExpression")
    retrain = rule_targeting(synth, synth.stack.training.retrain.function, "ScheduleExpression")
    assert [r["ScheduleExpression"] for r in monitor] == [spec.monitoring.schedule]
    # The retraining schedule, and the retry tick at the monitor's cadence.
    assert sorted(r["ScheduleExpression"] for r in retrain) == sorted(
        [spec.retraining.schedule, spec.monitoring.schedule]
    )


def assert_retrain_rule_matches_retraining_alarms(synth: Synthesised) -> None:
    config = synth.stack.config
    expected = [
        a.alarm_name(config.prefix, config.model_name)
        for a in alarm_specs(config.spec)
        if a.triggers_retraining
    ]
    rules = rule_targeting(synth, synth.stack.training.retrain.function, "EventPattern")
    assert len(rules) == 1
    assert rules[0]["EventPattern"] == {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": expected, "state": {"value": ["ALARM", "OK"]}},
    }
    # Every name in the pattern is an alarm of this stack (a rename on one side would break retraining).
    assert set(expected) <= set(alarms_by_name(synth))


def test_model_alarms_follow_the_alarm_specs(synth: Synthesised) -> None:
    assert_alarms_match_specs(synth)


def test_operational_alarms_cover_errors_throttles_latency_5xx_and_dead_letters(synth: Synthesised) -> None:
    config = synth.stack.config
    names = set(alarms_by_name(synth))
    base = f"{config.prefix}-{config.model_name}"
    for fn in FUNCTIONS:
        assert f"{base}-{fn.key}-Errors" in names
        assert f"{base}-{fn.key}-Throttles" in names
    assert {f"{base}-Predict-LatencyP99", f"{base}-Api-5xx", f"{base}-PredictionLog-DeadLetters"} <= names
    heartbeat = next(s for s in alarm_specs(config.spec) if s.name == "MonitorHeartbeat")
    assert heartbeat.alarm_name(config.prefix, config.model_name) in names
    topic = {"Ref": synth.ref(synth.stack.notifications.topic)}
    assert all(a["AlarmActions"] == a["OKActions"] == [topic] for a in alarms_by_name(synth).values())


def test_schedules_come_from_the_spec(synth: Synthesised) -> None:
    assert_schedules_match_spec(synth)


def test_retrain_rule_matches_state_changes_of_exactly_the_retraining_alarms(synth: Synthesised) -> None:
    assert_retrain_rule_matches_retraining_alarms(synth)


@pytest.fixture(scope="module")
def other_stage(tmp_path_factory: pytest.TempPathFactory) -> Synthesised:
    """A second stage from a spec with other schedules and thresholds."""
    root = tmp_path_factory.mktemp("other-stage")
    data = tomllib.loads((ROOT / DEFAULT_SPEC).read_text())
    data["monitoring"].update(schedule="rate(6 hours)", max_metric_gap=0.11, drift_share=0.45, memory_mb=6144)
    data["retraining"]["schedule"] = "cron(0 3 ? * MON *)"
    spec_path = root / "spec.json"  # load_spec reads JSON too
    spec_path.write_text(json.dumps(data))
    return synthesise(root, {"stage": "prod", "spec": str(spec_path)})


def test_a_second_stage_is_its_own_stack_and_follows_its_spec(
    other_stage: Synthesised, synth: Synthesised
) -> None:
    assert other_stage.stack.stack_name == "ServerlessMlops-prod" != synth.stack.stack_name
    assert other_stage.stack.config.spec.monitoring.max_metric_gap == 0.11
    assert_alarms_match_specs(other_stage)
    assert_schedules_match_spec(other_stage)
    assert_retrain_rule_matches_retraining_alarms(other_stage)
    assert all(name.startswith("mlops-prod-") for name in alarms_by_name(other_stage))
    # The monitor's memory is the spec's (a run at high traffic holds hours of 3.6 million rows).
    for stage, memory in ((other_stage, 6144), (synth, 2048)):
        monitor = stage.resources[stage.ref(stage.stack.monitoring.monitor.function)]
        assert monitor["Properties"]["MemorySize"] == memory


def test_functions_are_arm64_json_logging_and_get_every_setting_they_require(synth: Synthesised) -> None:
    stack = synth.stack
    by_key = {fn.definition.key: fn for fn in stack.functions}
    assert set(by_key) == {f.key for f in FUNCTIONS}
    layer = synth.ref(synth.stack.node.find_child("ServingLayer"))
    for key, fn in by_key.items():
        props = synth.resources[synth.ref(fn.function)]["Properties"]
        assert props["Architectures"] == ["arm64"], key
        assert props["LoggingConfig"]["LogFormat"] == "JSON", key
        assert props["TracingConfig"] == {"Mode": "Active"}, key
        assert props["MemorySize"] == fn.definition.memory_mb and props["Timeout"] == fn.definition.timeout_s
        env = props["Environment"]["Variables"]
        required, _ = required_and_optional(key)
        assert set(required) <= set(env), f"{key} misses {set(required) - set(env)}"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
        if fn.definition.layer.ships_as_image:
            assert props["PackageType"] == "Image"
            assert props["ImageConfig"]["Command"] == [fn.definition.handler]
        else:
            assert props["Runtime"] == "python3.12"
            assert props["Handler"] == fn.definition.handler
            assert props["Layers"] == [{"Ref": layer}]
    assert by_key["Predict"].function.node.default_child is not None
    predict_env = synth.resources[synth.ref(by_key["Predict"].function)]["Properties"]["Environment"][
        "Variables"
    ]
    assert predict_env["MLOPS_CHAMPION_REFRESH_SECONDS"] == str(stack.config.champion_refresh_seconds)


def test_athena_can_query_the_prediction_logs_through_partition_projection(synth: Synthesised) -> None:
    spec = synth.stack.config.spec
    tables = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in synth.of_type("AWS::Glue::Table").values()
    }
    predictions = tables["predictions"]
    assert [k["Name"] for k in predictions["PartitionKeys"]] == ["model_version", "dt", "hour"]
    params = predictions["Parameters"]
    assert params["projection.enabled"] == "true"
    # Only the versions a query names are projected, never a range of versions that do not exist.
    assert params["projection.model_version.type"] == "injected"
    assert "projection.model_version.range" not in params
    template = json.dumps(params["storage.location.template"])
    assert "predictions/model_version=${model_version}/dt=${dt}/hour=${hour}/" in template
    features = next(c for c in predictions["StorageDescriptor"]["Columns"] if c["Name"] == "features")["Type"]
    for f in spec.features:
        kind = "double" if f.kind is FeatureKind.NUMERIC else "string"
        assert f"{f.name}:{kind}" in features
    assert {"timestamp", "received_at"} <= {c["Name"] for c in predictions["StorageDescriptor"]["Columns"]}
    assert "feedback" in tables
    synth.template.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "WorkGroupConfiguration": {
                "EnforceWorkGroupConfiguration": True,
                "ResultConfiguration": {"EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}},
            }
        },
    )


def test_dashboard_shows_the_metric_gap_against_its_alarm_threshold(synth: Synthesised) -> None:
    config = synth.stack.config
    body = json.dumps(
        next(iter(synth.of_type("AWS::CloudWatch::Dashboard").values()))["Properties"]["DashboardBody"]
    )
    gap = next(s for s in alarm_specs(config.spec) if s.name == "MetricGap")
    for metric in ("MetricGap", "DriftShare", "FeatureDrift", "LabelCoverage", "Duration", "Errors"):
        assert metric in body
    assert f'\\"value\\":{gap.threshold}' in body
    assert all(f.name in body for f in config.spec.features)


def test_stack_refuses_a_function_setting_it_cannot_supply() -> None:
    from infrastructure.components.environment import function_environment

    with pytest.raises(ValueError, match="MLOPS_PREDICTION_QUEUE_URL"):
        function_environment("Predict", "churn", {"MLOPS_REGISTRY_TABLE": "t", "MLOPS_ARTIFACT_BUCKET": "b"})


def test_spec_file_default_is_the_demo(synth: Synthesised) -> None:
    assert synth.stack.config.spec_path == Path(ROOT / DEFAULT_SPEC)


def test_feature_names_as_given_are_quoted_in_the_log_table_type() -> None:
    from mlops.cloud.logstore import features_type
    from mlops.model.spec import parse_spec

    spec = parse_spec(
        {
            "name": "m",
            "target": "y",
            "features": [
                {"name": "age", "kind": "numeric"},
                {"name": "Age (years)", "kind": "numeric"},
                {"name": "odd`name", "kind": "categorical"},
                {"name": "member", "kind": "boolean"},
            ],
        }
    )

    assert features_type(spec) == "struct<age:double,`Age (years)`:double,`odd``name`:string,member:string>"


def test_athena_reads_each_prediction_once_through_the_unique_view(synth: Synthesised) -> None:
    # Given the synthesized Glue catalog
    tables = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in synth.of_type("AWS::Glue::Table").values()
    }
    view = tables[UNIQUE_PREDICTIONS_VIEW]
    # Then the view is a Presto view over the predictions table with the readers' rule
    assert view["TableType"] == "VIRTUAL_VIEW" and view["Parameters"]["presto_view"] == "true"
    encoded = view["ViewOriginalText"].removeprefix("/* Presto View: ").removesuffix(" */")
    definition = json.loads(base64.b64decode(encoded))
    database = synth.stack.monitoring.database_name
    assert definition["originalSql"] == unique_predictions_sql(
        synth.stack.config.spec, f'"{database}"."predictions"'
    )
    assert definition["schema"] == database
    # and it exposes every column of the table and its partitions, typed alike
    predictions = tables["predictions"]
    table_columns = [
        c["Name"] for c in predictions["StorageDescriptor"]["Columns"] + predictions["PartitionKeys"]
    ]
    assert [c["name"] for c in definition["columns"]] == [
        c["Name"] for c in view["StorageDescriptor"]["Columns"]
    ]
    assert sorted(c["name"] for c in definition["columns"]) == sorted(table_columns)
    features = next(c["type"] for c in definition["columns"] if c["name"] == "features")
    assert all(f.name in features for f in synth.stack.config.spec.features)


def test_retry_tick_sends_the_retry_event_and_the_function_reads_only_the_retraining_alarms(
    synth: Synthesised,
) -> None:
    # Given the retraining alarms of the stage
    config = synth.stack.config
    specs = alarm_specs(config.spec)
    names = [a.alarm_name(config.prefix, config.model_name) for a in specs if a.triggers_retraining]
    # When the retry schedule fires, the retrain function gets the retry event (not a bare schedule)
    retrain = rule_targeting(synth, synth.stack.training.retrain.function, "ScheduleExpression")
    retry = [r for r in retrain if r["ScheduleExpression"] == config.spec.monitoring.schedule]
    assert len(retry) == 1
    template = retry[0]["Targets"][0]["InputTransformer"]["InputTemplate"]
    assert RETRAIN_RETRY_DETAIL_TYPE in template and RETRAIN_REQUEST_SOURCE in template
    # Then the function knows the alarms and may describe exactly those, nothing else
    env = synth.resources[synth.ref(synth.stack.training.retrain.function)]["Properties"]["Environment"][
        "Variables"
    ]
    assert env[RETRAINING_ALARMS_ENV] == ",".join(names)
    statements = [
        s
        for p in synth.of_type("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "cloudwatch:DescribeAlarms"
    ]
    assert len(statements) == 1
    resources = json.dumps(statements[0]["Resource"])
    assert '"*"' not in resources
    assert all(f":alarm:{name}" in resources for name in names)
