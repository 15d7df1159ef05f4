"""The predict container holds the garbage collector off from its import to its first answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent(
    """
    import gc, json
    from mlops.handlers import predict

    class Context:
        function_name = "predict"
        memory_limit_in_mb = 1024
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:predict"
        aws_request_id = "r"

    seen = {"after_import": gc.isenabled(), "during": []}
    def resolve(event, context):
        seen["during"].append(gc.isenabled())
        return {"statusCode": 200, "body": "{}"}
    predict.app.resolve = resolve
    predict.handler({}, Context())
    seen["after_first"] = gc.isenabled()
    seen["frozen"] = gc.get_freeze_count()
    predict.handler({}, Context())
    print(json.dumps(seen))
    """
)


def probe(execution_env: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_EXECUTION_ENV"}
    if execution_env is not None:
        env["AWS_EXECUTION_ENV"] = execution_env
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_in_lambda_the_collector_waits_for_the_first_answer_then_skips_what_startup_made() -> None:
    seen = probe("AWS_Lambda_python3.12")
    assert seen["after_import"] is False and seen["during"] == [False, True]
    assert seen["after_first"] is True
    # what the import and the first request made is in the permanent generation
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000


@pytest.mark.parametrize("execution_env", [None, "local"])
def test_elsewhere_the_collector_is_left_alone(execution_env: str | None) -> None:
    seen = probe(execution_env)
    assert seen["after_import"] is True and seen["during"] == [True, True] and seen["after_first"] is True
    assert seen["frozen"] == 0
