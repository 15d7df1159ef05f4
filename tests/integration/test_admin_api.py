"""Admin routes on moto, driven by the sample events: audit trail, promotion, rollback, retrain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mlops.handlers import admin

from tests.conftest import register_and_promote
from tests.integration.serving_helpers import CONTEXT, load_event, response_json, with_body


@pytest.fixture
def call(aws_stack) -> Iterator[Any]:
    admin.settings.cache_clear()
    dispatched: list[dict[str, Any]] = []
    admin.use_retrain_dispatch(lambda event: dispatched.append(event) or str(event["id"]))

    def invoke(name: str, body: Any = None, **changes: Any) -> tuple[int, Any]:
        event = load_event(name)
        if body is not None:
            event = with_body(event, body)
        if "path" in changes:  # API Gateway routes by the raw path
            path = changes.pop("path")
            event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event.update(changes)
        response = admin.handler(event, CONTEXT)
        return response["statusCode"], response_json(response)

    invoke.dispatched = dispatched  # type: ignore[attr-defined]
    yield invoke
    admin.use_retrain_dispatch(None)
    admin.settings.cache_clear()


@pytest.fixture
def two_versions(aws_stack, trained, churn_data) -> None:
    register_and_promote(aws_stack, trained, churn_data)
    register_and_promote(aws_stack, trained, churn_data, reason="second")
    aws_stack.registry().rollback(actor="setup", reason="back to v1")


def test_list_show_and_history(call, two_versions):
    status, body = call("admin_list_models.json")
    assert status == 200 and body["champion"]["version"] == 1
    assert [(v["version"], v["champion"]) for v in body["versions"]] == [(1, True), (2, False)]

    status, body = call("admin_show_model.json")
    assert status == 200 and body["version"] == 1
    assert body["lineage"]["original_data"]["rows"] == 4000
    assert len(body["served"]) == 2 and body["served"][-1]["to"] is None
    assert body["production"] is None and body["reports"] == []  # the monitor has not run


def test_show_lists_the_monitoring_runs_of_the_version(call, two_versions, aws_stack):
    bucket = aws_stack.env["MLOPS_REPORT_BUCKET"]
    for run in ("r1", "r2"):
        key = f"reports/model_version=1/dt=2026-11-2{run[-1]}/run={run}/report.json"
        aws_stack.s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
    aws_stack.s3.put_object(
        Bucket=bucket, Key="reports/model_version=2/dt=2026-11-22/run=x/report.json", Body=b"{}"
    )
    status, body = call("admin_show_model.json")
    assert status == 200 and [r["run"] for r in body["reports"]] == ["r2", "r1"]
    assert body["reports"][0]["html"].endswith("run=r2/report.html")

    status, body = call("admin_history.json")
    assert [h["to_version"] for h in body["history"]] == [1, 2, 1]
    status, body = call("admin_history_at.json", queryStringParameters={"at": "2000-01-01T00:00:00Z"})
    assert status == 200 and body["version"] is None


def test_promote_and_rollback_record_the_iam_caller(call, two_versions, aws_stack):
    status, body = call("admin_promote.json")
    assert status == 200 and body["to_version"] == 2
    assert body["actor"].startswith("arn:aws:sts::123456789012:assumed-role/")
    status, body = call("admin_rollback.json")
    assert status == 200 and (body["from_version"], body["to_version"]) == (2, 1)
    assert aws_stack.registry().history()[-1].reason == "complaints about v2's offers"


@pytest.mark.parametrize(
    ("event", "body", "changes", "status", "field"),
    [
        ("admin_promote.json", {"reason": ""}, {}, 422, "reason"),
        ("admin_promote.json", {}, {}, 422, "reason"),
        ("admin_promote.json", "{not json", {}, 400, None),
        ("admin_promote.json", None, {"path": "/models/x/promote"}, 422, "version"),
        ("admin_promote.json", None, {"path": "/models/9/promote"}, 404, None),
        ("admin_promote.json", None, {"path": "/models/1/promote"}, 409, None),
        ("admin_show_model.json", None, {"path": "/models/42"}, 404, None),
        ("admin_history_at.json", None, {"queryStringParameters": {"at": "soon"}}, 422, "at"),
        ("admin_retrain.json", {"force": "yes"}, {}, 422, "force"),
        ("admin_promote.json", {"reason": "x" * 500_000}, {}, 422, "reason"),
        ("admin_promote.json", {"reason": "   "}, {}, 422, "reason"),
        ("admin_promote.json", {"reason": "ok", "actor": "me"}, {}, 422, "actor"),
        ("admin_promote.json", '{"reason": "a", "reason": "b"}', {}, 400, "reason"),
        ("admin_promote.json", None, {"path": "/models/²/promote"}, 422, "version"),
        ("admin_show_model.json", None, {"path": "/models/" + "9" * 5000}, 422, "version"),
        ("admin_rollback.json", {"reason": "y" * 1001}, {}, 422, "reason"),
        ("admin_retrain.json", {"reason": "z" * 1001}, {}, 422, "reason"),
        (
            "admin_history_at.json",
            None,
            {"queryStringParameters": {"at": "9999-12-31T23:59:59-01:00"}},
            422,
            "at",
        ),
        (
            "admin_history_at.json",
            None,
            {"queryStringParameters": {"at": "0001-01-01T00:00:00+01:00"}},
            422,
            "at",
        ),
    ],
)
def test_bad_admin_requests_get_a_4xx_and_change_nothing(
    call, two_versions, aws_stack, event, body, changes, status, field
):
    before = aws_stack.registry().history()
    got, answer = call(event, body, **changes)
    assert got == status, answer
    assert answer["error"]
    if field:
        assert field in [p["field"] for p in answer["problems"]]
    assert aws_stack.registry().history() == before


def test_retrain_request_is_dispatched_and_answers_202(call, champion):
    status, body = call("admin_retrain.json")
    assert status == 202 and body["accepted"] is True
    (event,) = call.dispatched
    assert event["detail-type"] == "Retrain Requested" and event["detail"]["force"] is False
    assert event["detail"]["reason"] == "new labelled data from the November campaign"


def test_retrain_without_a_configured_function_is_a_503(aws_stack, champion, monkeypatch):
    admin.settings.cache_clear()
    admin.use_retrain_dispatch(None)
    response = admin.handler(load_event("admin_retrain.json"), CONTEXT)
    assert response["statusCode"] == 503
