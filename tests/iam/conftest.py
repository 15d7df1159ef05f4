"""The IAM tier: function code on moto, each call authorized against its role in the synthesized template."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from mlops.cloud import aws
from mlops.shared.resources import RETRAIN_FUNCTION_ENV

from tests.conftest import AwsStack
from tests.iam.deployed import DeployedStack, source_digest
from tests.iam.enforcement import IamEnforcer, install

CACHE_KEY = "serverless-mlops/deployed-stack"
RETRAIN_FUNCTION_NAME = "mlops-test-retrain"


@pytest.fixture(scope="session")
def deployed(request: pytest.FixtureRequest) -> DeployedStack:
    """The template and its role/resource map: from pytest's cache while the sources are unchanged,
    otherwise synthesised (once per session) and cached."""
    digest = source_digest()
    cache = getattr(request.config, "cache", None)
    held = cache.get(CACHE_KEY, None) if cache is not None else None
    if held and held.get("digest") == digest:
        return DeployedStack.from_json(held["stack"])
    stack = DeployedStack.from_synthesised(request.getfixturevalue("synth"))
    if cache is not None:
        cache.set(CACHE_KEY, {"digest": digest, "stack": stack.to_json()})
    return stack


def create_retrain_function(stack: AwsStack) -> str:
    """The retrain function in moto, so the admin's asynchronous invoke has a target."""
    iam = aws.client("iam")
    role = iam.create_role(
        RoleName="retrain-function",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    aws.client("lambda").create_function(
        FunctionName=RETRAIN_FUNCTION_NAME,
        Runtime="python3.12",
        Role=role,
        Handler="mlops.handlers.retrain.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )
    return RETRAIN_FUNCTION_NAME


@pytest.fixture
def iam(
    aws_stack: AwsStack, deployed: DeployedStack, monkeypatch: pytest.MonkeyPatch
) -> Iterator[IamEnforcer]:
    """The moto stack, with function code acting as a role only inside `iam.acting_as(key)`."""
    monkeypatch.setenv(RETRAIN_FUNCTION_ENV, RETRAIN_FUNCTION_NAME)
    enforcer = IamEnforcer(deployed, {**aws_stack.env, RETRAIN_FUNCTION_ENV: RETRAIN_FUNCTION_NAME})
    install(enforcer)
    yield enforcer
    aws.reset_clients()
