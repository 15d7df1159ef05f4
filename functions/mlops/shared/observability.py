"""Logger and Metrics, created once per process; handlers import them from here.

Tracer is left out on purpose: importing the X-Ray SDK costs cold start on the predict
path, and Lambda's own tracing (active tracing in the stack) already shows the spans
that matter (the function, S3, SQS).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from mlops.shared.alarm_specs import DIM_MODEL, DIM_SERVICE, Metric
from mlops.shared.resources import METRICS_NAMESPACE

SERVICE = "serverless-mlops"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)


def failure_dimensions(model_name: str) -> dict[str, str]:
    """The dimensions of every failure count (`mlops.shared.alarm_specs.FAILURE_DIMENSIONS`), with their
    values."""
    return {DIM_MODEL: model_name, DIM_SERVICE: SERVICE}


def count_failure(metric: Metric, value: float, model_name: str) -> None:
    """Publish a failure count now, in an EMF document of its own with exactly the dimensions its
    alarm watches (CloudWatch matches dimensions exactly; the request's metrics carry more)."""
    if is_metrics_disabled():
        return
    with single_metric(
        name=metric.value,
        unit=MetricUnit.Count,
        value=value,
        namespace=METRICS_NAMESPACE,
        default_dimensions=failure_dimensions(model_name),
    ):
        pass
