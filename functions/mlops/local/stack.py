"""The embedded local stack: everything the CDK stack deploys, on one machine, with no AWS account.

A moto server on 127.0.0.1 stands in for S3, DynamoDB, SQS, SNS, CloudWatch and
EventBridge; resources are created from `mlops.shared.resources` (the same definitions the
stack uses); the same handler code runs in-process behind a local API gateway, an SQS
poller (event source mapping with partial batch failures), a scheduler, and an alarm
evaluator that applies CloudWatch semantics to the alarm specs.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mlops.cloud import aws
from mlops.cloud.provision import create_resources
from mlops.local.alarm_evaluator import AlarmEvaluator, Transition
from mlops.local.gateway import LocalGateway
from mlops.local.invoke import LocalLambdas
from mlops.model.spec import ModelSpec
from mlops.regression.feedback import task_environment
from mlops.shared import clock
from mlops.shared.alarm_specs import alarm_specs, schedule_period_seconds
from mlops.shared.errors import MlopsError, RetrainFailed
from mlops.shared.resources import (
    PREDICTION_QUEUE,
    REPORT_BUCKET,
    RETRAIN_REQUEST_SOURCE,
    RETRAIN_RETRY_DETAIL_TYPE,
    RETRAINING_ALARMS_ENV,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
SERVICES = ("s3", "dynamodb", "sqs", "sns", "cloudwatch", "events")


class PortInUse(MlopsError):
    """The requested port is taken."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_port(port: int, host: str = "127.0.0.1") -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            raise PortInUse(f"port {port} on {host} is in use (choose another with --port)") from None


def scheduled_event(rule: str, at: datetime) -> dict[str, Any]:
    """The EventBridge event a schedule rule delivers."""
    return {
        "version": "0",
        "id": f"local-{rule}-{int(at.timestamp())}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}"],
        "detail": {},
    }


def retry_due_event(at: datetime) -> dict[str, Any]:
    """The input the retry-tick schedule gives the retrain function."""
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": f"retry-{stamp}",
        "detail-type": RETRAIN_RETRY_DETAIL_TYPE,
        "source": RETRAIN_REQUEST_SOURCE,
        "time": stamp,
        "resources": [],
        "detail": {},
    }


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping delivers for received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": m.get("Attributes", {}).get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": m.get("Attributes", {}).get("SentTimestamp", "0"),
                    "SenderId": "LOCAL",
                    "ApproximateFirstReceiveTimestamp": m.get("Attributes", {}).get(
                        "ApproximateFirstReceiveTimestamp", "0"
                    ),
                },
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


@dataclass
class StackEvents:
    """Alarm state changes, for the demo's outcome and the tests."""

    transitions: list[Transition] = field(default_factory=list)


class LocalStack:
    def __init__(
        self,
        spec: ModelSpec,
        *,
        port: int = 0,
        moto_port: int = 0,
        prefix: str = "local",
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        check_port(port)
        check_port(moto_port)
        self.spec = spec
        self.prefix = prefix
        self.port = port
        self.moto_port = moto_port or free_port()
        self.on_event = on_event or (lambda kind, data: None)
        self.events = StackEvents()
        self.env: dict[str, str] = {}
        self.lambdas = LocalLambdas(prefix)
        self._server: Any = None
        self.gateway: LocalGateway | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._queue_arn = ""
        self.alarms: AlarmEvaluator | None = None
        self._invoke_lock = threading.Lock()
        self._saved_environ: dict[str, str] | None = None

    # -- life cycle ----------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def client(self, service: str) -> Any:
        return aws.client(service)

    def start(self) -> LocalStack:
        import logging

        from moto.server import ThreadedMotoServer

        from mlops.local.transport import in_process_session

        self._saved_environ = dict(os.environ)  # restored by stop(): the stack lives in-process
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per AWS call otherwise
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
        self._server.start()
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "POWERTOOLS_METRICS_NAMESPACE": "ServerlessMLOps",
                "POWERTOOLS_SERVICE_NAME": "serverless-mlops",
                # Locally, log at WARNING so the console shows the story, not every request.
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
                # Serving metrics are EMF lines that only CloudWatch Logs turns into metrics; the
                # monitor's metrics (PutMetricData) still reach the stand-in.
                "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
                "MLOPS_CHAMPION_REFRESH_SECONDS": os.environ.get("MLOPS_CHAMPION_REFRESH_SECONDS", "1"),
            }
        )
        from mlops.shared.observability import logger

        logger.setLevel(os.environ["POWERTOOLS_LOG_LEVEL"])  # the logger may predate the variable
        aws.reset_clients()
        # The stack's own calls skip the socket (see mlops.local.transport); others use the server.
        aws.use_session(in_process_session(self.endpoint))
        clients = {s: aws.client(s) for s in SERVICES}
        self.env = create_resources(clients, self.prefix, self.spec.name)
        self.env.update(task_environment(self.spec))
        self.env[RETRAINING_ALARMS_ENV] = ",".join(
            a.alarm_name(self.prefix, self.spec.name) for a in alarm_specs(self.spec) if a.triggers_retraining
        )
        os.environ.update(self.env)
        queue_url = self.env[PREDICTION_QUEUE.env_var]
        self._queue_arn = clients["sqs"].get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.alarms = AlarmEvaluator(
            clients["cloudwatch"],
            clients["sns"],
            self.env.get("MLOPS_ALARM_TOPIC_ARN"),
            alarm_specs(self.spec),
            self.spec.name,
            self.prefix,
            on_transition=self._on_alarm,
            account=ACCOUNT,
            region=REGION,
        )
        self.alarms.create_alarms(at=clock.now())
        # POST /retrain: on AWS an asynchronous invoke of the retrain function; here a thread.
        from mlops.handlers import admin

        admin.use_retrain_dispatch(self._dispatch_retrain)
        self.gateway = LocalGateway(self.lambdas, port=self.port, static=self.report_file)
        self.gateway.start()
        return self

    def start_background(self, poll_interval: float = 0.2) -> None:
        """Run the SQS poller continuously (the event source mapping)."""
        t = threading.Thread(target=self._poll_loop, args=(poll_interval,), name="sqs-poller", daemon=True)
        t.start()
        self._threads.append(t)

    def start_scheduler(self, factor: float) -> None:
        """Run monitor, alarms and retrain schedules on the clock, `factor` times faster than real time."""
        t = threading.Thread(target=self._schedule_loop, args=(factor,), name="scheduler", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        if self.gateway is not None:
            self.gateway.stop()
        if self._server is not None:
            self._server.stop()
        from mlops.handlers import admin

        admin.use_retrain_dispatch(None)
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
        aws.reset_clients()

    @property
    def reports_url(self) -> str:
        """The model's history page behind the local gateway (each run's report is linked from it)."""
        from mlops.cloud.logstore import history_keys

        assert self.gateway is not None, "start() first"
        return f"{self.gateway.url}/{history_keys(self.spec.name)[1]}"

    def report_file(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """GET /reports/<key>: an object of the report bucket under reports/ (page links are relative)."""
        from mlops.cloud.logstore import REPORTS_PREFIX, history_keys
        from mlops.cloud.storage import get_bytes
        from mlops.shared.errors import NotFoundError

        key = path.lstrip("/")
        if key.rstrip("/") + "/" == REPORTS_PREFIX:
            return 302, {"location": "/" + history_keys(self.spec.name)[1]}, b""
        if not key.startswith(REPORTS_PREFIX) or ".." in key.split("/"):
            return 404, {"content-type": "application/json"}, b'{"message":"Not Found"}'
        try:
            body = get_bytes(self.client("s3"), self.env[REPORT_BUCKET.env_var], key)
        except NotFoundError:
            message = "no such report yet (the monitor writes the history page at its first run)"
            return 404, {"content-type": "application/json"}, json.dumps({"message": message}).encode()
        kinds = {".html": "text/html; charset=utf-8", ".json": "application/json"}
        kind = next((v for k, v in kinds.items() if key.endswith(k)), "application/octet-stream")
        return 200, {"content-type": kind}, body

    # -- the event source mapping and schedules --------------------------------------------

    def drain_queue(self, max_rounds: int = 10_000) -> int:
        """Deliver every waiting message (predictions, feedback) to the log writer; returns how many went."""
        written = 0
        for _ in range(max_rounds):
            n = self._poll_once(wait=0)
            if n == 0:
                return written
            written += n
        return written

    def _poll_once(self, wait: int = 1) -> int:
        sqs = self.client("sqs")
        url = self.env[PREDICTION_QUEUE.env_var]
        out = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, AttributeNames=["All"]
        )
        messages = out.get("Messages", [])
        if not messages:
            return 0
        with self._invoke_lock:
            response = self.lambdas.invoke("log_writer", sqs_event(messages, self._queue_arn)) or {}
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(done)

    def _poll_loop(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                if self._poll_once(wait=0) == 0:
                    self._stop.wait(interval)
            except Exception as err:  # keep polling, as the managed poller does
                self.on_event("error", {"component": "sqs-poller", "error": str(err)})
                self._stop.wait(1.0)

    def run_monitor(self, at: datetime | None = None) -> dict[str, Any]:
        """One scheduled monitor run, then one alarm evaluation."""
        when = at or clock.now()
        with self._invoke_lock:
            result = self.lambdas.invoke("monitor", scheduled_event(f"{self.prefix}-monitor-schedule", when))
        summary = result if isinstance(result, dict) else {"result": result}
        self.on_event("monitor", {"at": when, **summary})
        self.evaluate_alarms(when)
        return summary

    def evaluate_alarms(self, at: datetime | None = None) -> list[Transition]:
        assert self.alarms is not None, "start() first"
        return self.alarms.evaluate_all(at or clock.now())

    def run_retrain(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._invoke_lock:
            try:
                result = self.lambdas.invoke("retrain", event)
            except RetrainFailed as failed:  # on AWS: a function error, the failure queue and alarms
                result = failed.result
        out = result if isinstance(result, dict) else {"result": result}
        self.on_event("retrain", out)
        return out

    def retry_tick(self, at: datetime | None = None) -> dict[str, Any]:
        """The retry schedule: the retrain function attempts again if a retraining condition holds."""
        return self.run_retrain(retry_due_event(at or clock.now()))

    def _dispatch_retrain(self, event: dict[str, Any]) -> str:
        threading.Thread(target=self.run_retrain, args=(event,), name="retrain-request", daemon=True).start()
        return str(event["id"])

    def _on_alarm(self, transition: Transition, event: dict[str, Any]) -> None:
        self.events.transitions.append(transition)
        self.on_event(
            "alarm",
            {"name": transition.alarm_name, "state": transition.new.value, "reason": transition.reason},
        )
        if transition.spec.triggers_retraining and transition.new.value in ("ALARM", "OK"):
            # EventBridge rule: a retraining alarm's change to ALARM (start) or OK (the condition
            # that keeps retraining going ends) -> retrain function.
            self.run_retrain(event)

    def _schedule_loop(self, factor: float) -> None:
        monitor_every = timedelta(seconds=schedule_period_seconds(self.spec.monitoring.schedule))
        retrain_every = timedelta(seconds=schedule_period_seconds(self.spec.retraining.schedule))
        next_monitor = clock.now() + monitor_every
        next_retrain = clock.now() + retrain_every
        while not self._stop.is_set():
            now = clock.now()
            try:
                if now >= next_monitor:
                    self.drain_queue()
                    self.run_monitor(now)
                    self.retry_tick(now)
                    next_monitor = now + monitor_every
                if now >= next_retrain:
                    self.run_retrain(scheduled_event(f"{self.prefix}-retrain-schedule", now))
                    next_retrain = now + retrain_every
            except Exception as err:
                self.on_event("error", {"component": "scheduler", "error": str(err)})
            self._stop.wait(max(0.2, min(5.0, monitor_every.total_seconds() / max(factor, 1.0) / 4)))
