"""A Lambda function the way every function here is built: own role, own log group, JSON logs, arm64."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from mlops.regression.feedback import task_environment

from infrastructure.components.environment import function_environment
from infrastructure.config import ArtifactSources, StageConfig
from infrastructure.lambdas import FunctionDef, function
from infrastructure.nag import acknowledge

# The runtime the layers are built for (layers/build.py: --python-version 3.12); change both together.
RUNTIME = lambda_.Runtime.PYTHON_3_12

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def retention(days: int) -> logs.RetentionDays:
    return _RETENTION[days]


def log_group(scope: Construct, construct_id: str, days: int) -> logs.LogGroup:
    # Operational logs live only as long as their retention: deleting the stack may drop them.
    return logs.LogGroup(scope, construct_id, retention=retention(days), removal_policy=RemovalPolicy.DESTROY)


class MlopsFunction(Construct):
    """One function of `infrastructure.lambdas.FUNCTIONS`; callers add the grants it needs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        definition: FunctionDef,
        sources: ArtifactSources,
        serving_layer: lambda_.ILayerVersion,
        environment: dict[str, str],
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.definition = definition
        self.log_group = log_group(self, "Logs", log_retention_days)
        # An explicit role instead of the default one, so no AWS managed policy is attached and
        # every grant on it is one this stack chose.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{definition.key} function: {definition.description}",
        )
        self.log_group.grant_write(self.role)
        common = {
            "memory_size": definition.memory_mb,
            "timeout": Duration.seconds(definition.timeout_s),
            "architecture": lambda_.Architecture.ARM_64,
            "role": self.role,
            "log_group": self.log_group,
            "logging_format": lambda_.LoggingFormat.JSON,
            "tracing": lambda_.Tracing.ACTIVE,
            "description": definition.description,
            "environment": environment,
        }
        self.failures: sqs.Queue | None = None
        self.function: lambda_.Function
        if definition.layer.ships_as_image:
            self.function = lambda_.DockerImageFunction(
                self,
                "Function",
                code=lambda_.DockerImageCode.from_image_asset(
                    str(sources.ml_image_dir),
                    platform=ecr_assets.Platform.LINUX_ARM64,
                    cmd=[definition.handler],
                ),
                **common,  # type: ignore[arg-type]
            )
        else:
            self.function = lambda_.Function(
                self,
                "Function",
                runtime=RUNTIME,
                handler=definition.handler,
                # The built code asset as it is, bytecode included (`make layers`).
                code=lambda_.Code.from_asset(str(sources.functions_dir)),
                layers=[serving_layer],
                **common,  # type: ignore[arg-type]
            )

    def run_asynchronously(self, *, retry_attempts: int, max_event_age: Duration) -> sqs.Queue:
        """Asynchronous invocations (EventBridge, the admin's retrain request) with `retry_attempts`
        retries by Lambda; an event that still fails, or ages out, goes to a queue of its own
        (alarmed), and so does an event EventBridge could not deliver (see `rule_target`)."""
        self.failures = sqs.Queue(
            self,
            "Failures",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # The longest SQS allows: time to find out why the run failed and redrive it.
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.failures,
            "SQS3",
            "This queue is a dead-letter queue: the on-failure destination of the function's asynchronous "
            "invocations and the dead-letter queue of its EventBridge targets. Its depth is alarmed; a "
            "queue behind it would only move the problem.",
        )
        self.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.failures),
            retry_attempts=retry_attempts,
            max_event_age=max_event_age,
        )
        return self.failures

    def rule_target(
        self, max_event_age: Duration, event: events.RuleTargetInput | None = None
    ) -> targets.LambdaFunction:
        """An EventBridge target for this function (with `event` as its input instead of the rule's
        event, when given). EventBridge retries only the delivery (the asynchronous Invoke call),
        which cannot start a run twice, and dead-letters what it could not deliver to the
        function's failure queue."""
        assert self.failures is not None, "run_asynchronously() first"
        return targets.LambdaFunction(
            self.function,
            dead_letter_queue=self.failures,
            retry_attempts=DELIVERY_RETRIES,
            max_event_age=max_event_age,
            event=event,
        )


# EventBridge retries a failed delivery with backoff; three attempts ride out a throttled Invoke.
DELIVERY_RETRIES = 3


def stage_function(
    scope: Construct,
    key: str,
    *,
    config: StageConfig,
    sources: ArtifactSources,
    serving_layer: lambda_.ILayerVersion,
    values: Mapping[str, str],
    memory_mb: int | None = None,
) -> MlopsFunction:
    """The function `key` of `infrastructure.lambdas`, with the environment its settings class asks for
    (and `memory_mb` instead of the definition's, where the model's spec sizes the function)."""
    definition = function(key)
    if memory_mb is not None:
        definition = dataclasses.replace(definition, memory_mb=memory_mb)
    return MlopsFunction(
        scope,
        key,
        definition=definition,
        sources=sources,
        serving_layer=serving_layer,
        environment=function_environment(key, config.model_name, {**task_environment(config.spec), **values}),
        log_retention_days=config.log_retention_days,
    )
