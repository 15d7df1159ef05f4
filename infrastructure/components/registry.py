"""The DynamoDB tables of `mlops.shared.resources` (model registry, feedback index), with PITR."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct
from mlops.shared.resources import ALL_RESOURCES, FEEDBACK_TABLE, REGISTRY_TABLE, ResourceKind


class Registry(Construct):
    """One on-demand table per table resource; key schema and TTL come from the resource."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.tables: dict[str, dynamodb.Table] = {}
        for res in ALL_RESOURCES:
            if res.kind is not ResourceKind.TABLE:
                continue
            assert res.partition_key is not None, f"{res.logical_id} needs a partition key"
            self.tables[res.logical_id] = dynamodb.Table(
                self,
                res.logical_id,
                partition_key=dynamodb.Attribute(name=res.partition_key, type=dynamodb.AttributeType.STRING),
                sort_key=(
                    dynamodb.Attribute(name=res.sort_key, type=dynamodb.AttributeType.STRING)
                    if res.sort_key
                    else None
                ),
                time_to_live_attribute=res.ttl_attribute,
                # Traffic is spiky and small (a read per cold start, a write per promotion).
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                removal_policy=RemovalPolicy.RETAIN,
                # The registry's history is the audit trail: no API call or console slip deletes it.
                deletion_protection=True,
            )

    @property
    def registry(self) -> dynamodb.Table:
        return self.tables[REGISTRY_TABLE.logical_id]

    @property
    def feedback(self) -> dynamodb.Table:
        return self.tables[FEEDBACK_TABLE.logical_id]


# What readers of the registry call: the champion pointer and version records by key, history by query.
# Narrower than `Table.grant_read_data`, which adds Scan and the stream actions.
REGISTRY_READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query")


# What writers of the registry call besides: versions and history rows are put (in a transaction
# with the champion pointer, which is updated), the lock is a conditional put and update.
REGISTRY_WRITE_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem")
# The feedback index: look up, insert once, and take back an insert whose S3 write failed.
FEEDBACK_INDEX_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem")


def grant_registry_read(table: dynamodb.ITable, role: iam.IGrantable) -> None:
    table.grant(role, *REGISTRY_READ_ACTIONS)


def grant_registry_write(table: dynamodb.ITable, role: iam.IGrantable) -> None:
    """Read and change the registry; narrower than `grant_read_write_data` (no Scan, streams, deletes)."""
    table.grant(role, *REGISTRY_READ_ACTIONS, *REGISTRY_WRITE_ACTIONS)
