"""A version whose artifacts are not what was registered is refused before the champion pointer moves."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from mlops.cli import main as cli_main
from mlops.handlers import admin
from mlops.model import bundle

from tests.conftest import AwsStack, register_and_promote
from tests.integration.serving_helpers import CONTEXT, load_event, response_json, with_body


@pytest.fixture
def call(aws_stack: AwsStack) -> Iterator[Any]:
    admin.settings.cache_clear()

    def invoke(name: str, path: str | None = None) -> tuple[int, Any]:
        event = with_body(load_event(name), {"reason": "try it"})
        if path is not None:
            event["rawPath"] = event["requestContext"]["http"]["path"] = path
        response = admin.handler(event, CONTEXT)
        return response["statusCode"], response_json(response)

    yield invoke
    admin.settings.cache_clear()


@pytest.fixture
def v1_serving_v2_registered(aws_stack: AwsStack, trained: Any, churn_data: Any) -> None:
    """v1 is the champion; v2 is registered, not promoted."""
    register_and_promote(aws_stack, trained, churn_data)
    register_and_promote(aws_stack, trained, churn_data, reason="second")
    aws_stack.registry().rollback(actor="setup", reason="back to v1")


def _key(version: int, artifact: str) -> str:
    return bundle.bundle_prefix("churn", version) + artifact


def alter(stack: AwsStack, version: int, artifact: str) -> None:
    body = stack.s3.get_object(Bucket=stack.artifact_bucket, Key=_key(version, artifact))["Body"].read()
    stack.s3.put_object(Bucket=stack.artifact_bucket, Key=_key(version, artifact), Body=body[:-1] + b"!")


def delete(stack: AwsStack, version: int, artifact: str) -> None:
    stack.s3.delete_object(Bucket=stack.artifact_bucket, Key=_key(version, artifact))


def corrupt_but_recorded(stack: AwsStack, version: int, artifact: str) -> None:
    """Bytes that are not an ONNX model, with the registry's sha256 matching them (a bad export)."""
    garbage = b"not an onnx model"
    stack.s3.put_object(Bucket=stack.artifact_bucket, Key=_key(version, artifact), Body=garbage)
    stack.dynamodb.update_item(
        TableName=stack.env["MLOPS_REGISTRY_TABLE"],
        Key={"pk": {"S": "MODEL#churn"}, "sk": {"S": f"VERSION#{version:06d}"}},
        UpdateExpression="SET artifacts.#a.sha256 = :sha",
        ExpressionAttributeNames={"#a": artifact},
        ExpressionAttributeValues={":sha": {"S": hashlib.sha256(garbage).hexdigest()}},
    )


FAULTS = {
    "onnx-altered": (alter, bundle.MODEL_ONNX, "was altered"),
    "profile-altered": (alter, bundle.PROFILE, "was altered"),
    "schema-missing": (delete, bundle.SCHEMA, "is missing"),
    "onnx-does-not-load": (corrupt_but_recorded, bundle.MODEL_ONNX, "does not load"),
}


def registry_state(stack: AwsStack) -> tuple[Any, Any, Any]:
    registry = stack.registry()
    return registry.champion(), registry.history(), [(v.version, v.status) for v in registry.list_versions()]


@pytest.mark.parametrize(("fault", "artifact", "problem"), FAULTS.values(), ids=FAULTS.keys())
def test_promoting_a_bad_version_is_a_409_naming_the_artifact_and_changes_nothing(
    call, aws_stack, v1_serving_v2_registered, fault, artifact, problem
):
    # Given v2's bundle is not what was registered
    fault(aws_stack, 2, artifact)
    before = registry_state(aws_stack)
    # When someone promotes v2 through the admin API
    status, answer = call("admin_promote.json", path="/models/2/promote")
    # Then it is refused with a 4xx that names the artifact and what is wrong
    assert status == 409, answer
    assert artifact in answer["error"] and problem in answer["error"]
    # and champion, history and version status are as they were
    assert registry_state(aws_stack) == before
    assert before[0].version == 1


def test_rolling_back_to_a_bad_version_is_refused_and_changes_nothing(call, aws_stack, trained, churn_data):
    # Given v1 served, then v2; and v1's ONNX model was altered since
    register_and_promote(aws_stack, trained, churn_data)
    register_and_promote(aws_stack, trained, churn_data, reason="second")
    alter(aws_stack, 1, bundle.MODEL_ONNX)
    before = registry_state(aws_stack)
    # When someone rolls back
    status, answer = call("admin_rollback.json")
    # Then it is refused, naming the artifact, and v2 keeps serving
    assert status == 409 and bundle.MODEL_ONNX in answer["error"]
    assert registry_state(aws_stack) == before
    assert before[0].version == 2


def test_a_sound_version_is_still_promoted_and_rolled_back(call, aws_stack, v1_serving_v2_registered):
    status, answer = call("admin_promote.json", path="/models/2/promote")
    assert (status, answer["to_version"]) == (200, 2)
    status, answer = call("admin_rollback.json")
    assert (status, answer["to_version"]) == (200, 1)


def test_the_cli_refuses_a_bad_promotion_in_one_line(aws_stack, v1_serving_v2_registered, capsys):
    # Given v2's ONNX model was altered
    alter(aws_stack, 2, bundle.MODEL_ONNX)
    before = registry_state(aws_stack)
    # When promoted through the CLI
    code = cli_main(["registry", "promote", "2", "--reason", "try it"])
    err = capsys.readouterr().err
    # Then it exits non-zero with one line naming the version and the artifact, and nothing changed
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("mlops: error: version 2: model.onnx was altered")
    assert registry_state(aws_stack) == before


def test_the_cli_refuses_a_bad_rollback_in_one_line(aws_stack, trained, churn_data, capsys):
    # Given v1 served, then v2; and v1's pickled pipeline was altered since
    register_and_promote(aws_stack, trained, churn_data)
    register_and_promote(aws_stack, trained, churn_data, reason="second")
    alter(aws_stack, 1, bundle.PIPELINE)
    before = registry_state(aws_stack)
    # When rolled back through the CLI
    code = cli_main(["registry", "rollback", "--reason", "try it"])
    err = capsys.readouterr().err
    # Then it is refused, naming the artifact, and v2 keeps serving
    assert code == 2 and "version 1: pipeline.joblib was altered" in err
    assert registry_state(aws_stack) == before
