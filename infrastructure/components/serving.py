"""The HTTP API and the functions behind it: predict, feedback and the registry admin routes."""

from __future__ import annotations

import json

import jsii
from aws_cdk import CfnOutput
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from mlops.cloud.logstore import LATEST_REPORTS_PREFIX, REPORTS_PREFIX
from mlops.model.bundle import model_prefix
from mlops.shared.resources import (
    ARTIFACT_BUCKET,
    FEEDBACK_TABLE,
    PREDICTION_QUEUE,
    REGISTRY_TABLE,
    REPORT_BUCKET,
    RETRAIN_FUNCTION_ENV,
)
from mlops.shared.routes import ROUTES as API_ROUTES

from infrastructure.components.function import MlopsFunction, log_group, stage_function
from infrastructure.components.prediction_log import PredictionLog
from infrastructure.components.registry import (
    FEEDBACK_INDEX_ACTIONS,
    Registry,
    grant_registry_read,
    grant_registry_write,
)
from infrastructure.components.storage import Storage, grant_objects
from infrastructure.config import ArtifactSources, StageConfig
from infrastructure.nag import acknowledge, logical_id

Route = tuple[apigwv2.HttpMethod, str]

# Routes for model consumers and for operators; each set gets its own invoke policy.
# Routes come from the one table the local gateway uses too (`mlops.shared.routes.ROUTES`).
_FUNCTION_KEYS = {"predict": "Predict", "feedback": "Feedback"}
CLIENT_ROUTES: dict[str, tuple[Route, ...]] = {
    key: tuple((apigwv2.HttpMethod(r.method), r.path) for r in API_ROUTES if r.function == name)
    for name, key in _FUNCTION_KEYS.items()
}
ADMIN_ROUTES: tuple[Route, ...] = tuple((apigwv2.HttpMethod(r.method), r.path) for r in API_ROUTES if r.admin)

# One JSON object per request: who called (the IAM principal), what, how it went, how long.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTime",
        "caller": "$context.identity.userArn",
        "sourceIp": "$context.identity.sourceIp",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "responseLatency": "$context.responseLatency",
        "integrationLatency": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
        "authorizerError": "$context.authorizer.error",
    }
)


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(ACCESS_LOG_FORMAT)


def _arn_path(path: str) -> str:
    """execute-api ARNs cannot name a path parameter: `{version}` matches as `*`."""
    return "/".join("*" if part.startswith("{") else part for part in path.split("/"))


class Serving(Construct):
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
        prediction_log: PredictionLog,
        retrain_function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)

        def make(key: str, values: dict[str, str]) -> MlopsFunction:
            return stage_function(
                self, key, config=config, sources=sources, serving_layer=serving_layer, values=values
            )

        self.predict = make(
            "Predict",
            {
                REGISTRY_TABLE.env_var: registry.registry.table_name,
                ARTIFACT_BUCKET.env_var: storage.artifacts.bucket_name,
                PREDICTION_QUEUE.env_var: prediction_log.queue.queue_url,
                REPORT_BUCKET.env_var: storage.reports.bucket_name,
                "MLOPS_CHAMPION_REFRESH_SECONDS": str(config.champion_refresh_seconds),
            },
        )
        # Predict reads the champion and its bundle, may show the latest report, and queues its log
        # records. It gets no write on the registry: serving can never change what is served.
        grant_objects(storage.artifacts, self.predict.role, (model_prefix(config.model_name),), read=True)
        # GET /model before the monitor's first run finds no summary: that must read as "none yet".
        grant_objects(
            storage.reports, self.predict.role, (LATEST_REPORTS_PREFIX,), read=True, reads_missing_keys=True
        )
        grant_registry_read(registry.registry, self.predict.role)
        prediction_log.queue.grant_send_messages(self.predict.role)

        self.feedback = make(
            "Feedback",
            {
                PREDICTION_QUEUE.env_var: prediction_log.queue.queue_url,
                FEEDBACK_TABLE.env_var: registry.feedback.table_name,
            },
        )
        # Feedback is queued with the prediction logs; the log writer writes it to S3 in batches.
        prediction_log.queue.grant_send_messages(self.feedback.role)
        registry.feedback.grant(self.feedback.role, *FEEDBACK_INDEX_ACTIONS)

        self.admin = make(
            "Admin",
            {
                REGISTRY_TABLE.env_var: registry.registry.table_name,
                ARTIFACT_BUCKET.env_var: storage.artifacts.bucket_name,
                REPORT_BUCKET.env_var: storage.reports.bucket_name,
                RETRAIN_FUNCTION_ENV: retrain_function.function_name,
            },
        )
        grant_registry_write(registry.registry, self.admin.role)
        # Lineage (verified bundle metadata) and production figures for GET /models/{version}.
        grant_objects(storage.artifacts, self.admin.role, (model_prefix(config.model_name),), read=True)
        grant_objects(storage.reports, self.admin.role, (REPORTS_PREFIX,), read=True, reads_missing_keys=True)
        # The unqualified ARN only: admin starts the current code, never an old version.
        self.admin.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[retrain_function.function_arn])
        )

        self.access_logs = log_group(self, "AccessLogs", config.log_retention_days)
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            api_name=f"{config.prefix}-api",
            description=f"Predictions, feedback and registry admin for {config.model_name} ({config.stage})",
            # Every route is signed with SigV4; who may call which route is an IAM policy below.
            default_authorizer=authorizers.HttpIamAuthorizer(),
            create_default_stage=False,
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            access_log_settings=_AccessLogSettings(self.access_logs),
            throttle=apigwv2.ThrottleSettings(
                rate_limit=config.api_rate_limit, burst_limit=config.api_burst_limit
            ),
        )

        client_arns: list[str] = []
        for key, routes in CLIENT_ROUTES.items():
            target = self.predict if key == "Predict" else self.feedback
            integration = integrations.HttpLambdaIntegration(f"{key}Integration", target.function)
            for method, path in routes:
                self.api.add_routes(path=path, methods=[method], integration=integration)
                client_arns.append(self.api.arn_for_execute_api(method.value, _arn_path(path), "$default"))
        admin_integration = integrations.HttpLambdaIntegration("AdminIntegration", self.admin.function)
        admin_arns: list[str] = []
        wildcard_routes: list[str] = []
        for method, path in ADMIN_ROUTES:
            self.api.add_routes(path=path, methods=[method], integration=admin_integration)
            admin_arns.append(self.api.arn_for_execute_api(method.value, _arn_path(path), "$default"))
            if "{" in path:
                wildcard_routes.append(f"{method.value}{_arn_path(path)}")

        self.client_policy = iam.ManagedPolicy(
            self,
            "ClientPolicy",
            description=f"Call the {config.prefix} prediction and feedback routes",
            statements=[iam.PolicyStatement(actions=["execute-api:Invoke"], resources=client_arns)],
        )
        self.admin_policy = iam.ManagedPolicy(
            self,
            "AdminPolicy",
            description=f"Call the {config.prefix} registry admin routes (promote, rollback, retrain)",
            statements=[iam.PolicyStatement(actions=["execute-api:Invoke"], resources=admin_arns)],
        )
        api_ref = logical_id(self.api)
        for route in wildcard_routes:
            acknowledge(
                self.admin_policy,
                "IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
                f"<{api_ref}>/$default/{route}]",
                "execute-api ARNs cannot name a path parameter: '*' stands for {version} of this one "
                "route and method, not for other routes.",
            )
        CfnOutput(self, "ApiUrl", value=self.api.api_endpoint)
        CfnOutput(self, "ClientPolicyArn", value=self.client_policy.managed_policy_arn)
        CfnOutput(self, "AdminPolicyArn", value=self.admin_policy.managed_policy_arn)
