"""Write the sample events of this folder (API Gateway HTTP API payload 2.0, SQS batches).

The events are committed; run this after changing their shape: ``python events/make_events.py``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

GOOD_ROW: dict[str, Any] = {
    "tenure_months": 12,
    "monthly_charges": 70.5,
    "total_charges": 846.0,
    "support_calls": 2,
    "num_products": 3,
    "data_usage_gb": 15.2,
    "satisfaction_score": 7,
    "days_since_last_login": 3,
    "contract": "month-to-month",
    "payment_method": "electronic-check",
    "internet_service": "fiber",
    "region": "north",
    "age_band": "30-44",
    "paperless_billing": "yes",
    "device": "android",
}
# A new customer: total_charges not known yet (null), a device the model never saw.
SECOND_ROW: dict[str, Any] = {
    **GOOD_ROW,
    "tenure_months": 0,
    "total_charges": None,
    "contract": "two-year",
    "device": "smart-tv",
}


def http_event(
    method: str,
    path: str,
    body: str | None = None,
    content_type: str | None = "application/json",
    request_id: str = "JKJaXmPLvHcESHA=",
    base64_body: bool = False,
    route: str | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`route` is the route template (e.g. /models/{version}) when it differs from the path."""
    headers = {
        "accept": "application/json",
        "host": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
        "user-agent": "python-requests/2.32.3",
        "x-amzn-trace-id": "Root=1-6746f1a2-3c1d4b5e6f7a8b9c0d1e2f3a",
        "x-forwarded-for": "203.0.113.10",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if body is not None:
        headers["content-length"] = str(len(body.encode("utf-8")))
        if content_type is not None:
            headers["content-type"] = content_type
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {route or path}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "authorizer": {
                "iam": {
                    "accessKey": "ASIAEXAMPLEKEY000001",
                    "accountId": "123456789012",
                    "callerId": "AROAEXAMPLEROLE00001:client-app",
                    "cognitoIdentity": None,
                    "principalOrgId": None,
                    "userArn": "arn:aws:sts::123456789012:assumed-role/client-app/client-app",
                    "userId": "AROAEXAMPLEROLE00001:client-app",
                }
            },
            "domainName": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "python-requests/2.32.3",
            },
            "requestId": request_id,
            "routeKey": f"{method} {route or path}",
            "stage": "$default",
            "time": "27/Nov/2025:10:15:30 +0000",
            "timeEpoch": 1764238530000,
        },
        "isBase64Encoded": base64_body,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body is not None:
        event["body"] = base64.b64encode(body.encode("utf-8")).decode("ascii") if base64_body else body
    return event


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    records = []
    for i, body in enumerate(bodies):
        records.append(
            {
                "messageId": f"0c1e5d3a-7b1f-4d2e-9a6b-00000000000{i}",
                "receiptHandle": f"AQEBexampleReceiptHandle{i}==",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1764238530123",
                    "SenderId": "AROAEXAMPLEROLE00002:serverless-mlops-predict",
                    "ApproximateFirstReceiveTimestamp": "1764238530456",
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:serverless-mlops-predictionqueue",
                "awsRegion": "eu-west-1",
            }
        )
    return {"Records": records}


def _log_message(
    ts: str, ids: list[str], rows: list[dict[str, Any]], probs: list[float], unseen: list[list[str]]
) -> str:
    """A prediction-log message as the predict function sends it (see mlops.serving.log_queue)."""
    return _dump(
        {
            "v": 1,
            "request_id": "JKJaXmPLvHcESHA=",
            "timestamp": ts,
            "model_name": "churn",
            "model_version": 1,
            "prediction_id": ids,
            "probability": probs,
            "label": [int(p >= 0.5) for p in probs],
            "unseen_categories": unseen,
            "features": rows,
        }
    )


def _dump(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def events() -> dict[str, dict[str, Any]]:
    single = _dump({"features": GOOD_ROW})
    batch = _dump({"instances": [GOOD_ROW, SECOND_ROW]})
    bad_rows = _dump(
        {
            "instances": [
                GOOD_ROW,
                {**GOOD_ROW, "tenure_months": "12", "satisfaction_score": 11},
                {k: v for k, v in GOOD_ROW.items() if k != "region"} | {"customer_id": "C-1"},
            ]
        }
    )
    log_message_1 = _log_message(
        "2025-11-27T10:15:30.123456Z",
        ["5f0c6d1e2a3b4c5d6e7f809112233445", "5f0c6d1e2a3b4c5d6e7f809112233446"],
        [GOOD_ROW, SECOND_ROW],
        [0.61, 0.12],
        [[], ["device"]],
    )
    log_message_2 = _log_message(
        "2025-11-27T11:02:00.000001Z", ["7a1b2c3d4e5f60718293a4b5c6d7e8f9"], [GOOD_ROW], [0.61], [[]]
    )
    return {
        "predict_single.json": http_event("POST", "/predict", single),
        "predict_batch.json": http_event("POST", "/predict", batch, request_id="JKJaXmPLvHcESHB="),
        "predict_base64.json": http_event("POST", "/predict", single, base64_body=True),
        "predict_invalid_rows.json": http_event("POST", "/predict", bad_rows),
        "predict_malformed_json.json": http_event("POST", "/predict", '{"features": {"tenure_months": 12,'),
        "predict_wrong_content_type.json": http_event("POST", "/predict", single, content_type="text/plain"),
        "model_get.json": http_event("GET", "/model"),
        "feedback_single.json": http_event(
            "POST",
            "/feedback",
            _dump({"prediction_id": "5f0c6d1e2a3b4c5d6e7f809112233445", "label": 1, "source": "explicit"}),
        ),
        "feedback_batch.json": http_event(
            "POST",
            "/feedback",
            _dump(
                {
                    "items": [
                        {
                            "prediction_id": "5f0c6d1e2a3b4c5d6e7f809112233445",
                            "label": 1,
                            "source": "implicit",
                            "observed_at": "2025-11-28T08:00:00Z",
                        },
                        {
                            "prediction_id": "5f0c6d1e2a3b4c5d6e7f809112233446",
                            "label": 0,
                            "source": "explicit",
                        },
                    ]
                }
            ),
        ),
        "feedback_invalid.json": http_event(
            "POST", "/feedback", _dump({"prediction_id": "", "label": 2, "source": "guess"})
        ),
        "admin_list_models.json": http_event("GET", "/models"),
        "admin_show_model.json": http_event(
            "GET", "/models/1", route="/models/{version}", path_parameters={"version": "1"}
        ),
        "admin_history.json": http_event("GET", "/models/history"),
        "admin_history_at.json": http_event("GET", "/models/history", query={"at": "2026-11-20T12:00:00Z"}),
        "admin_promote.json": http_event(
            "POST",
            "/models/2/promote",
            _dump({"reason": "better on last week's labelled traffic"}),
            route="/models/{version}/promote",
            path_parameters={"version": "2"},
        ),
        "admin_rollback.json": http_event(
            "POST", "/models/rollback", _dump({"reason": "complaints about v2's offers"})
        ),
        "admin_retrain.json": http_event(
            "POST", "/retrain", _dump({"reason": "new labelled data from the November campaign"})
        ),
        "log_writer_batch.json": sqs_event([log_message_1, log_message_2]),
        "log_writer_malformed.json": sqs_event(
            [log_message_1, '{"v": 1, "records": [{"prediction_id": 5}]}']
        ),
    }


def main() -> None:
    for name, event in events().items():
        (HERE / name).write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")
        print(f"wrote events/{name}")


if __name__ == "__main__":
    main()
