"""Failures reach people: alarm topics admit CloudWatch, every async path has a failure queue and
an alarm, and every operational alarm watches exactly the dimensions its publisher uses.

moto ignores resource policies, so the topic and key policies are evaluated here, on the template,
with the same IAM evaluation the IAM tier uses.
"""

from __future__ import annotations

from typing import Any

from mlops.shared.alarm_specs import FAILURE_DIMENSIONS, Subject, operational_alarm_specs
from mlops.shared.observability import failure_dimensions

from tests.iam.deployed import resolve
from tests.iam.policy import ACCOUNT, REGION, AuthRequest, is_allowed
from tests.infrastructure.synth_support import Synthesised

CLOUDWATCH = "cloudwatch.amazonaws.com"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:alarm-topic"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/alarm-key"


def _alarms(synth: Synthesised) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
    }


def _admits(statement: dict[str, Any], service: str) -> bool:
    principal = statement.get("Principal")
    if principal == "*" or principal == {"AWS": "*"}:
        return True
    services = (principal or {}).get("Service", [])
    return service in (services if isinstance(services, list) else [services])


def _resource_policy_allows(
    statements: list[dict[str, Any]], service: str, request: AuthRequest, bindings: dict[str, Any]
) -> bool:
    """Resource-policy evaluation for a service principal: its statements (and those for everyone)."""
    resolved = [resolve(s, bindings) for s in statements if _admits(s, service)]
    return is_allowed(resolved, request)


def test_every_alarm_notifies_a_topic_that_admits_cloudwatch_on_alarm_and_ok(synth: Synthesised) -> None:
    topic_ref = synth.ref(synth.stack.notifications.topic)
    key_ref = synth.ref(synth.stack.notifications.key)
    bindings = {topic_ref: {"Ref": TOPIC_ARN}, key_ref: {"Arn": KEY_ARN}}
    topic_policies = {
        r["Ref"]: p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.of_type("AWS::SNS::TopicPolicy").values()
        for r in p["Properties"]["Topics"]
    }
    topics = synth.of_type("AWS::SNS::Topic")
    alarms = _alarms(synth)
    assert len(alarms) > 20
    for name, alarm in alarms.items():
        # Given an alarm in this account that changes state,
        assert alarm["AlarmActions"] == alarm["OKActions"] == [{"Ref": topic_ref}], name
        context = {
            "aws:SourceAccount": ACCOUNT,
            "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}",
            "aws:SecureTransport": "true",
        }
        for action in alarm["AlarmActions"]:
            # then CloudWatch may publish to its topic over TLS ...
            statements = topic_policies[action["Ref"]]
            publish = AuthRequest("sns:Publish", TOPIC_ARN, context)
            assert _resource_policy_allows(statements, CLOUDWATCH, publish, bindings), name
            # ... and may use the topic's key.
            key = topics[action["Ref"]]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
            key_policy = synth.resources[key]["Properties"]["KeyPolicy"]["Statement"]
            for kms_action in ("kms:GenerateDataKey", "kms:Decrypt"):
                use = AuthRequest(kms_action, KEY_ARN, context)
                assert _resource_policy_allows(key_policy, CLOUDWATCH, use, bindings), (name, kms_action)


def test_the_topic_and_key_refuse_other_accounts_alarms_and_plain_http(synth: Synthesised) -> None:
    notifications = synth.stack.notifications
    bindings = {synth.ref(notifications.topic): {"Ref": TOPIC_ARN}}
    (policy,) = synth.of_type("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    key_policy = synth.resources[synth.ref(notifications.key)]["Properties"]["KeyPolicy"]["Statement"]
    prefix = synth.stack.config.prefix
    ours = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{prefix}-churn-MetricGap"
    good = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": ours, "aws:SecureTransport": "true"}
    other_account = {
        **good,
        "aws:SourceAccount": "999999999999",
        "aws:SourceArn": ours.replace(ACCOUNT, "9" * 12),
    }
    other_stage = {**good, "aws:SourceArn": ours.replace(f":alarm:{prefix}-", ":alarm:mlops-other-")}
    plain = {**good, "aws:SecureTransport": "false"}

    def publish(context: dict[str, str]) -> bool:
        return _resource_policy_allows(
            statements, CLOUDWATCH, AuthRequest("sns:Publish", TOPIC_ARN, context), bindings
        )

    def decrypt(context: dict[str, str]) -> bool:
        return _resource_policy_allows(
            key_policy, CLOUDWATCH, AuthRequest("kms:Decrypt", KEY_ARN, context), bindings
        )

    assert publish(good) and decrypt(good)
    assert not publish(other_account) and not decrypt(other_account)
    assert not publish(other_stage) and not decrypt(other_stage)
    assert not publish(plain)


def _event_invoke_config(synth: Synthesised, fn: Any) -> dict[str, Any]:
    (config,) = [
        c["Properties"]
        for c in synth.of_type("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": synth.ref(fn.function)}
    ]
    return config


def test_monitor_and_retrain_failures_go_to_an_alarmed_queue(synth: Synthesised) -> None:
    stack = synth.stack
    alarms = _alarms(synth)
    base = f"{stack.config.prefix}-{stack.config.model_name}"
    for fn, retries in ((stack.monitoring.monitor, 1), (stack.training.retrain, 0)):
        config = _event_invoke_config(synth, fn)
        queue = {"Fn::GetAtt": [synth.ref(fn.failures), "Arn"]}
        assert config["DestinationConfig"] == {"OnFailure": {"Destination": queue}}
        assert config["MaximumRetryAttempts"] == retries
        assert config["MaximumEventAgeInSeconds"] == 3600
        dead_letters = alarms[f"{base}-{fn.definition.key}-DeadLetters"]
        assert dead_letters["Dimensions"] == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": [synth.ref(fn.failures), "QueueName"]}}
        ]
        dropped = alarms[f"{base}-{fn.definition.key}-AsyncEventsDropped"]
        assert dropped["Namespace"] == "AWS/Lambda"
        assert dropped["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": synth.ref(fn.function)}}]


def test_every_rule_target_retries_delivery_dead_letters_and_is_alarmed(synth: Synthesised) -> None:
    stack = synth.stack
    alarms = _alarms(synth)
    failures = {
        synth.ref(stack.monitoring.monitor.function): synth.ref(stack.monitoring.failures),
        synth.ref(stack.training.retrain.function): synth.ref(stack.training.failures),
    }
    rules = synth.of_type("AWS::Events::Rule")
    assert len(rules) == 4  # monitor schedule, retrain schedule, retrain on alarm, retraining retry tick
    for logical, rule in rules.items():
        for target in rule["Properties"]["Targets"]:
            function = target["Arn"]["Fn::GetAtt"][0]
            assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [failures[function], "Arn"]}}
            assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        watching = [
            a
            for a in alarms.values()
            if a["Namespace"] == "AWS/Events"
            and a["Dimensions"] == [{"Name": "RuleName", "Value": {"Ref": logical}}]
        ]
        assert [a["MetricName"] for a in watching] == ["FailedInvocations"], logical
    # EventBridge may deliver to the failure queues only for these rules.
    for queue_ref in failures.values():
        (policy,) = [
            p["Properties"]["PolicyDocument"]["Statement"]
            for p in synth.of_type("AWS::SQS::QueuePolicy").values()
            if {"Ref": queue_ref} in p["Properties"]["Queues"]
        ]
        senders = [s for s in policy if s["Effect"] == "Allow" and _admits(s, "events.amazonaws.com")]
        assert senders and all("aws:SourceArn" in s["Condition"]["ArnEquals"] for s in senders)


def test_operational_alarms_watch_exactly_the_dimensions_their_publishers_use(synth: Synthesised) -> None:
    stack = synth.stack
    alarms = _alarms(synth)
    base = f"{stack.config.prefix}-{stack.config.model_name}"
    published = failure_dimensions(stack.config.model_name)
    assert sorted(published) == sorted(FAILURE_DIMENSIONS)
    for spec in operational_alarm_specs():
        built = [
            a
            for a in alarms.values()
            if a["AlarmName"].endswith(f"-{spec.name}") and a["AlarmName"].startswith(base)
        ]
        assert built, spec.name
        for alarm in built:
            assert alarm["Namespace"] == spec.namespace and alarm["MetricName"] == spec.metric_name
            assert sorted(d["Name"] for d in alarm["Dimensions"]) == sorted(spec.dimensions), alarm[
                "AlarmName"
            ]
            assert alarm["TreatMissingData"] == spec.treat_missing_data.value
            if spec.subject is Subject.MODEL:
                assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == published
    queue_age = alarms[f"{base}-OldestPredictionRecord"]
    assert queue_age["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [synth.ref(stack.prediction_log.queue), "QueueName"]}}
    ]
