"""The registry's audit views and admin actions, shared by the admin API and the CLI."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mlops.cloud.logstore import read_latest_report, report_runs
from mlops.cloud.registry import VERSION_DIGITS, HistoryEntry, Registry, VersionCheck, VersionRecord
from mlops.cloud.storage import aws_call, iso, parse_time
from mlops.model import bundle
from mlops.shared.errors import StorageError, ValidationFailed
from mlops.shared.resources import RETRAIN_REQUEST_DETAIL_TYPE, RETRAIN_REQUEST_SOURCE

# ASCII digits only: str.isdigit() also accepts '²', which int() refuses.
VERSION_PATTERN = f"^[0-9]{{1,{VERSION_DIGITS}}}$"
_VERSION = re.compile(VERSION_PATTERN)


def parse_version(text: str) -> int:
    """A version number as written in a path; 422 naming the problem unless 1 to 6 ASCII digits."""
    if not _VERSION.fullmatch(text):
        shown = text if len(text) <= 20 else f"{text[:20]}... ({len(text)} characters)"
        problem = f"{shown!r} is not a version number (1 to {VERSION_DIGITS} digits 0-9)"
        raise ValidationFailed(
            "not a version number", [{"row": None, "field": "version", "problem": problem}]
        )
    return int(text)


def model_list(registry: Registry) -> dict[str, Any]:
    champion = registry.champion()
    return {
        "model_name": registry.model_name,
        "champion": champion.model_dump() if champion else None,
        "versions": [
            {
                "version": v.version,
                "status": v.status.value,
                "champion": champion is not None and champion.version == v.version,
                "created_at": v.created_at,
                "trigger": v.trigger,
                "parent_version": v.parent_version,
                "primary_metric": v.primary_metric,
                "test_metrics": v.test_metrics,
                "gate_passed": (v.gate_report or {}).get("passed"),
            }
            for v in registry.list_versions()
        ],
    }


def servable_check(s3: Any, artifact_bucket: str) -> VersionCheck:
    """The check every promotion and rollback runs: each artifact's sha256, and the ONNX model loads."""

    def check(record: VersionRecord) -> None:
        bundle.verify_servable(s3, artifact_bucket, record.version, record.artifacts)

    return check


def promote_version(
    registry: Registry, s3: Any, artifact_bucket: str, version: int, actor: str, reason: str
) -> HistoryEntry:
    """Promote after verifying the version's artifacts; a bad one leaves champion and history as they were."""
    return registry.promote(version, actor, reason, verify=servable_check(s3, artifact_bucket))


def rollback_champion(
    registry: Registry, s3: Any, artifact_bucket: str, actor: str, reason: str
) -> HistoryEntry:
    """Roll back after verifying the previous champion's artifacts, as a promotion does."""
    return registry.rollback(actor, reason, verify=servable_check(s3, artifact_bucket))


def served_at_answer(registry: Registry, at: str) -> dict[str, Any]:
    """Which version served at the ISO 8601 time `at`, and since when (None before the first)."""
    try:
        when = parse_time(at)
    except ValueError:
        problem = f"{at!r} is not an ISO 8601 time within the years 1 to 9999 in UTC"
        raise ValidationFailed(f"at: {problem}", [{"row": None, "field": "at", "problem": problem}]) from None
    entry = registry.served_at(when)
    return {"at": at, "version": entry.to_version if entry else None, "since": entry.at if entry else None}


def model_detail(
    registry: Registry, s3: Any, artifact_bucket: str, report_bucket: str | None, version: int
) -> dict[str, Any]:
    """One version: metrics, lineage (verified metadata), gate report, when it served, production figures."""
    record = registry.get_version(version)
    metadata = bundle.read_json_artifact(s3, artifact_bucket, record.artifacts[bundle.METADATA])
    served: list[dict[str, str | None]] = []
    start: str | None = None
    for entry in registry.history():
        if entry.to_version == version and start is None:
            start = entry.at
        elif entry.from_version == version and start is not None:
            served.append({"from": start, "to": entry.at})
            start = None
    if start is not None:
        served.append({"from": start, "to": None})
    production = read_latest_report(s3, report_bucket, version) if report_bucket else None
    # Every monitoring run while it served, by reference: each report holds that window's figures.
    reports = report_runs(s3, report_bucket, version) if report_bucket else []
    return {
        **json.loads(record.model_dump_json()),
        "lineage": {
            "training_data": metadata.get("training_data"),
            "original_data": metadata.get("original_data"),
            "code_version": metadata.get("code_version"),
            "estimator": metadata.get("estimator"),
            "parent_version": metadata.get("parent_version"),
            "trigger": metadata.get("trigger"),
        },
        "served": served,
        "production": production,
        "reports": reports,
    }


RetrainDispatch = Callable[[dict[str, Any]], str]


def retrain_request_event(reason: str, actor: str, force: bool, at: datetime) -> dict[str, Any]:
    """The event the retrain function receives for a request made by a person."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": RETRAIN_REQUEST_DETAIL_TYPE,
        "source": RETRAIN_REQUEST_SOURCE,
        "time": iso(at),
        "resources": [],
        "detail": {"reason": reason, "actor": actor, "force": force},
    }


def lambda_dispatch(lambda_client: Any, function_name: str) -> RetrainDispatch:
    """Start the retrain function asynchronously: the API answers 202 without waiting for a fit."""

    def dispatch(event: dict[str, Any]) -> str:
        with aws_call(f"start retrain function {function_name}"):
            out = lambda_client.invoke(
                FunctionName=function_name, InvocationType="Event", Payload=json.dumps(event).encode()
            )
        if int(out.get("StatusCode", 0)) != 202:
            raise StorageError(f"retrain function {function_name} did not accept the request")
        return str(event["id"])

    return dispatch
