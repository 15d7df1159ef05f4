"""Logger and Metrics, created once per process; handlers import them from here.

Tracer is left out on purpose: importing the X-Ray SDK costs cold start on the predict
path, and Lambda's own tracing (active tracing in the stack) already shows the spans
that matter (the function, S3, SQS).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

from mlops.resources import METRICS_NAMESPACE

SERVICE = "serverless-mlops"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
