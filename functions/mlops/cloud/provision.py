"""Create the resources of `mlops.shared.resources` where no CDK runs: moto in tests and the local stack.

Returns the environment the functions need to find them, the same variables the CDK
stack sets on each function.
"""

from __future__ import annotations

import json
from typing import Any

from mlops.shared.resources import (
    ALL_RESOURCES,
    MODEL_NAME_ENV,
    Resource,
    ResourceKind,
)


def _create_table(dynamodb: Any, res: Resource, name: str) -> None:
    keys = [{"AttributeName": res.partition_key, "KeyType": "HASH"}]
    attrs = [{"AttributeName": res.partition_key, "AttributeType": "S"}]
    if res.sort_key:
        keys.append({"AttributeName": res.sort_key, "KeyType": "RANGE"})
        attrs.append({"AttributeName": res.sort_key, "AttributeType": "S"})
    dynamodb.create_table(
        TableName=name, KeySchema=keys, AttributeDefinitions=attrs, BillingMode="PAY_PER_REQUEST"
    )
    if res.ttl_attribute:
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": res.ttl_attribute},
        )


def _create_queue(sqs: Any, res: Resource, name: str) -> str:
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {
        "VisibilityTimeout": str(res.visibility_timeout_s or 30),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(res.max_receive_count or 5)}
        ),
    }
    return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])


def create_resources(clients: dict[str, Any], prefix: str, model_name: str) -> dict[str, str]:
    """Create every resource; `clients` maps service name ("s3", "dynamodb", "sqs", "sns") to a client."""
    env = {MODEL_NAME_ENV: model_name}
    for res in ALL_RESOURCES:
        name = res.physical_name(prefix)
        if res.kind is ResourceKind.BUCKET:
            clients["s3"].create_bucket(Bucket=name)
            env[res.env_var] = name
        elif res.kind is ResourceKind.TABLE:
            _create_table(clients["dynamodb"], res, name)
            env[res.env_var] = name
        elif res.kind is ResourceKind.QUEUE:
            env[res.env_var] = _create_queue(clients["sqs"], res, name)
        elif res.kind is ResourceKind.TOPIC:
            env[res.env_var] = str(clients["sns"].create_topic(Name=name)["TopicArn"])
    return env
