"""CloudWatch alarms: one per `mlops.shared.alarm_specs.alarm_specs` and `operational_alarm_specs` entry
(bound here to the stack's functions, queues and rules) plus function errors, throttles, latency and API 5xx.
Every alarm tells the topic when it fires and when it is OK again."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from mlops.shared.alarm_specs import (
    DIM_MODEL,
    NAMESPACE,
    AlarmSpec,
    Comparison,
    MissingData,
    OperationalAlarmSpec,
    Subject,
    alarm_specs,
    operational_alarm_specs,
)
from mlops.shared.observability import failure_dimensions

from infrastructure.components.function import MlopsFunction
from infrastructure.config import StageConfig

COMPARISON = {
    Comparison.GREATER: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
    Comparison.GREATER_OR_EQUAL: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    Comparison.LESS: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
    Comparison.LESS_OR_EQUAL: cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
}
MISSING = {
    MissingData.MISSING: cloudwatch.TreatMissingData.MISSING,
    MissingData.BREACHING: cloudwatch.TreatMissingData.BREACHING,
    MissingData.NOT_BREACHING: cloudwatch.TreatMissingData.NOT_BREACHING,
    MissingData.IGNORE: cloudwatch.TreatMissingData.IGNORE,
}

# Operational thresholds. p99 above 1 s on predict means cold starts or a model too big for its
# memory: users notice before any error shows. A few 5xx in five minutes are retried by clients;
# a steady stream is an outage.
PREDICT_P99_MS = 1000
API_5XX_PER_5_MIN = 5
FIVE_MINUTES = Duration.minutes(5)


def model_metric(config: StageConfig, spec: AlarmSpec) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=spec.metric.value,
        dimensions_map={DIM_MODEL: config.model_name},
        statistic=spec.statistic,
        period=Duration.seconds(spec.period_s),
    )


class Alarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        topic: sns.ITopic,
        functions: list[MlopsFunction],
        predict: MlopsFunction,
        api: apigwv2.HttpApi,
        prediction_queue: sqs.IQueue,
        dead_letter_queues: dict[str, sqs.IQueue],
        async_functions: list[MlopsFunction],
        rules: dict[str, events.IRule],
    ) -> None:
        super().__init__(scope, construct_id)
        self.action = actions.SnsAction(topic)
        self.model_alarms: dict[str, cloudwatch.Alarm] = {}
        for spec in alarm_specs(config.spec):
            self.model_alarms[spec.name] = self._notify(
                cloudwatch.Alarm(
                    self,
                    spec.name,
                    alarm_name=spec.alarm_name(config.prefix, config.model_name),
                    alarm_description=f"[{spec.severity.value}] {spec.description}",
                    metric=model_metric(config, spec),
                    threshold=spec.threshold,
                    comparison_operator=COMPARISON[spec.comparison],
                    evaluation_periods=spec.evaluation_periods,
                    datapoints_to_alarm=spec.datapoints_to_alarm,
                    treat_missing_data=MISSING[spec.treat_missing_data],
                )
            )

        name = f"{config.prefix}-{config.model_name}"
        self.operational: list[cloudwatch.Alarm] = []
        for fn in functions:
            key = fn.definition.key
            self._operational(
                f"{key}Errors",
                f"{name}-{key}-Errors",
                f"[critical] The {key} function raised errors",
                fn.function.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                threshold=0,
            )
            self._operational(
                f"{key}Throttles",
                f"{name}-{key}-Throttles",
                f"[warning] The {key} function was throttled (concurrency limit reached)",
                fn.function.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
                threshold=0,
            )
        self._operational(
            "PredictLatencyP99",
            f"{name}-Predict-LatencyP99",
            f"[warning] Predict p99 duration above {PREDICT_P99_MS} ms for 3 of 5 minutes",
            predict.function.metric_duration(period=Duration.minutes(1), statistic="p99"),
            threshold=PREDICT_P99_MS,
            evaluation_periods=5,
            datapoints_to_alarm=3,
        )
        self._operational(
            "Api5xx",
            f"{name}-Api-5xx",
            f"[critical] More than {API_5XX_PER_5_MIN} server errors from the API in five minutes",
            api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
            threshold=API_5XX_PER_5_MIN,
        )
        # What each operational spec's dimensions name in this stack: (resource label, dimensions).
        subjects: dict[Subject, list[tuple[str | None, dict[str, str]]]] = {
            Subject.MODEL: [(None, failure_dimensions(config.model_name))],
            Subject.PREDICTION_QUEUE: [(None, {"QueueName": prediction_queue.queue_name})],
            Subject.DEAD_LETTER_QUEUES: [
                (k, {"QueueName": q.queue_name}) for k, q in dead_letter_queues.items()
            ],
            Subject.ASYNC_FUNCTIONS: [
                (fn.definition.key, {"FunctionName": fn.function.function_name}) for fn in async_functions
            ],
            Subject.RULES: [(k, {"RuleName": rule.rule_name}) for k, rule in rules.items()],
        }
        self.operational_by_name: dict[str, cloudwatch.Alarm] = {}
        for op in operational_alarm_specs():
            for resource, dimensions in subjects[op.subject]:
                alarm_name = op.alarm_name(config.prefix, config.model_name, resource)
                self.operational_by_name[alarm_name] = self._from_operational_spec(
                    op, resource, dimensions, alarm_name
                )

    def _from_operational_spec(
        self, op: OperationalAlarmSpec, resource: str | None, dimensions: dict[str, str], alarm_name: str
    ) -> cloudwatch.Alarm:
        assert set(dimensions) == set(op.dimensions), f"{op.name}: dimensions {sorted(dimensions)}"
        # The prediction log's dead-letter alarm keeps the id it had, so an update does not replace it.
        construct_id = (
            "DeadLetters" if (resource, op.name) == ("PredictionLog", "DeadLetters") else alarm_name
        )
        return self._notify(
            cloudwatch.Alarm(
                self,
                construct_id,
                alarm_name=alarm_name,
                alarm_description=f"[{op.severity.value}] {op.description}",
                metric=cloudwatch.Metric(
                    namespace=op.namespace,
                    metric_name=op.metric_name,
                    dimensions_map=dimensions,
                    statistic=op.statistic,
                    period=Duration.seconds(op.period_s),
                ),
                threshold=op.threshold,
                comparison_operator=COMPARISON[op.comparison],
                evaluation_periods=op.evaluation_periods,
                datapoints_to_alarm=op.datapoints_to_alarm,
                treat_missing_data=MISSING[op.treat_missing_data],
            )
        )

    def _notify(self, alarm: cloudwatch.Alarm) -> cloudwatch.Alarm:
        alarm.add_alarm_action(self.action)
        alarm.add_ok_action(self.action)
        return alarm

    def _operational(
        self,
        construct_id: str,
        alarm_name: str,
        description: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        evaluation_periods: int = 1,
        datapoints_to_alarm: int = 1,
    ) -> None:
        self.operational.append(
            self._notify(
                cloudwatch.Alarm(
                    self,
                    construct_id,
                    alarm_name=alarm_name,
                    alarm_description=description,
                    metric=metric,
                    threshold=threshold,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    evaluation_periods=evaluation_periods,
                    datapoints_to_alarm=datapoints_to_alarm,
                    # No invocations means no errors: quiet periods must not alarm.
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )
        )
