"""The local gateway speaks API Gateway's payload 2.0, and `mlops local up` refuses bad flags in one line."""

from __future__ import annotations

import socket

import pytest
from mlops.cli import main
from mlops.local.gateway import http_api_event
from mlops.shared.routes import ROUTES, compile_routes, match

from tests.integration.serving_helpers import load_event


def _keys(value: object, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        out = set()
        for k, v in value.items():
            out |= {f"{prefix}{k}"} | _keys(v, f"{prefix}{k}.")
        return out
    return set()


@pytest.mark.parametrize(
    ("sample", "method", "path", "query"),
    [
        ("predict_single.json", "POST", "/predict", ""),
        ("model_get.json", "GET", "/model", ""),
        ("feedback_single.json", "POST", "/feedback", ""),
        ("admin_show_model.json", "GET", "/models/1", ""),
        ("admin_history_at.json", "GET", "/models/history", "at=2026-11-20T12:00:00Z"),
        ("admin_promote.json", "POST", "/models/2/promote", ""),
    ],
)
def test_gateway_events_have_the_shape_of_the_samples(sample, method, path, query):
    found = match(compile_routes(), method, path)
    assert found is not None
    route, params = found
    body = b'{"a": 1}' if method == "POST" else b""
    headers = {"Content-Type": "application/json", "Host": "127.0.0.1:8080", "User-Agent": "curl/8"}
    event = http_api_event(route, method, path, query, headers, body, params)
    expected = load_event(sample)
    assert event["routeKey"] == expected["routeKey"]
    assert event.get("pathParameters") == expected.get("pathParameters")
    assert event.get("queryStringParameters") == expected.get("queryStringParameters")
    # Every field the samples carry (but the header set, which varies by client) is present.
    wanted = {k for k in _keys(expected) if not k.startswith("headers.")}
    wanted -= {k for k in wanted if k.startswith("requestContext.authorizer.iam.")}
    assert wanted <= _keys(event), wanted - _keys(event)


def test_literal_routes_win_over_parameters_and_unknown_routes_do_not_match():
    routes = compile_routes()
    assert match(routes, "GET", "/models/history")[0].path == "/models/history"  # type: ignore[index]
    assert match(routes, "GET", "/models/7")[1] == {"version": "7"}  # type: ignore[index]
    assert match(routes, "DELETE", "/predict") is None
    assert {r.route_key for r in ROUTES} == {c.route.route_key for c in routes}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["local", "up", "--port", "99999"], "--port must be between 0 and 65535"),
        (["local", "up", "--speed", "0"], "--speed must be positive"),
        (["local", "up", "--spec", "nope.toml"], "spec file not found"),
    ],
)
def test_local_up_refuses_bad_flags_in_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_local_up_refuses_a_busy_port(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["local", "up", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is in use" in err


def test_a_new_set_of_local_functions_starts_cold(monkeypatch):
    # Given a handler module that kept the settings of an earlier stack in this process
    from mlops.handlers import feedback
    from mlops.local.invoke import LocalLambdas

    monkeypatch.setenv("MLOPS_PREDICTION_QUEUE_URL", "earlier-queue")
    monkeypatch.setenv("MLOPS_FEEDBACK_TABLE", "earlier-feedback")
    assert feedback.settings().prediction_queue_url == "earlier-queue"

    # When a new stack's functions load it
    monkeypatch.setenv("MLOPS_PREDICTION_QUEUE_URL", "new-queue")
    LocalLambdas("new").handler("feedback")

    # Then it reads its settings again, as a new execution environment would
    assert feedback.settings().prediction_queue_url == "new-queue"
    feedback.settings.cache_clear()
