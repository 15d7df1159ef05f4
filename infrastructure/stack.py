"""The serverless-mlops stack for one stage, composed of one construct per concern."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infrastructure.components.cloudwatch_alarms import Alarms
from infrastructure.components.dashboard import Dashboard
from infrastructure.components.function import RUNTIME
from infrastructure.components.monitoring import Monitoring
from infrastructure.components.notifications import Notifications
from infrastructure.components.prediction_log import PredictionLog
from infrastructure.components.registry import Registry
from infrastructure.components.serving import Serving
from infrastructure.components.storage import Storage
from infrastructure.components.training import Training
from infrastructure.config import ArtifactSources, StageConfig
from infrastructure.nag import acknowledge


class MlopsStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        sources: ArtifactSources,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"serverless-mlops: serve, monitor and retrain {config.model_name} ({config.stage})",
            **kwargs,
        )
        self.config = config
        Tags.of(self).add("project", "serverless-mlops")
        Tags.of(self).add("stage", config.stage)
        Tags.of(self).add("model", config.model_name)

        serving_layer = lambda_.LayerVersion(
            self,
            "ServingLayer",
            code=lambda_.Code.from_asset(str(sources.serving_layer_dir)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description="onnxruntime, numpy, Powertools, pydantic (layers/serving/requirements.txt)",
        )
        shared: dict[str, Any] = {"config": config, "sources": sources, "serving_layer": serving_layer}
        self.storage = Storage(self, "Storage", config=config)
        self.registry = Registry(self, "Registry")
        self.notifications = Notifications(self, "Notifications", config=config)
        self.prediction_log = PredictionLog(self, "PredictionLog", storage=self.storage, **shared)
        self.training = Training(
            self,
            "Training",
            storage=self.storage,
            registry=self.registry,
            notifications=self.notifications,
            **shared,
        )
        self.serving = Serving(
            self,
            "Serving",
            storage=self.storage,
            registry=self.registry,
            prediction_log=self.prediction_log,
            retrain_function=self.training.retrain.function,
            **shared,
        )
        self.monitoring = Monitoring(
            self, "Monitoring", storage=self.storage, registry=self.registry, **shared
        )
        self.functions = [
            self.serving.predict,
            self.serving.feedback,
            self.prediction_log.writer,
            self.serving.admin,
            self.monitoring.monitor,
            self.training.retrain,
        ]
        self.alarms = Alarms(
            self,
            "Alarms",
            config=config,
            topic=self.notifications.topic,
            functions=self.functions,
            predict=self.serving.predict,
            api=self.serving.api,
            prediction_queue=self.prediction_log.queue,
            dead_letter_queues={
                "PredictionLog": self.prediction_log.dead_letter_queue,
                "Monitor": self.monitoring.failures,
                "Retrain": self.training.failures,
            },
            async_functions=[self.monitoring.monitor, self.training.retrain],
            rules={
                "MonitorSchedule": self.monitoring.schedule,
                "RetrainSchedule": self.training.schedule,
                **({"RetrainOnAlarm": self.training.on_alarm} if self.training.on_alarm else {}),
                **({"RetrainRetry": self.training.retry} if self.training.retry else {}),
            },
        )
        self.dashboard = Dashboard(
            self,
            "Dashboard",
            config=config,
            functions=self.functions,
            predict=self.serving.predict,
            api=self.serving.api,
        )
        for name, value in (
            ("ArtifactBucket", self.storage.artifacts.bucket_name),
            ("LogBucket", self.storage.logs.bucket_name),
            ("ReportBucket", self.storage.reports.bucket_name),
            ("RegistryTable", self.registry.registry.table_name),
            ("AlarmTopicArn", self.notifications.topic.topic_arn),
            ("AthenaWorkgroup", str(self.monitoring.workgroup.name)),
            ("GlueDatabase", self.monitoring.database_name),
            # Where `mlops logs replay` reads the records the predict function could not queue.
            ("PredictLogGroup", self.serving.predict.log_group.log_group_name),
        ):
            CfnOutput(self, name, value=value)
        acknowledge_findings(self)


def acknowledge_findings(stack: MlopsStack) -> None:
    for fn in stack.functions:
        reason = (
            "X-Ray trace upload (xray:PutTraceSegments, PutTelemetryRecords) has no resource-level "
            "permissions, so active tracing needs Resource '*'."
        )
        if fn is stack.monitoring.monitor:
            reason += (
                " cloudwatch:PutMetricData has none either; it is bound by a condition on the "
                "ServerlessMLOps namespace instead."
            )
        acknowledge(fn.role, "IAM5[Resource::*]", reason)
        if not fn.definition.layer.ships_as_image:
            acknowledge(
                fn.function,
                "L1",
                "Python 3.12 on purpose: the serving layer's binary wheels (onnxruntime, numpy, "
                "pydantic-core) are built for cp312 by layers/build.py; runtime and layer move together.",
            )
