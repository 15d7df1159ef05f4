"""The path of a prediction record from the predict function to S3: queue, dead-letter queue, log writer."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from mlops.cloud.logstore import FEEDBACK_PREFIX, LATE_PREFIX, PREDICTIONS_PREFIX
from mlops.shared.resources import (
    LOG_BUCKET,
    LOG_WRITER_BATCH_SIZE,
    LOG_WRITER_BATCHING_WINDOW_S,
    PREDICTION_QUEUE,
)

from infrastructure.components.function import stage_function
from infrastructure.components.storage import Storage, grant_objects
from infrastructure.config import ArtifactSources, StageConfig


class PredictionLog(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        sources: ArtifactSources,
        serving_layer: lambda_.ILayerVersion,
        storage: Storage,
    ) -> None:
        super().__init__(scope, construct_id)
        res = PREDICTION_QUEUE
        assert res.visibility_timeout_s and res.max_receive_count
        self.dead_letter_queue = sqs.Queue(
            self,
            f"{res.logical_id}Dlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # The longest SQS allows: time to find out why records failed and redrive them.
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            res.logical_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(res.visibility_timeout_s),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=res.max_receive_count
            ),
        )
        self.writer = stage_function(
            self,
            "LogWriter",
            config=config,
            sources=sources,
            serving_layer=serving_layer,
            values={LOG_BUCKET.env_var: storage.logs.bucket_name},
        )
        # A late object's marker is written first; feedback comes on the queue too (mlops.serving.log_writer).
        grant_objects(
            storage.logs, self.writer.role, (PREDICTIONS_PREFIX, LATE_PREFIX, FEEDBACK_PREFIX), write=True
        )
        self.writer.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                # Bigger objects mean fewer S3 PUTs and fewer files for the monitor and Athena to open,
                # and compress better; the window bounds how late a record reaches S3.
                batch_size=LOG_WRITER_BATCH_SIZE,
                max_batching_window=Duration.seconds(LOG_WRITER_BATCHING_WINDOW_S),
                report_batch_item_failures=True,
            )
        )
