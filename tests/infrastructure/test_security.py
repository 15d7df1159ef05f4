"""The stack is secure by default: signed API calls, private encrypted storage, narrow roles."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match
from mlops.model.bundle import bundle_prefix, dataset_key
from mlops.shared.resources import (
    ALL_RESOURCES,
    LOG_WRITER_BATCH_SIZE,
    LOG_WRITER_BATCHING_WINDOW_S,
    PREDICTION_QUEUE,
    ResourceKind,
)
from mlops.shared.routes import ROUTES as API_ROUTES

from infrastructure.components.registry import REGISTRY_READ_ACTIONS
from infrastructure.components.serving import ADMIN_ROUTES, CLIENT_ROUTES
from tests.infrastructure.synth_support import ALARM_EMAIL, Synthesised

DYNAMODB_WRITES = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
    "dynamodb:*",
    "*",
}


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def role_statements(synth: Synthesised, role: Any) -> list[dict[str, Any]]:
    """Every Allow statement of every policy attached to `role`."""
    role_ref = {"Ref": synth.ref(role)}
    statements = []
    for policy_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in synth.of_type(policy_type).values():
            if role_ref in policy["Properties"].get("Roles", []):
                statements += policy["Properties"]["PolicyDocument"]["Statement"]
    inline = synth.resources[synth.ref(role)]["Properties"].get("Policies", [])
    for p in inline:
        statements += p["PolicyDocument"]["Statement"]
    assert not synth.resources[synth.ref(role)]["Properties"].get("ManagedPolicyArns"), "no managed policies"
    return [s for s in statements if s["Effect"] == "Allow"]


def test_every_route_requires_sigv4_signed_iam_callers(synth: Synthesised) -> None:
    routes = synth.of_type("AWS::ApiGatewayV2::Route").values()
    expected = {f"{m.value} {p}" for rs in CLIENT_ROUTES.values() for m, p in rs}
    expected |= {f"{m.value} {p}" for m, p in ADMIN_ROUTES}
    assert {r["Properties"]["RouteKey"] for r in routes} == expected
    # The same routes the local gateway serves.
    assert expected == {r.route_key for r in API_ROUTES}
    assert all(r["Properties"]["AuthorizationType"] == "AWS_IAM" for r in routes)


def test_admin_routes_are_granted_by_a_separate_policy(synth: Synthesised) -> None:
    serving = synth.stack.serving
    client = json.dumps(synth.resources[synth.ref(serving.client_policy)]["Properties"])
    admin = json.dumps(synth.resources[synth.ref(serving.admin_policy)]["Properties"])
    assert "/POST/predict" in client and "/POST/feedback" in client
    assert "/POST/models/*/promote" in admin and "/POST/retrain" in admin
    assert "/models" not in client and "retrain" not in client
    assert "predict" not in admin and "feedback" not in admin


def test_api_stage_writes_access_logs_and_is_throttled(synth: Synthesised) -> None:
    config = synth.stack.config
    synth.template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "AccessLogSettings": {
                "DestinationArn": Match.any_value(),
                "Format": Match.string_like_regexp("routeKey"),
            },
            "DefaultRouteSettings": {
                "ThrottlingRateLimit": config.api_rate_limit,
                "ThrottlingBurstLimit": config.api_burst_limit,
            },
        },
    )


def test_buckets_are_encrypted_private_ssl_only_and_access_logged(synth: Synthesised) -> None:
    buckets = synth.of_type("AWS::S3::Bucket")
    assert len(buckets) == 4  # artifacts, logs, reports, and their access-log bucket
    access_logs = synth.ref(synth.stack.storage.access_logs)
    for logical, bucket in buckets.items():
        props = bucket["Properties"]
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms"), logical
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical
        if logical != access_logs:
            assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": access_logs}
        assert bucket["DeletionPolicy"] == "Retain", logical
    ssl_only = {
        policy["Properties"]["Bucket"]["Ref"]
        for policy in synth.of_type("AWS::S3::BucketPolicy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    }
    assert ssl_only == set(buckets)


def test_prediction_queue_has_an_encrypted_dead_letter_queue(synth: Synthesised) -> None:
    log = synth.stack.prediction_log
    queue = synth.resources[synth.ref(log.queue)]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [synth.ref(log.dead_letter_queue), "Arn"]},
        "maxReceiveCount": PREDICTION_QUEUE.max_receive_count,
    }
    assert queue["VisibilityTimeout"] == PREDICTION_QUEUE.visibility_timeout_s
    for q in synth.of_type("AWS::SQS::Queue").values():
        assert q["Properties"]["SqsManagedSseEnabled"] is True
    ssl_only = [
        p
        for p in synth.of_type("AWS::SQS::QueuePolicy").values()
        if any(
            s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in p["Properties"]["PolicyDocument"]["Statement"]
        )
    ]
    # Every queue: the prediction queue, its dead-letter queue, and the monitor and retrain failure queues.
    assert len(ssl_only) == len(synth.of_type("AWS::SQS::Queue")) == 4


def test_log_writer_consumes_batches_and_reports_partial_failures(synth: Synthesised) -> None:
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": synth.ref(synth.stack.prediction_log.writer.function)},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": LOG_WRITER_BATCH_SIZE,
            "MaximumBatchingWindowInSeconds": LOG_WRITER_BATCHING_WINDOW_S,
        },
    )
    # SQS must not hand a batch to another poller while the writer may still hold it.
    writer = synth.resources[synth.ref(synth.stack.prediction_log.writer.function)]["Properties"]
    assert PREDICTION_QUEUE.visibility_timeout_s >= 6 * writer["Timeout"] + LOG_WRITER_BATCHING_WINDOW_S


def test_alarm_topic_is_kms_encrypted_ssl_only_and_mails_the_operator(synth: Synthesised) -> None:
    topic = synth.resources[synth.ref(synth.stack.notifications.topic)]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [synth.ref(synth.stack.notifications.key), "Arn"]}
    synth.template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    synth.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )
    synth.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": ALARM_EMAIL}
    )


def test_tables_follow_the_resources_and_have_point_in_time_recovery(synth: Synthesised) -> None:
    tables = synth.stack.registry.tables
    assert set(tables) == {r.logical_id for r in ALL_RESOURCES if r.kind is ResourceKind.TABLE}
    for res in ALL_RESOURCES:
        if res.kind is not ResourceKind.TABLE:
            continue
        props = synth.resources[synth.ref(tables[res.logical_id])]["Properties"]
        keys = {k["AttributeName"]: k["KeyType"] for k in props["KeySchema"]}
        assert keys == {res.partition_key: "HASH", **({res.sort_key: "RANGE"} if res.sort_key else {})}
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["DeletionProtectionEnabled"] is True
        ttl = props.get("TimeToLiveSpecification")
        assert ttl == ({"AttributeName": res.ttl_attribute, "Enabled": True} if res.ttl_attribute else None)


def test_predict_cannot_write_the_registry_but_admin_and_retrain_can(synth: Synthesised) -> None:
    stack = synth.stack
    registry = synth.ref(stack.registry.registry)

    def registry_writes(role: Any) -> set[str]:
        return {
            action
            for s in role_statements(synth, role)
            for action in _actions(s)
            if action in DYNAMODB_WRITES and (registry in json.dumps(s["Resource"]) or s["Resource"] == "*")
        }

    assert registry_writes(stack.serving.predict.role) == set()
    assert not any(
        a in DYNAMODB_WRITES for s in role_statements(synth, stack.serving.predict.role) for a in _actions(s)
    )
    # The check can fail: the roles that may change the registry do show write actions.
    assert "dynamodb:PutItem" in registry_writes(stack.serving.admin.role)
    assert "dynamodb:PutItem" in registry_writes(stack.training.retrain.role)
    assert registry_writes(stack.monitoring.monitor.role) == set()
    predict_on_registry = {
        a
        for s in role_statements(synth, stack.serving.predict.role)
        if registry in json.dumps(s["Resource"])
        for a in _actions(s)
    }
    assert predict_on_registry == set(REGISTRY_READ_ACTIONS)


def test_log_writers_may_only_put_objects_under_their_own_prefix(synth: Synthesised) -> None:
    stack = synth.stack

    def puts(role: Any) -> list[str]:
        return [
            json.dumps(s["Resource"]) for s in role_statements(synth, role) if "s3:PutObject" in _actions(s)
        ]

    writer_puts = puts(stack.prediction_log.writer.role)
    assert len(writer_puts) == 1
    for prefix in ("predictions", "late", "feedback"):
        assert f'"/{prefix}/*"' in writer_puts[0]
    assert '"/reports/' not in writer_puts[0]
    # Predict and feedback queue their records; only the log writer writes the logs.
    assert puts(stack.serving.feedback.role) == []
    assert puts(stack.serving.predict.role) == []


def test_every_function_has_its_own_role_and_log_group(synth: Synthesised) -> None:
    functions = synth.of_type("AWS::Lambda::Function").values()
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions]
    groups = [f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in functions]
    assert len(set(roles)) == len(roles) == 6
    assert len(set(groups)) == 6
    retention = synth.stack.config.log_retention_days
    for group in groups:
        assert synth.resources[group]["Properties"]["RetentionInDays"] == retention


def _rules(synth: Synthesised, bucket: Any) -> list[dict[str, Any]]:
    return list(synth.resources[synth.ref(bucket)]["Properties"]["LifecycleConfiguration"]["Rules"])


def _prefix(rule: dict[str, Any]) -> str | None:
    return rule.get("Prefix") or (rule.get("Filter") or {}).get("Prefix")


def test_logs_and_retraining_snapshots_expire_and_original_data_never_does(synth: Synthesised) -> None:
    storage, config = synth.stack.storage, synth.stack.config
    logs = _rules(synth, storage.logs)
    # Log objects are a few KB: S3 would not move them to Standard-IA, so no rule pretends to.
    assert not any("Transitions" in r for r in logs)
    assert {_prefix(r): r["ExpirationInDays"] for r in logs if "ExpirationInDays" in r} == {
        "predictions/": config.prediction_log_expire_days,
        "feedback/": config.prediction_log_expire_days,
        "late/": config.prediction_log_expire_days,
    }
    artifacts = _rules(synth, storage.artifacts)
    expiring = {_prefix(r): r["ExpirationInDays"] for r in artifacts if "ExpirationInDays" in r}
    snapshot = dataset_key("churn", "a" * 64, retraining=True)
    original = dataset_key("churn", "a" * 64)
    bundle_key = bundle_prefix("churn", 1) + "model.onnx"
    assert [p for p in expiring if p and snapshot.startswith(p)] == ["datasets/churn/retraining/"]
    assert expiring["datasets/churn/retraining/"] == config.retraining_snapshot_expire_days
    assert not [p for p in expiring if not p or original.startswith(p) or bundle_key.startswith(p)]
