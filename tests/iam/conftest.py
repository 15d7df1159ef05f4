"""The IAM tier: function code on moto, each call authorized against its role in the synthesized template."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mlops.cloud import aws
from mlops.shared.resources import RETRAIN_FUNCTION_ENV

from infrastructure.lambdas import ROOT
from tests.conftest import AwsStack
from tests.iam.deployed import DeployedStack, source_digest
from tests.iam.enforcement import IamEnforcer, install

CACHE_KEY = "serverless-mlops/deployed-stack"
PRICING_CACHE_KEY = "serverless-mlops/deployed-pricing-stack"
RETRAIN_FUNCTION_NAME = "mlops-test-retrain"


def _deployed(request: pytest.FixtureRequest, cache_key: str, synth: Callable[[], Any]) -> DeployedStack:
    """The template and its role/resource map: from pytest's cache while the sources are unchanged,
    otherwise synthesised (once per session) and cached."""
    digest = source_digest()
    cache = getattr(request.config, "cache", None)
    held = cache.get(cache_key, None) if cache is not None else None
    if held and held.get("digest") == digest:
        return DeployedStack.from_json(held["stack"])
    stack = DeployedStack.from_synthesised(synth())
    if cache is not None:
        cache.set(cache_key, {"digest": digest, "stack": stack.to_json()})
    return stack


@pytest.fixture(scope="session")
def deployed(request: pytest.FixtureRequest) -> DeployedStack:
    """The demo stage (the churn model's)."""
    return _deployed(request, CACHE_KEY, lambda: request.getfixturevalue("synth"))


@pytest.fixture(scope="session")
def pricing_deployed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> DeployedStack:
    """The stage of the pricing (regression) model: its roles are scoped to that model's artifacts."""
    from tests.infrastructure.synth_support import synthesise

    spec = ROOT / "functions" / "mlops" / "examples" / "pricing" / "spec.toml"
    return _deployed(
        request,
        PRICING_CACHE_KEY,
        lambda: synthesise(tmp_path_factory.mktemp("pricing-stage"), {"stage": "pricing", "spec": str(spec)}),
    )


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


def _enforcer(
    aws_stack: AwsStack, deployed: DeployedStack, monkeypatch: pytest.MonkeyPatch
) -> Iterator[IamEnforcer]:
    monkeypatch.setenv(RETRAIN_FUNCTION_ENV, RETRAIN_FUNCTION_NAME)
    enforcer = IamEnforcer(deployed, {**aws_stack.env, RETRAIN_FUNCTION_ENV: RETRAIN_FUNCTION_NAME})
    install(enforcer)
    yield enforcer
    aws.reset_clients()


@pytest.fixture
def iam(
    aws_stack: AwsStack, deployed: DeployedStack, monkeypatch: pytest.MonkeyPatch
) -> Iterator[IamEnforcer]:
    """The moto stack, with function code acting as a role only inside `iam.acting_as(key)`."""
    yield from _enforcer(aws_stack, deployed, monkeypatch)


@pytest.fixture
def pricing_iam(
    aws_stack: AwsStack, pricing_deployed: DeployedStack, monkeypatch: pytest.MonkeyPatch
) -> Iterator[IamEnforcer]:
    """As `iam`, with the roles of the pricing model's stage."""
    yield from _enforcer(aws_stack, pricing_deployed, monkeypatch)
