"""IAM evaluation of identity policies for calls made through boto3, as AWS does it.

moto's own enforcement (`INITIAL_NO_AUTH_ACTION_COUNT`) is too kind to test grants with: it
matches `Resource` only for S3 and SQS (every other call is checked against "*", so a grant on
one table would be refused), names CloudWatch actions `monitoring:*`, and evaluates `Condition`
only in trust policies. Here each call is turned into the IAM requests AWS authorizes for it
(action, resource ARN, condition keys, and the KMS calls SNS makes for an encrypted topic) and
judged against the role's statements: an explicit Deny wins, otherwise an Allow whose Action,
Resource and Condition all match is needed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import unquote, urlparse

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
PARTITION = "aws"

Context = Mapping[str, str]


@dataclass(frozen=True)
class AuthRequest:
    """One authorization AWS makes for a call: an action on a resource, with its condition keys."""

    action: str
    resource: str
    context: Context = field(default_factory=dict)

    def describe(self) -> str:
        keys = ", ".join(f"{k}={v!r}" for k, v in sorted(self.context.items()))
        return f"{self.action} on {self.resource}" + (f" ({keys})" if keys else "")


class UnmappedCall(Exception):
    """A call whose IAM action this module does not know yet: add it rather than guess."""


@cache
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(f"^{body}$", (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


def glob_match(glob: str, value: str, *, ignore_case: bool = False) -> bool:
    return _pattern(glob, ignore_case).match(value) is not None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


# Condition operators: (how one expected value matches the actual one, negated?).
_STRING_OPS = {
    "StringEquals": (lambda e, a: e == a, False),
    "StringNotEquals": (lambda e, a: e == a, True),
    "StringEqualsIgnoreCase": (lambda e, a: e.lower() == a.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda e, a: e.lower() == a.lower(), True),
    "StringLike": (lambda e, a: glob_match(e, a), False),
    "StringNotLike": (lambda e, a: glob_match(e, a), True),
    "ArnEquals": (lambda e, a: e == a, False),
    "ArnNotEquals": (lambda e, a: e == a, True),
    "ArnLike": (lambda e, a: glob_match(e, a), False),
    "ArnNotLike": (lambda e, a: glob_match(e, a), True),
    "Bool": (lambda e, a: str(e).lower() == str(a).lower(), False),
}


def condition_holds(operator: str, key: str, expected: Any, context: Context) -> bool:
    """One condition block entry, with IAM's rules for keys absent from the request."""
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    actual = {k.lower(): v for k, v in context.items()}.get(key.lower())
    if base == "Null":
        want_absent = str(expected).lower() == "true"
        return (actual is None) == want_absent
    if base not in _STRING_OPS or ":" in base:
        raise UnmappedCall(f"condition operator {operator} is not evaluated here; add it")
    match, negated = _STRING_OPS[base]
    if actual is None:
        # A missing key satisfies only the negated operators (and any ...IfExists).
        return if_exists or negated
    hit = any(match(str(e), str(actual)) for e in _as_list(expected))
    return not hit if negated else hit


def _matches(statement: Mapping[str, Any], request: AuthRequest) -> bool:
    if "Action" in statement:
        if not any(glob_match(a, request.action, ignore_case=True) for a in _as_list(statement["Action"])):
            return False
    elif any(glob_match(a, request.action, ignore_case=True) for a in _as_list(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(glob_match(r, request.resource) for r in _as_list(statement["Resource"])):
            return False
    elif any(glob_match(r, request.resource) for r in _as_list(statement["NotResource"])):
        return False
    for operator, block in (statement.get("Condition") or {}).items():
        for key, expected in block.items():
            if not condition_holds(operator, key, expected, request.context):
                return False
    return True


def is_allowed(statements: Sequence[Mapping[str, Any]], request: AuthRequest) -> bool:
    """Identity-policy evaluation in one account: explicit Deny, then Allow, else implicit deny."""
    matching = [s for s in statements if _matches(s, request)]
    if any(s["Effect"] == "Deny" for s in matching):
        return False
    return any(s["Effect"] == "Allow" for s in matching)


# --- calls -> authorization requests -------------------------------------------------------------


def _s3(operation: str, params: Mapping[str, Any]) -> list[AuthRequest]:
    bucket = params.get("Bucket", "")
    objects = {
        "GetObject": "s3:GetObject",
        "HeadObject": "s3:GetObject",
        "PutObject": "s3:PutObject",
        "DeleteObject": "s3:DeleteObject",
    }
    if operation in objects:
        return [AuthRequest(objects[operation], f"arn:{PARTITION}:s3:::{bucket}/{params['Key']}")]
    if operation in ("ListObjectsV2", "ListObjects"):
        context = {"s3:prefix": str(params.get("Prefix", ""))}
        if "Delimiter" in params:
            context["s3:delimiter"] = str(params["Delimiter"])
        return [AuthRequest("s3:ListBucket", f"arn:{PARTITION}:s3:::{bucket}", context)]
    if operation == "HeadBucket":
        return [AuthRequest("s3:ListBucket", f"arn:{PARTITION}:s3:::{bucket}")]
    if operation == "CopyObject":
        source = params["CopySource"]
        source = source if isinstance(source, str) else f"{source['Bucket']}/{source['Key']}"
        return [
            AuthRequest("s3:GetObject", f"arn:{PARTITION}:s3:::{unquote(source.lstrip('/'))}"),
            AuthRequest("s3:PutObject", f"arn:{PARTITION}:s3:::{bucket}/{params['Key']}"),
        ]
    raise UnmappedCall(f"s3.{operation}")


def table_arn(name: str, index: str | None = None) -> str:
    arn = name if name.startswith("arn:") else f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
    return f"{arn}/index/{index}" if index else arn


def _dynamodb(operation: str, params: Mapping[str, Any]) -> list[AuthRequest]:
    single = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "DescribeTable"}
    if operation in single:
        index = params.get("IndexName") if operation in ("Query", "Scan") else None
        return [AuthRequest(f"dynamodb:{operation}", table_arn(params["TableName"], index))]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [AuthRequest(f"dynamodb:{operation}", table_arn(t)) for t in params["RequestItems"]]
    if operation == "TransactWriteItems":
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        return [
            AuthRequest(f"dynamodb:{kinds[kind]}", table_arn(body["TableName"]))
            for item in params["TransactItems"]
            for kind, body in item.items()
        ]
    if operation == "TransactGetItems":
        return [
            AuthRequest("dynamodb:GetItem", table_arn(i["Get"]["TableName"])) for i in params["TransactItems"]
        ]
    raise UnmappedCall(f"dynamodb.{operation}")


def queue_arn(url_or_name: str) -> str:
    name = urlparse(url_or_name).path.rstrip("/").split("/")[-1] if "/" in url_or_name else url_or_name
    return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{name}"


def _sqs(operation: str, params: Mapping[str, Any]) -> list[AuthRequest]:
    actions = {
        "SendMessage": "SendMessage",
        "SendMessageBatch": "SendMessage",
        "ReceiveMessage": "ReceiveMessage",
        "DeleteMessage": "DeleteMessage",
        "DeleteMessageBatch": "DeleteMessage",
        "ChangeMessageVisibility": "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
        "GetQueueAttributes": "GetQueueAttributes",
    }
    if operation in actions:
        return [AuthRequest(f"sqs:{actions[operation]}", queue_arn(params["QueueUrl"]))]
    if operation == "GetQueueUrl":
        return [AuthRequest("sqs:GetQueueUrl", queue_arn(params["QueueName"]))]
    raise UnmappedCall(f"sqs.{operation}")


def _sns(operation: str, params: Mapping[str, Any], topic_keys: Mapping[str, str]) -> list[AuthRequest]:
    if operation == "Publish":
        topic = params.get("TopicArn") or params["TargetArn"]
        out = [AuthRequest("sns:Publish", topic)]
        key = topic_keys.get(topic)
        if key:
            # SNS encrypts with the caller's permissions: publishing to an SSE-KMS topic needs both.
            out += [AuthRequest("kms:GenerateDataKey", key), AuthRequest("kms:Decrypt", key)]
        return out
    raise UnmappedCall(f"sns.{operation}")


def _cloudwatch(operation: str, params: Mapping[str, Any]) -> list[AuthRequest]:
    if operation == "PutMetricData":
        return [AuthRequest("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": params["Namespace"]})]
    if operation in ("GetMetricStatistics", "GetMetricData", "ListMetrics", "DescribeAlarms"):
        return [AuthRequest(f"cloudwatch:{operation}", "*")]
    raise UnmappedCall(f"cloudwatch.{operation}")


def function_arn(name: str, qualifier: str | None = None) -> str:
    arn = name if name.startswith("arn:") else f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def _lambda(operation: str, params: Mapping[str, Any]) -> list[AuthRequest]:
    if operation in ("Invoke", "InvokeAsync"):
        return [
            AuthRequest(
                "lambda:InvokeFunction", function_arn(params["FunctionName"], params.get("Qualifier"))
            )
        ]
    raise UnmappedCall(f"lambda.{operation}")


def _events(operation: str, params: Mapping[str, Any]) -> list[AuthRequest]:
    if operation == "PutEvents":
        buses = {e.get("EventBusName") or "default" for e in params["Entries"]}
        return [
            AuthRequest(
                "events:PutEvents",
                bus
                if bus.startswith("arn:")
                else f"arn:{PARTITION}:events:{REGION}:{ACCOUNT}:event-bus/{bus}",
            )
            for bus in sorted(buses)
        ]
    raise UnmappedCall(f"events.{operation}")


# Query id -> workgroup, recorded when a query starts: the later calls about a query name only its id,
# and AWS authorizes them on the query's workgroup.
QUERY_WORKGROUPS: dict[str, str] = {}
# What Athena reads of the catalogue for a relation: a view's definition and the tables it selects from
# (the `predictions_unique` view of infrastructure/components/monitoring.py reads `predictions`).
VIEW_TABLES = {"predictions_unique": ("predictions",)}
_RELATION = re.compile(r'"([A-Za-z0-9_]+)"\."([A-Za-z0-9_]+)"')


def workgroup_arn(name: str) -> str:
    return f"arn:{PARTITION}:athena:{REGION}:{ACCOUNT}:workgroup/{name}"


def _athena(operation: str, params: Mapping[str, Any], results: Mapping[str, str]) -> list[AuthRequest]:
    """Athena runs a query with the caller's permissions: the workgroup call, the catalogue entries
    the query names, and the writes of its answer to the workgroup's results location."""
    if operation == "StartQueryExecution":
        workgroup = params.get("WorkGroup", "primary")
        database = params.get("QueryExecutionContext", {}).get("Database", "default")
        glue = f"arn:{PARTITION}:glue:{REGION}:{ACCOUNT}"
        out = [
            AuthRequest("athena:StartQueryExecution", workgroup_arn(workgroup)),
            AuthRequest("glue:GetDatabase", f"{glue}:catalog"),
            AuthRequest("glue:GetDatabase", f"{glue}:database/{database}"),
        ]
        for db, table in sorted(set(_RELATION.findall(params["QueryString"]))):
            for name in (table, *VIEW_TABLES.get(table, ())):
                out += [
                    AuthRequest("glue:GetTable", f"{glue}:catalog"),
                    AuthRequest("glue:GetTable", f"{glue}:database/{db}"),
                    AuthRequest("glue:GetTable", f"{glue}:table/{db}/{name}"),
                ]
        location = results.get(workgroup)
        if location is None:
            raise UnmappedCall(f"athena workgroup {workgroup} has no results location in the template")
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        out += [
            AuthRequest("s3:GetBucketLocation", f"arn:{PARTITION}:s3:::{bucket}"),
            AuthRequest("s3:PutObject", f"arn:{PARTITION}:s3:::{bucket}/{prefix}query.csv"),
            AuthRequest("s3:GetObject", f"arn:{PARTITION}:s3:::{bucket}/{prefix}query.csv"),
        ]
        return out
    if operation in ("GetQueryExecution", "GetQueryResults", "StopQueryExecution"):
        workgroup = QUERY_WORKGROUPS.get(params["QueryExecutionId"], "primary")
        return [AuthRequest(f"athena:{operation}", workgroup_arn(workgroup))]
    raise UnmappedCall(f"athena.{operation}")


# Keys every request carries (boto3 calls AWS over TLS, from this account and region).
BASE_CONTEXT = {"aws:SecureTransport": "true", "aws:PrincipalAccount": ACCOUNT, "aws:RequestedRegion": REGION}


def missing_key_listing(bucket: str) -> AuthRequest:
    """What S3 checks before it answers 404 for a missing key: may the caller list the bucket?
    The request is a read of one key, so it carries no `s3:prefix`; without the permission the
    answer is 403 AccessDenied."""
    return AuthRequest("s3:ListBucket", f"arn:{PARTITION}:s3:::{bucket}", dict(BASE_CONTEXT))


def authorizations(
    service: str,
    operation: str,
    params: Mapping[str, Any],
    topic_keys: Mapping[str, str],
    athena_results: Mapping[str, str] | None = None,
) -> list[AuthRequest]:
    """What AWS authorizes for one API call; `topic_keys` maps encrypted topics to their KMS key ARN,
    `athena_results` workgroups to their results location."""
    if service == "sts" and operation == "GetCallerIdentity":
        return []
    mappers = {"s3": _s3, "dynamodb": _dynamodb, "sqs": _sqs, "cloudwatch": _cloudwatch, "lambda": _lambda}
    if service in mappers:
        requests = mappers[service](operation, params)
    elif service == "sns":
        requests = _sns(operation, params, topic_keys)
    elif service == "events":
        requests = _events(operation, params)
    elif service == "athena":
        requests = _athena(operation, params, athena_results or {})
    else:
        raise UnmappedCall(f"{service}.{operation}")
    return [AuthRequest(r.action, r.resource, {**BASE_CONTEXT, **r.context}) for r in requests]
