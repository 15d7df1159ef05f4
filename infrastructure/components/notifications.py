"""The alarm topic of `mlops.shared.resources`: KMS-encrypted, SSL-only, with an optional e-mail
subscriber."""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infrastructure.config import StageConfig

CLOUDWATCH = "cloudwatch.amazonaws.com"


def alarm_arn_pattern(config: StageConfig) -> str:
    """Every alarm this stage creates: their names all start with the stage prefix."""
    return f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:{config.prefix}-*"


class Notifications(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        # A customer managed key: CloudWatch alarms cannot publish to a topic under the AWS managed
        # SNS key, because its key policy cannot be extended to the CloudWatch service.
        self.key = kms.Key(
            self,
            "TopicKey",
            description=f"Encrypts the {config.prefix} alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # Only this account's alarms of this stage may use the key and publish to the topic
        # (confused-deputy protection: CloudWatch acts for whichever alarm names the topic).
        alarms = alarm_arn_pattern(config)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisStage",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": alarms},
                },
            )
        )
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{config.prefix} alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        # `enforce_ssl` writes a topic policy that replaces SNS's default one, so CloudWatch is
        # admitted explicitly, next to the deny-non-TLS statement.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisStage",
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": alarms},
                },
            )
        )
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
