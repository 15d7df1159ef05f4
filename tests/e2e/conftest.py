"""The local stack with a champion, served over HTTP on 127.0.0.1, for tests that speak HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from mlops import aws
from mlops.handlers import admin, feedback, predict
from mlops.lifecycle import register_model, snapshot_training_data
from mlops.local.stack import LocalStack
from mlops.registry import Registry
from mlops.resources import ARTIFACT_BUCKET, REGISTRY_TABLE
from mlops.spec import ModelSpec
from mlops.training import TrainingResult


def _fresh_containers() -> None:
    """Forget what earlier tests left in the handler modules, as a cold start would."""
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
    _fresh_containers()
    stack = LocalStack(churn_spec, prefix="http").start()
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
