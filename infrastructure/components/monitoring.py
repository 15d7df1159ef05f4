"""The monitor function on its schedule, and the Glue table plus Athena workgroup over the prediction logs."""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_athena as athena
from aws_cdk import aws_events as events
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from mlops.bundle import model_prefix
from mlops.logstore import (
    FEEDBACK_COLUMNS,
    FEEDBACK_PARTITION_KEYS,
    FEEDBACK_PREFIX,
    PREDICTION_PARTITION_KEYS,
    PREDICTIONS_PREFIX,
    REPORTS_PREFIX,
    Column,
    prediction_columns,
)
from mlops.resources import ARTIFACT_BUCKET, LOG_BUCKET, METRICS_NAMESPACE, REGISTRY_TABLE, REPORT_BUCKET

from infrastructure.components.function import stage_function
from infrastructure.components.registry import Registry, grant_registry_read
from infrastructure.components.storage import ATHENA_RESULTS_PREFIX, Storage, grant_objects
from infrastructure.config import ArtifactSources, StageConfig

JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
HIVE_TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
# The first day partition projection will look for; queries filter by dt, so an early start is free.
PROJECTION_START = "2024-01-01"


def _columns(columns: tuple[Column, ...]) -> list[glue.CfnTable.ColumnProperty]:
    return [glue.CfnTable.ColumnProperty(name=n, type=t, comment=c or None) for n, t, c in columns]


class Monitoring(Construct):
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
    ) -> None:
        super().__init__(scope, construct_id)
        self.monitor = stage_function(
            self,
            "Monitor",
            config=config,
            sources=sources,
            serving_layer=serving_layer,
            values={
                REGISTRY_TABLE.env_var: registry.registry.table_name,
                ARTIFACT_BUCKET.env_var: storage.artifacts.bucket_name,
                LOG_BUCKET.env_var: storage.logs.bucket_name,
                REPORT_BUCKET.env_var: storage.reports.bucket_name,
            },
        )
        role = self.monitor.role
        grant_objects(storage.logs, role, (PREDICTIONS_PREFIX, FEEDBACK_PREFIX), read=True)
        grant_objects(storage.artifacts, role, (model_prefix(config.model_name),), read=True)
        grant_objects(storage.reports, role, (REPORTS_PREFIX,), read=True, write=True)
        grant_registry_read(registry.registry, role)
        # Metrics go out as EMF log lines; PutMetricData is the fallback outside Lambda's log path.
        # The action has no resource-level permissions, so the namespace condition is the bound.
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            )
        )
        # A run covers the window that ends at its event's time, so a retry after a transient
        # failure recomputes the same window; one retry, then the event goes to the failure queue.
        self.failures = self.monitor.run_asynchronously(retry_attempts=1, max_event_age=Duration.hours(1))
        self.schedule = events.Rule(
            self,
            "Schedule",
            description=f"Drift and performance monitoring of {config.model_name}",
            schedule=events.Schedule.expression(config.spec.monitoring.schedule),
            targets=[self.monitor.rule_target(Duration.hours(1))],
        )
        self._analytics(config, storage)

    def _analytics(self, config: StageConfig, storage: Storage) -> None:
        self.database_name = config.prefix.replace("-", "_")
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name, description=f"Prediction and feedback logs of {config.prefix}"
            ),
        )
        bucket = storage.logs.bucket_name
        predictions_location = f"s3://{bucket}/{PREDICTIONS_PREFIX}"
        self.predictions_table = glue.CfnTable(
            self,
            "PredictionsTable",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name="predictions",
                description="One row per served prediction (mlops.logstore.PredictionRecord)",
                table_type="EXTERNAL_TABLE",
                # Partition projection: Athena computes partitions from these ranges, so no crawler
                # and no MSCK REPAIR are needed as new hours arrive. Versions are injected: a query
                # names the versions it reads (a range would project every version up to the
                # bound, 16.8 million partitions a week for 1..100000, nearly all empty).
                parameters={
                    "classification": "json",
                    "projection.enabled": "true",
                    "projection.model_version.type": "injected",
                    "projection.dt.type": "date",
                    "projection.dt.format": "yyyy-MM-dd",
                    "projection.dt.range": f"{PROJECTION_START},NOW",
                    "projection.dt.interval": "1",
                    "projection.dt.interval.unit": "DAYS",
                    "projection.hour.type": "integer",
                    "projection.hour.range": "0,23",
                    "projection.hour.digits": "2",
                    "storage.location.template": (
                        predictions_location + "model_version=${model_version}/dt=${dt}/hour=${hour}/"
                    ),
                },
                partition_keys=_columns(PREDICTION_PARTITION_KEYS),
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=predictions_location,
                    input_format=TEXT_INPUT,
                    output_format=HIVE_TEXT_OUTPUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=JSON_SERDE),
                    columns=_columns(prediction_columns(config.spec)),
                ),
            ),
        )
        self.predictions_table.node.add_dependency(self.database)
        feedback_location = f"s3://{bucket}/{FEEDBACK_PREFIX}"
        self.feedback_table = glue.CfnTable(
            self,
            "FeedbackTable",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name="feedback",
                description="Ground truth joined to predictions by prediction_id (logstore.FeedbackRecord)",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "classification": "json",
                    "projection.enabled": "true",
                    "projection.dt.type": "date",
                    "projection.dt.format": "yyyy-MM-dd",
                    "projection.dt.range": f"{PROJECTION_START},NOW",
                    "projection.dt.interval": "1",
                    "projection.dt.interval.unit": "DAYS",
                    "storage.location.template": feedback_location + "dt=${dt}/",
                },
                partition_keys=_columns(FEEDBACK_PARTITION_KEYS),
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=feedback_location,
                    input_format=TEXT_INPUT,
                    output_format=HIVE_TEXT_OUTPUT,
                    serde_info=glue.CfnTable.SerdeInfoProperty(serialization_library=JSON_SERDE),
                    columns=_columns(FEEDBACK_COLUMNS),
                ),
            ),
        )
        self.feedback_table.node.add_dependency(self.database)
        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=f"{config.prefix}-analytics",
            description=f"SQL over the {config.model_name} prediction logs",
            # Deleting the stack should not fail because someone ran a query.
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                # A runaway query stops at 10 GB scanned (about 5 US cents).
                bytes_scanned_cutoff_per_query=10 * 1024**3,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{storage.reports.bucket_name}/{ATHENA_RESULTS_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )
