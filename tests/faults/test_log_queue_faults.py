"""A hanging or missing log queue: /predict answers within budget, records survive, replay restores them."""

from __future__ import annotations

import io
import json
import logging
import socket
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from mlops.cli import main as cli_main
from mlops.cloud import aws
from mlops.cloud.logstore import iter_predictions
from mlops.cloud.storage import utcnow
from mlops.handlers import predict as predict_handler
from mlops.serving.log_queue import FALLBACK_FIELD, LOG_EVENT_MAX_BYTES, SEND_CLIENT_CONFIG
from mlops.shared.observability import logger
from mlops.shared.resources import LOG_BUCKET, PREDICTION_QUEUE
from mlops.shared.settings import ServingSettings

from tests.conftest import AwsStack
from tests.faults.test_redelivery import GOOD_ROW, raw_rows
from tests.integration.serving_helpers import CONTEXT, FakeClock, load_event, response_json, with_body

ROWS = 1_000
# A long (unseen) device name per row makes about 330 KB of records: more than one message, more
# than one log event, though the features travel column-wise.
LONG_DEVICE = "x" * 200


@pytest.fixture
def function_log() -> Iterator[io.StringIO]:
    """What the function's logger writes to stdout (the lines Lambda ships to CloudWatch Logs)."""
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    out = io.StringIO()
    previous = handler.setStream(out)
    yield out
    handler.setStream(previous)


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    """A local socket that accepts connections (the kernel completes them) and never answers."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def runtime_with_queue(endpoint: str | None, queue_url: str) -> predict_handler.PredictRuntime:
    """A predict container whose SQS client is built as the function builds it, for this queue."""
    settings = ServingSettings(**{PREDICTION_QUEUE.env_var: queue_url})  # type: ignore[arg-type]
    sqs = aws.client("sqs", endpoint_url=endpoint, config=SEND_CLIENT_CONFIG)
    runtime = predict_handler.PredictRuntime(
        settings, aws.client("s3"), aws.client("dynamodb"), sqs, clock=FakeClock()
    )
    predict_handler.use_runtime(runtime)
    return runtime


def predict_many() -> tuple[float, int, list[str]]:
    rows = [
        dict(GOOD_ROW, tenure_months=i % 72, support_calls=i % 9, device=f"{LONG_DEVICE}-{i}")
        for i in range(ROWS)
    ]
    started = time.monotonic()
    response = predict_handler.handler(
        with_body(load_event("predict_batch.json"), {"instances": rows}), CONTEXT
    )
    elapsed = time.monotonic() - started
    return (
        elapsed,
        response["statusCode"],
        [p["prediction_id"] for p in response_json(response)["predictions"]],
    )


def kept_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if FALLBACK_FIELD in line]


def pieces_ids(lines: list[str]) -> list[str]:
    return [pid for line in lines for pid in json.loads(line)[FALLBACK_FIELD]["prediction_id"]]


def logged_ids(stack: AwsStack) -> list[str]:
    """Prediction ids as the monitor and retraining read them (each prediction once)."""
    now = utcnow()
    start, end = now - timedelta(hours=2), now + timedelta(hours=1)
    bucket = stack.env[LOG_BUCKET.env_var]
    return [r.prediction_id for batch in iter_predictions(stack.s3, bucket, 1, start, end) for r in batch]


def test_a_hanging_queue_costs_the_budget_and_replay_restores_every_record_once(
    aws_stack, champion, hanging_endpoint, function_log, capsys, monkeypatch
):
    # Given a queue endpoint that accepts connections and never answers
    runtime = runtime_with_queue(hanging_endpoint, f"{hanging_endpoint}/123456789012/predictions")
    budget = runtime.settings.log_send_budget_seconds
    capsys.readouterr()
    try:
        # When a client asks for 1,000 predictions
        elapsed, status, ids = predict_many()
    finally:
        predict_handler.use_runtime(None)
    # Then it gets them, within the send budget plus the work itself, far inside the 10 s timeout
    assert status == 200 and len(ids) == ROWS
    assert elapsed < budget + 2.0, elapsed
    # and every record is in the function's log once, in events CloudWatch Logs accepts
    lines = kept_lines(function_log.getvalue())
    assert len(lines) > 1
    assert max(len(line.encode("utf-8")) for line in lines) < LOG_EVENT_MAX_BYTES - 26
    assert sorted(pieces_ids(lines)) == sorted(ids)

    # When Lambda has shipped those lines to the function's log group and replay runs, twice
    group = "/aws/lambda/serverless-mlops-predict"
    ship_to_cloudwatch(group, lines)
    monkeypatch.setenv("MLOPS_PREDICT_LOG_GROUP", group)
    capsys.readouterr()
    for _ in range(2):
        assert cli_main(["logs", "replay", "--since", "2000-01-01T00:00:00Z"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["records"] == ROWS and summary["malformed_pieces"] == []
    # Then the prediction log holds every record once, even in raw storage
    stored = [row["prediction_id"] for _, row in raw_rows(aws_stack)]
    assert sorted(stored) == sorted(ids)
    assert sorted(logged_ids(aws_stack)) == sorted(ids)


def ship_to_cloudwatch(group: str, lines: list[str]) -> None:
    """What Lambda does with stdout: one event per line (CloudWatch refuses events over 256 KB)."""
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="2026/11/20/[$LATEST]abc")
    now = int(time.time() * 1000)
    for line in lines:
        logs.put_log_events(
            logGroupName=group,
            logStreamName="2026/11/20/[$LATEST]abc",
            logEvents=[{"timestamp": now, "message": line}],
        )
    noise = json.dumps({"level": "INFO", "message": "unrelated"})
    logs.put_log_events(
        logGroupName=group,
        logStreamName="2026/11/20/[$LATEST]abc",
        logEvents=[{"timestamp": now, "message": noise}],
    )


def test_a_missing_queue_keeps_the_records_and_replay_from_saved_lines_restores_them(
    aws_stack, champion, function_log, capsys, tmp_path
):
    # Given the log queue was deleted
    url = aws_stack.env[PREDICTION_QUEUE.env_var]
    aws_stack.sqs.delete_queue(QueueUrl=url)
    runtime_with_queue(None, url)
    capsys.readouterr()
    try:
        # When a client asks for predictions
        _, status, ids = predict_many()
    finally:
        predict_handler.use_runtime(None)
    # Then it gets them, and the records are in the function's log
    assert status == 200
    out = function_log.getvalue()
    assert sorted(pieces_ids(kept_lines(out))) == sorted(ids)
    # When the saved log output is replayed
    saved = tmp_path / "predict.log"
    saved.write_text(out, encoding="utf-8")
    capsys.readouterr()
    assert cli_main(["logs", "replay", "--file", str(saved)]) == 0
    capsys.readouterr()
    # Then every record is in the prediction log once
    assert sorted(logged_ids(aws_stack)) == sorted(ids)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["logs", "replay", "--log-group", "g"], "--since is required"),
        (["logs", "replay", "--log-group", "g", "--since", "last week"], "not an ISO 8601 time"),
        (["logs", "replay", "--file", "/nonexistent/predict.log"], "no such file"),
    ],
)
def test_replay_refuses_bad_arguments_in_one_line(aws_stack, capsys, argv, message):
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
