"""Fixtures shared by every tier: the demo spec, a trained demo model, moto-backed AWS, and the local
stack served over HTTP."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from mlops.cloud import aws
from mlops.cloud.provision import create_resources
from mlops.cloud.registry import Registry, VersionRecord
from mlops.datagen.churn import generate_churn
from mlops.handlers import admin, feedback, predict
from mlops.local.invoke import LocalLambdaContext
from mlops.local.stack import LocalStack
from mlops.model.registration import register_model, snapshot_training_data
from mlops.model.spec import ModelSpec, load_spec
from mlops.model.training import TrainingResult, train_model
from mlops.shared.resources import ARTIFACT_BUCKET, REGISTRY_TABLE
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[1]
DEMO_SPEC = ROOT / "functions" / "mlops" / "examples" / "churn" / "spec.toml"


@pytest.fixture(scope="session")
def churn_spec() -> ModelSpec:
    return load_spec(DEMO_SPEC)


@pytest.fixture(scope="session")
def churn_data() -> Any:
    return generate_churn(4000, seed=1)


@pytest.fixture(scope="session")
def trained(churn_spec: ModelSpec, churn_data: Any) -> TrainingResult:
    return train_model(churn_data, churn_spec)


@dataclass
class AwsStack:
    env: dict[str, str]
    s3: Any
    dynamodb: Any
    sqs: Any
    sns: Any
    cloudwatch: Any
    events: Any

    @property
    def artifact_bucket(self) -> str:
        return self.env[ARTIFACT_BUCKET.env_var]

    def registry(self, model_name: str = "churn") -> Registry:
        return Registry(self.dynamodb, self.env[REGISTRY_TABLE.env_var], model_name)


@pytest.fixture
def aws_stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsStack]:
    """Every resource of the stack, created from `mlops.shared.resources` inside `moto.mock_aws`."""
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws.reset_clients()
    # Lambda without Docker: an invoke is accepted and answered, the function code does not run.
    with mock_aws(config={"lambda": {"use_docker": False}}):
        names = ("s3", "dynamodb", "sqs", "sns", "cloudwatch", "events")
        clients = {n: boto3.client(n, region_name="us-east-1") for n in names}
        env = create_resources(clients, "test", "churn")
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        yield AwsStack(env=env, **clients)
    aws.reset_clients()


def s3_requests(s3: Any, operation: str) -> list[dict[str, Any]]:
    """The parameters of each `operation` call (e.g. "PutObject") the S3 client `s3` makes from now
    on, as its caller passed them; the list fills as the calls are made."""
    calls: list[dict[str, Any]] = []
    s3.meta.events.register(
        f"provide-client-params.s3.{operation}", lambda params, **_: calls.append(dict(params))
    )
    return calls


def register_and_promote(
    stack: AwsStack, result: TrainingResult, data: Any, reason: str = "first champion"
) -> VersionRecord:
    """Register `result` (trained on the DataFrame `data`, snapshotted for lineage) and promote it."""
    registry = stack.registry(result.spec.name)
    snapshot = snapshot_training_data(stack.s3, stack.artifact_bucket, result.spec.name, data)
    record = register_model(result, registry, stack.s3, stack.artifact_bucket, snapshot)
    registry.promote(record.version, actor="test", reason=reason)
    return record


@pytest.fixture
def champion(aws_stack: AwsStack, trained: TrainingResult, churn_data: Any) -> VersionRecord:
    """The demo model registered and promoted as v1."""
    return register_and_promote(aws_stack, trained, churn_data)


os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ServerlessMLOps")


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The demo stage as `make synth` builds it, plus an alarm e-mail to cover the subscription.

    Synthesised once per session (jsii is slow) for the infrastructure and IAM tiers alike.
    """
    from tests.infrastructure.synth_support import ALARM_EMAIL, synthesise

    return synthesise(tmp_path_factory.mktemp("stack"), {"alarmEmail": ALARM_EMAIL})


@pytest.fixture
def lambda_context() -> LocalLambdaContext:
    return LocalLambdaContext("mlops-test")


def _fresh_containers() -> None:
    """Leave no handler module pointing at a stopped stack for the tests that follow."""
    predict.use_runtime(None)
    feedback.settings.cache_clear()
    admin.settings.cache_clear()


@dataclass
class ServedStack:
    stack: LocalStack
    url: str
    registry: Registry
    retrain_requests: list[dict[str, Any]] = field(default_factory=list)

    def call(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, dict[str, str], Any]:
        """One HTTP request; `body` is JSON-encoded unless it is already text."""
        data = None
        if body is not None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("content-type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, headers, raw = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            status, headers, raw = err.code, dict(err.headers), err.read()
        return status, {k.lower(): v for k, v in headers.items()}, json.loads(raw) if raw else None


@pytest.fixture(scope="module")
def served(churn_spec: ModelSpec, trained: TrainingResult, churn_data: Any) -> Iterator[ServedStack]:
    """The local stack (moto server, gateway, handlers) with the demo model as v1 and v2 registered.

    POST /retrain is recorded instead of training in a thread: these tests are about the API.
    """
    # moto keeps its resources per process: each stack of a run needs names of its own.
    stack = LocalStack(churn_spec, prefix=f"http{uuid.uuid4().hex[:6]}").start()
    try:
        assert stack.gateway is not None
        s3, bucket = aws.client("s3"), stack.env[ARTIFACT_BUCKET.env_var]
        registry = Registry(aws.client("dynamodb"), stack.env[REGISTRY_TABLE.env_var], churn_spec.name)
        snapshot = snapshot_training_data(s3, bucket, churn_spec.name, churn_data)
        first = register_model(trained, registry, s3, bucket, snapshot)
        registry.promote(first.version, actor="setup", reason="first champion")
        register_model(trained, registry, s3, bucket, snapshot)
        served = ServedStack(stack, stack.gateway.url, registry)
        admin.use_retrain_dispatch(lambda event: served.retrain_requests.append(event) or str(event["id"]))
        yield served
    finally:
        stack.stop()
        _fresh_containers()
