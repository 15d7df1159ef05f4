"""The IAM evaluation the tier relies on, and what the deployed roles may and may not do."""

from __future__ import annotations

import contextlib

import pytest
from mlops.cloud import aws
from mlops.cloud.logstore import latest_report_key
from mlops.cloud.storage import get_bytes
from mlops.model.bundle import dataset_key
from mlops.shared.errors import NotFoundError, StorageError

from tests.conftest import AwsStack
from tests.iam.deployed import DeployedStack
from tests.iam.enforcement import IamEnforcer
from tests.iam.policy import AuthRequest, is_allowed

BUCKET_ARN = "arn:aws:s3:::bucket"


def _listing(prefix: str | None) -> AuthRequest:
    return AuthRequest("s3:ListBucket", BUCKET_ARN, {} if prefix is None else {"s3:prefix": prefix})


def test_an_explicit_deny_wins_over_any_allow() -> None:
    statements = [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:PutObject", "Resource": f"{BUCKET_ARN}/locked/*"},
    ]
    assert is_allowed(statements, AuthRequest("s3:PutObject", f"{BUCKET_ARN}/open/a"))
    assert not is_allowed(statements, AuthRequest("s3:PutObject", f"{BUCKET_ARN}/locked/a"))


def test_actions_match_without_case_and_resources_with_case() -> None:
    statements = [{"Effect": "Allow", "Action": "S3:getobject", "Resource": f"{BUCKET_ARN}/Reports/*"}]
    assert is_allowed(statements, AuthRequest("s3:GetObject", f"{BUCKET_ARN}/Reports/x"))
    assert not is_allowed(statements, AuthRequest("s3:GetObject", f"{BUCKET_ARN}/reports/x"))
    assert not is_allowed([], AuthRequest("s3:GetObject", f"{BUCKET_ARN}/Reports/x"))  # implicit deny


def test_a_prefix_condition_bounds_listing_and_a_missing_key_fails_it() -> None:
    statements = [
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": BUCKET_ARN,
            "Condition": {"StringLike": {"s3:prefix": ["predictions/*", "feedback/*"]}},
        }
    ]
    assert is_allowed(statements, _listing("predictions/model_version=1/"))
    assert not is_allowed(statements, _listing("datasets/"))
    assert not is_allowed(statements, _listing(""))
    assert not is_allowed(statements, _listing(None))
    negated = [{**statements[0], "Condition": {"StringNotLike": {"s3:prefix": "datasets/*"}}}]
    assert is_allowed(negated, _listing(None)) and not is_allowed(negated, _listing("datasets/x"))


def test_not_action_and_not_resource_allow_everything_else() -> None:
    statements = [
        {"Effect": "Allow", "NotAction": "s3:DeleteObject", "NotResource": f"{BUCKET_ARN}/secret/*"}
    ]
    assert is_allowed(statements, AuthRequest("s3:PutObject", f"{BUCKET_ARN}/a"))
    assert not is_allowed(statements, AuthRequest("s3:DeleteObject", f"{BUCKET_ARN}/a"))
    assert not is_allowed(statements, AuthRequest("s3:PutObject", f"{BUCKET_ARN}/secret/a"))


def test_only_retraining_may_read_training_data_snapshots(iam: IamEnforcer, aws_stack: AwsStack) -> None:
    artifacts = f"arn:aws:s3:::{aws_stack.artifact_bucket}"
    original = AuthRequest("s3:GetObject", f"{artifacts}/{dataset_key('churn', 'a' * 64)}")
    readers = {key for key in iam.statements if iam.allows(key, original)}
    assert readers == {"Retrain"}
    # Retraining writes its own snapshots and never rewrites an original data set.
    own = AuthRequest("s3:PutObject", f"{artifacts}/{dataset_key('churn', 'b' * 64, retraining=True)}")
    assert iam.allows("Retrain", own)
    assert not iam.allows("Retrain", AuthRequest("s3:PutObject", original.resource))


def test_a_refused_call_fails_the_test_naming_action_and_resource(
    iam: IamEnforcer, aws_stack: AwsStack
) -> None:
    table = aws_stack.env["MLOPS_REGISTRY_TABLE"]
    with pytest.raises(pytest.fail.Exception) as failure, iam.acting_as("Predict"):
        # Predict reads the registry and must never change what is served.
        aws.client("dynamodb").put_item(TableName=table, Item={"pk": {"S": "CHAMPION"}, "sk": {"S": "x"}})
    message = str(failure.value)
    assert "dynamodb:PutItem" in message
    assert f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}" in message


def test_a_caught_refusal_still_fails_the_test(iam: IamEnforcer, aws_stack: AwsStack) -> None:
    refused = r"s3:GetObject on arn:aws:s3:::test-artifacts/datasets/"
    # Code that logs the error and carries on must not hide the refusal.
    with (
        pytest.raises(pytest.fail.Exception, match=refused),
        iam.acting_as("Monitor"),
        contextlib.suppress(StorageError),
    ):
        get_bytes(aws.client("s3"), aws_stack.artifact_bucket, "datasets/churn/x.csv.gz")


def test_a_call_without_an_iam_mapping_fails_loudly(iam: IamEnforcer) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"s3\.ListBuckets"), iam.acting_as("Admin"):
        aws.client("s3").list_buckets()


def test_every_function_role_is_in_the_template(deployed: DeployedStack) -> None:
    assert set(deployed.roles) == {"Predict", "Feedback", "LogWriter", "Admin", "Monitor", "Retrain"}
    for key in deployed.roles:
        assert deployed.role_statements(key), key


def test_a_missing_key_is_404_only_to_a_role_that_may_list_the_bucket(
    iam: IamEnforcer, aws_stack: AwsStack
) -> None:
    reports, logs = aws_stack.env["MLOPS_REPORT_BUCKET"], aws_stack.env["MLOPS_LOG_BUCKET"]
    # Predict may list the report bucket, so "no summary yet" is a 404 it can act on.
    with iam.acting_as("Predict"), pytest.raises(NotFoundError):
        get_bytes(aws.client("s3"), reports, latest_report_key(9))
    # The monitor lists logs only under its prefixes: a read of a missing log key is a 403.
    with (
        pytest.raises(pytest.fail.Exception, match=r"s3:ListBucket on arn:aws:s3:::test-logs"),
        iam.acting_as("Monitor"),
        contextlib.suppress(StorageError),
    ):
        get_bytes(aws.client("s3"), logs, "predictions/model_version=1/dt=2026-11-20/hour=01/none.jsonl.gz")
