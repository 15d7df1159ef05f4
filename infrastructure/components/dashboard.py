"""One CloudWatch dashboard per stage: model quality vs thresholds, drift, labels, traffic, health."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct
from mlops.shared.alarm_specs import DIM_FEATURE, DIM_MODEL, NAMESPACE, Metric, alarm_specs

from infrastructure.components.function import MlopsFunction
from infrastructure.config import StageConfig

WIDTH = 12
HEIGHT = 6


class Dashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        functions: list[MlopsFunction],
        predict: MlopsFunction,
        api: apigwv2.HttpApi,
    ) -> None:
        super().__init__(scope, construct_id)
        specs = {s.metric: s for s in alarm_specs(config.spec)}
        period = Duration.seconds(specs[Metric.METRIC_GAP].period_s)

        def model(metric: Metric, label: str, statistic: str = "Maximum") -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name=metric.value,
                dimensions_map={DIM_MODEL: config.model_name},
                statistic=statistic,
                period=period,
                label=label,
            )

        def threshold(metric: Metric) -> list[cloudwatch.HorizontalAnnotation]:
            spec = specs[metric]
            return [cloudwatch.HorizontalAnnotation(value=spec.threshold, label=f"alarm: {spec.name}")]

        quality = [
            cloudwatch.GraphWidget(
                title="Metric gap (test minus production) vs alarm threshold",
                left=[
                    model(Metric.METRIC_GAP, "measured gap"),
                    model(Metric.ESTIMATED_METRIC_GAP, "estimated gap (no labels)"),
                ],
                left_annotations=threshold(Metric.METRIC_GAP),
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title=f"{config.spec.primary_metric.value}: test set vs production",
                left=[
                    model(Metric.TEST_METRIC, "test"),
                    model(Metric.PRODUCTION_METRIC, "production"),
                    model(Metric.ESTIMATED_METRIC, "estimated"),
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
        ]
        drift = [
            cloudwatch.GraphWidget(
                title="Share of drifted features vs alarm threshold",
                left=[model(Metric.DRIFT_SHARE, "drift share")],
                left_annotations=threshold(Metric.DRIFT_SHARE),
                right=[model(Metric.PREDICTION_DRIFT, "prediction PSI")],
                right_annotations=threshold(Metric.PREDICTION_DRIFT),
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Per-feature drift (PSI)",
                left=[
                    cloudwatch.Metric(
                        namespace=NAMESPACE,
                        metric_name=Metric.FEATURE_DRIFT.value,
                        dimensions_map={DIM_MODEL: config.model_name, DIM_FEATURE: name},
                        statistic="Maximum",
                        period=period,
                        label=name,
                    )
                    for name in config.spec.feature_names
                ],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=config.spec.monitoring.psi_drift, label="drift"),
                    cloudwatch.HorizontalAnnotation(
                        value=config.spec.monitoring.psi_warning, label="warning"
                    ),
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
        ]
        traffic = [
            cloudwatch.GraphWidget(
                title="Labels and predictions per monitoring window",
                left=[
                    model(Metric.PREDICTION_COUNT, "predictions", "Sum"),
                    model(Metric.LABEL_COUNT, "labels", "Sum"),
                ],
                right=[model(Metric.LABEL_COVERAGE, "label coverage")],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Prediction volume (API requests, predict invocations)",
                left=[
                    api.metric_count(period=Duration.minutes(5), statistic="Sum", label="API requests"),
                    predict.function.metric_invocations(
                        period=Duration.minutes(5), statistic="Sum", label="predict invocations"
                    ),
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
        ]
        health = [
            cloudwatch.GraphWidget(
                title="Predict latency percentiles (ms)",
                left=[
                    predict.function.metric_duration(period=Duration.minutes(1), statistic=p, label=p)
                    for p in ("p50", "p90", "p99")
                ],
                right=[api.metric_latency(period=Duration.minutes(1), statistic="p99", label="API p99")],
                width=WIDTH,
                height=HEIGHT,
            ),
            cloudwatch.GraphWidget(
                title="Errors",
                left=[
                    fn.function.metric_errors(
                        period=Duration.minutes(5), statistic="Sum", label=fn.definition.key
                    )
                    for fn in functions
                ],
                right=[
                    api.metric_server_error(period=Duration.minutes(5), statistic="Sum", label="API 5xx"),
                    api.metric_client_error(period=Duration.minutes(5), statistic="Sum", label="API 4xx"),
                ],
                width=WIDTH,
                height=HEIGHT,
            ),
        ]
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{config.prefix}-{config.model_name}",
            widgets=[quality, drift, traffic, health],
        )
