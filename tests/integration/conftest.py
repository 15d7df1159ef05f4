"""Fixtures for the serving handlers: a fresh predict container, settings read per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mlops.cloud import aws
from mlops.handlers import feedback as feedback_handler
from mlops.handlers import log_writer as log_writer_handler
from mlops.handlers import predict as predict_handler
from mlops.shared.settings import ServingSettings

from tests.integration.serving_helpers import AwsStack, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def predict_runtime(aws_stack: AwsStack, clock: FakeClock) -> Iterator[predict_handler.PredictRuntime]:
    """A fresh predict container on the moto stack, with a clock the test controls."""
    settings = ServingSettings()  # type: ignore[call-arg]
    runtime = predict_handler.PredictRuntime(
        settings, aws.client("s3"), aws.client("dynamodb"), aws.client("sqs"), clock=clock
    )
    predict_handler.use_runtime(runtime)
    yield runtime
    predict_handler.use_runtime(None)


@pytest.fixture
def fresh_settings(aws_stack: AwsStack) -> Iterator[None]:
    """Feedback and log-writer settings read again from this test's environment."""
    feedback_handler.settings.cache_clear()
    log_writer_handler.settings.cache_clear()
    yield
    feedback_handler.settings.cache_clear()
    log_writer_handler.settings.cache_clear()
