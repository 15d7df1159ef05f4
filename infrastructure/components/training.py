"""The retrain function and what starts it: the spec's schedule and the alarms that call for a new model."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from mlops.cloud.logstore import FEEDBACK_PREFIX, GATES_PREFIX, PREDICTIONS_PREFIX
from mlops.model.bundle import datasets_prefix, model_prefix, retraining_snapshots_prefix
from mlops.shared.alarm_specs import alarm_specs
from mlops.shared.resources import (
    ALARM_TOPIC,
    ARTIFACT_BUCKET,
    LOG_BUCKET,
    REGISTRY_TABLE,
    REPORT_BUCKET,
    RETRAIN_REQUEST_SOURCE,
    RETRAIN_RETRY_DETAIL_TYPE,
    RETRAINING_ALARMS_ENV,
)

from infrastructure.components.function import stage_function
from infrastructure.components.notifications import Notifications
from infrastructure.components.registry import Registry, grant_registry_write
from infrastructure.components.storage import Storage, grant_objects
from infrastructure.config import ArtifactSources, StageConfig

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"


def retraining_alarm_names(config: StageConfig) -> list[str]:
    """Names of the alarms whose entry into ALARM starts a retrain run."""
    return [
        a.alarm_name(config.prefix, config.model_name)
        for a in alarm_specs(config.spec)
        if a.triggers_retraining
    ]


class Training(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        sources: ArtifactSources,
        serving_layer: lambda_.ILayerVersion,
        storage: Storage,
        registry: Registry,
        notifications: Notifications,
    ) -> None:
        super().__init__(scope, construct_id)
        names = retraining_alarm_names(config)
        self.retrain = stage_function(
            self,
            "Retrain",
            config=config,
            sources=sources,
            serving_layer=serving_layer,
            values={
                REGISTRY_TABLE.env_var: registry.registry.table_name,
                ARTIFACT_BUCKET.env_var: storage.artifacts.bucket_name,
                LOG_BUCKET.env_var: storage.logs.bucket_name,
                REPORT_BUCKET.env_var: storage.reports.bucket_name,
                ALARM_TOPIC.env_var: notifications.topic.topic_arn,
                RETRAINING_ALARMS_ENV: ",".join(names),
            },
        )
        role = self.retrain.role
        model = config.model_name
        # Bundles of new versions, read back and verified; the champion's bundle.
        grant_objects(storage.artifacts, role, (model_prefix(model),), read=True, write=True)
        # The original data set a run starts from (and the existence check of its own snapshot),
        # and its own snapshot of original plus production rows.
        grant_objects(storage.artifacts, role, (datasets_prefix(model),), read=True)
        grant_objects(storage.artifacts, role, (retraining_snapshots_prefix(model),), write=True)
        grant_objects(storage.logs, role, (PREDICTIONS_PREFIX, FEEDBACK_PREFIX), read=True)
        grant_objects(storage.reports, role, (GATES_PREFIX,), write=True)
        grant_registry_write(registry.registry, role)
        # Publishing to an encrypted topic needs the data key; exact actions instead of the
        # `kms:GenerateDataKey*` wildcard that `Topic.grant_publish` would add.
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[notifications.topic.topic_arn])
        )
        notifications.key.grant(role, "kms:Decrypt", "kms:GenerateDataKey")
        if names:
            # The retry tick reads whether a retraining alarm is still in ALARM (a missed event or a
            # promoted version that is no better must not stall retraining): these alarms only.
            stack = Stack.of(self)
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["cloudwatch:DescribeAlarms"],
                    resources=[
                        stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name=name,
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                        for name in names
                    ],
                )
            )

        # No retries by Lambda: a failed run is recorded and releases its lock, and the reasons runs
        # fail (data, gate inputs, a missing grant) are not fixed by running again. The event goes
        # to the failure queue, for the schedule, the alarm rule and the admin's request alike.
        self.failures = self.retrain.run_asynchronously(retry_attempts=0, max_event_age=Duration.hours(1))
        target = self.retrain.rule_target(Duration.hours(1))
        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"Scheduled retraining of {config.model_name}",
            schedule=events.Schedule.expression(config.spec.retraining.schedule),
            targets=[target],
        )
        self.on_alarm = None
        self.retry = None
        if names:
            # ALARM opens the retraining condition and starts a run; OK closes it.
            self.on_alarm = events.Rule(
                self,
                "OnAlarm",
                description=f"Retrain {config.model_name} when a model-quality alarm fires (and stop on OK)",
                event_pattern=events.EventPattern(
                    source=["aws.cloudwatch"],
                    detail_type=[ALARM_STATE_CHANGE],
                    detail={"alarmName": names, "state": {"value": ["ALARM", "OK"]}},
                ),
                targets=[target],
            )
            # The retry tick, at the monitor's cadence: attempts again while retraining is wanted
            # (a rejected candidate or a skipped run is not the end of it).
            self.retry = events.Rule(
                self,
                "RetrySchedule",
                description=f"Retry retraining of {config.model_name} while a retraining alarm holds",
                schedule=events.Schedule.expression(config.spec.monitoring.schedule),
                targets=[
                    self.retrain.rule_target(
                        Duration.hours(1),
                        events.RuleTargetInput.from_object(
                            {
                                "version": "0",
                                "id": events.EventField.event_id,
                                "detail-type": RETRAIN_RETRY_DETAIL_TYPE,
                                "source": RETRAIN_REQUEST_SOURCE,
                                "time": events.EventField.time,
                                "resources": [],
                                "detail": {},
                            }
                        ),
                    )
                ],
            )
