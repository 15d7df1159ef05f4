"""The local stack's own AWS calls reach moto in-process; the server still answers everyone else."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
import urllib3.util.connection
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError
from mlops.cloud import aws
from mlops.local.stack import LocalStack
from mlops.local.transport import InProcessMoto
from mlops.model.spec import ModelSpec
from mlops.shared.resources import LOG_BUCKET, REGISTRY_TABLE


@pytest.fixture(scope="module")
def stack(churn_spec: ModelSpec) -> Iterator[LocalStack]:
    started = LocalStack(churn_spec, prefix=f"tr{uuid.uuid4().hex[:6]}").start()
    try:
        yield started
    finally:
        started.stop()


def _over_http(stack: LocalStack, service: str) -> Any:
    """A client of another process's kind: a plain session, the server's endpoint, its own sockets."""
    return botocore.session.get_session().create_client(
        service,
        endpoint_url=stack.endpoint,
        region_name="us-east-1",
        aws_access_key_id="other",
        aws_secret_access_key="other",
    )


def test_the_stacks_calls_open_no_socket_and_the_server_sees_their_effects(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the stack's own S3 client, with every new connection counted
    opened: list[Any] = []
    real = urllib3.util.connection.create_connection

    def counted(*args: Any, **kwargs: Any) -> socket.socket:
        opened.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", counted)
    s3, bucket = aws.client("s3"), stack.env[LOG_BUCKET.env_var]
    body = bytes(range(256)) * 300  # binary, larger than one read of the streamed answer

    # When it writes an object and reads it back, streamed
    s3.put_object(Bucket=bucket, Key="transport/blob.bin", Body=body)
    streamed = s3.get_object(Bucket=bucket, Key="transport/blob.bin")["Body"]
    read_back = streamed.read(1000) + streamed.read()
    in_process = list(opened)

    # Then no socket was opened for it, and a client over HTTP reads the same bytes from the server
    assert read_back == body
    assert in_process == []
    remote = _over_http(stack, "s3").get_object(Bucket=bucket, Key="transport/blob.bin")["Body"].read()
    assert remote == body
    assert opened, "the HTTP client should have connected to the server"


def test_errors_come_back_as_the_server_sends_them(stack: LocalStack) -> None:
    # Given an item in the registry table, written over HTTP by another client
    table = stack.env[REGISTRY_TABLE.env_var]
    item = {"pk": {"S": "transport-test"}, "sk": {"S": "x"}}
    _over_http(stack, "dynamodb").put_item(TableName=table, Item=item)
    dynamodb, s3 = aws.client("dynamodb"), aws.client("s3")
    # When the stack's client puts it again only if absent, and reads a key that does not exist
    with pytest.raises(ClientError) as conditional:
        dynamodb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=stack.env[LOG_BUCKET.env_var], Key="transport/none")
    # Then each is the error the server answers, with its code and status
    assert conditional.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_requests_for_other_endpoints_are_sent_and_a_failing_stand_in_answers_500() -> None:
    # Given the hook for one endpoint
    hook = InProcessMoto("http://127.0.0.1:5999")
    other = AWSRequest("GET", "http://127.0.0.1:59990/bucket").prepare()
    similar = AWSRequest("GET", "http://127.0.0.1:5999.example.com/").prepare()
    own = AWSRequest("GET", "http://127.0.0.1:5999/bucket", headers={"x": "y"}).prepare()

    def broken(environ: Any, start_response: Any) -> Any:
        raise RuntimeError("stand-in bug")

    hook.app = broken  # type: ignore[assignment]
    # When it sees requests for other endpoints and its own
    # Then the others are left to botocore, and its own gets the 500 a failing server sends
    assert hook(other) is None and hook(similar) is None
    answer = hook(own)
    assert answer is not None and answer.status_code == 500
