"""The monitor function on its schedule, and the Glue table plus Athena workgroup over the prediction logs."""

from __future__ import annotations

import base64
import json
import re

from aws_cdk import Aws, Duration
from aws_cdk import aws_athena as athena
from aws_cdk import aws_events as events
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct
from mlops.cloud.logstore import (
    FEEDBACK_PARTITION_KEYS,
    FEEDBACK_PREFIX,
    FEEDBACK_TABLE,
    LATE_PREFIX,
    PREDICTION_PARTITION_KEYS,
    PREDICTIONS_PREFIX,
    REPORTS_PREFIX,
    UNIQUE_PREDICTIONS_VIEW,
    Column,
    feedback_columns,
    prediction_columns,
    unique_predictions_sql,
)
from mlops.model.bundle import model_prefix
from mlops.model.spec import FeatureKind, ModelSpec
from mlops.shared.resources import (
    ARTIFACT_BUCKET,
    ATHENA_WORKGROUP_ENV,
    GLUE_DATABASE_ENV,
    LOG_BUCKET,
    METRICS_NAMESPACE,
    REGISTRY_TABLE,
    REPORT_BUCKET,
    SCAN_ENGINE_ENV,
)

from infrastructure.components.function import stage_function
from infrastructure.components.registry import Registry, grant_registry_read
from infrastructure.components.storage import ATHENA_RESULTS_PREFIX, Storage, grant_objects
from infrastructure.config import ArtifactSources, StageConfig

JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
HIVE_TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"
# The first day partition projection will look for; queries filter by dt, so an early start is free.
PROJECTION_START = "2024-01-01"

# Presto's names for the Hive types of the log tables (the view is stored in Presto's terms).
_PRESTO_TYPES = {"string": "varchar", "int": "integer", "double": "double", "array<string>": "array(varchar)"}


def _presto_field_name(name: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def unique_view_columns(spec: ModelSpec) -> list[tuple[str, str, str]]:
    """(name, Hive type, Presto type) of each column of the `predictions_unique` view, in order:
    the prediction table's columns, then its partition keys, typed alike."""
    row = ", ".join(
        f"{_presto_field_name(f.name)} {'double' if f.kind is FeatureKind.NUMERIC else 'varchar'}"
        for f in spec.features
    )
    return [
        (name, hive, f"row({row})" if name == "features" else _PRESTO_TYPES[hive])
        for name, hive, _ in (*prediction_columns(spec), *PREDICTION_PARTITION_KEYS)
    ]


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
            memory_mb=config.spec.monitoring.memory_mb,
        )
        role = self.monitor.role
        grant_objects(storage.logs, role, (PREDICTIONS_PREFIX, FEEDBACK_PREFIX, LATE_PREFIX), read=True)
        grant_objects(storage.artifacts, role, (model_prefix(config.model_name),), read=True)
        # The run history (reports/history/) is read before a first run wrote it: missing must be 404.
        grant_objects(
            storage.reports, role, (REPORTS_PREFIX,), read=True, write=True, reads_missing_keys=True
        )
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
        self._scan_engine(storage)

    def _scan_engine(self, storage: Storage) -> None:
        """Hours too big for the function are profiled by Athena in the stack's workgroup, with the
        calls of one query (start, wait, read) on that workgroup, the catalogue entries it reads,
        and the results prefix Athena writes as the caller; the log objects are already readable."""
        function, role = self.monitor.function, self.monitor.role
        function.add_environment(SCAN_ENGINE_ENV, "athena")
        function.add_environment(ATHENA_WORKGROUP_ENV, self.workgroup.name)
        function.add_environment(GLUE_DATABASE_ENV, self.database_name)
        prefix = f"arn:{Aws.PARTITION}:glue:{Aws.REGION}:{Aws.ACCOUNT_ID}"
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                ],
                resources=[
                    f"arn:{Aws.PARTITION}:athena:{Aws.REGION}:{Aws.ACCOUNT_ID}:workgroup/{self.workgroup.name}"
                ],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["glue:GetDatabase", "glue:GetTable"],
                resources=[
                    f"{prefix}:catalog",
                    f"{prefix}:database/{self.database_name}",
                    f"{prefix}:table/{self.database_name}/predictions",
                    f"{prefix}:table/{self.database_name}/{UNIQUE_PREDICTIONS_VIEW}",
                    # the label join of an hour Athena profiles reads the feedback table
                    f"{prefix}:table/{self.database_name}/{FEEDBACK_TABLE}",
                ],
            )
        )
        grant_objects(storage.reports, role, (ATHENA_RESULTS_PREFIX,), read=True, write=True)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation"],
                resources=[storage.reports.bucket_arn, storage.logs.bucket_arn],
            )
        )

    def _unique_predictions_view(self, spec: ModelSpec) -> glue.CfnTable:
        """`predictions_unique`: the predictions table with each prediction once, as every reader counts.

        SQS delivers at least once, so a prediction can sit in two objects of its partition; the
        view keeps the copy the monitor keeps (`mlops.cloud.logstore.unique_predictions_sql`). Athena
        stores a view in Glue as a Presto view: its SQL and column types, base64-encoded.
        """
        columns = unique_view_columns(spec)
        definition = {
            "originalSql": unique_predictions_sql(spec, f'"{self.database_name}"."predictions"'),
            "catalog": "awsdatacatalog",
            "schema": self.database_name,
            "columns": [{"name": name, "type": presto} for name, _, presto in columns],
        }
        encoded = base64.b64encode(json.dumps(definition).encode("utf-8")).decode("ascii")
        return glue.CfnTable(
            self,
            "UniquePredictionsView",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=UNIQUE_PREDICTIONS_VIEW,
                description="Each prediction once, whatever SQS redelivered (query this, not predictions)",
                table_type="VIRTUAL_VIEW",
                parameters={"presto_view": "true", "comment": "Presto View"},
                view_original_text=f"/* Presto View: {encoded} */",
                view_expanded_text="/* Presto View */",
                partition_keys=[],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[glue.CfnTable.ColumnProperty(name=name, type=hive) for name, hive, _ in columns],
                    serde_info=glue.CfnTable.SerdeInfoProperty(),
                ),
            ),
        )

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
                description="One row per served prediction (mlops.cloud.logstore.PredictionRecord)",
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
        self.unique_predictions_view = self._unique_predictions_view(config.spec)
        self.unique_predictions_view.node.add_dependency(self.predictions_table)
        feedback_location = f"s3://{bucket}/{FEEDBACK_PREFIX}"
        self.feedback_table = glue.CfnTable(
            self,
            "FeedbackTable",
            catalog_id=Aws.ACCOUNT_ID,
            database_name=self.database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=FEEDBACK_TABLE,
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
                    columns=_columns(feedback_columns(config.spec)),
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
