"""The API document ships in the code asset, outside the package, and the predict function serves it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from mlops.handlers import openapi

from infrastructure.artifact import LambdaProcess
from tests.artifact.conftest import ReadOnlyArtifact, ServerStack
from tests.integration.serving_helpers import load_event, response_json


@pytest.fixture(scope="module")
def predict(artifact: ReadOnlyArtifact, server_stack: ServerStack) -> Iterator[LambdaProcess]:
    with server_stack.start(artifact, "Predict") as process:
        yield process


def get_event(path: str) -> dict:
    event = load_event("model_get.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["routeKey"] = f"GET {path}"
    return event


def test_the_code_asset_serves_the_committed_document_with_the_champions_row(predict: LambdaProcess) -> None:
    # given the predict function of the read-only code asset, with the demo model as its champion
    row = response_json(predict.invoke(get_event("/model/schema")))["row"]
    # when a client asks for the API document
    answer = predict.invoke(get_event("/openapi.json"))
    # then it is the committed document, its /predict body naming the champion's features
    assert answer["statusCode"] == 200
    document = response_json(answer)
    one, _batch = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]["oneOf"]
    assert one["properties"]["features"]["properties"] == row["properties"]
    committed = json.loads(openapi.DOCUMENT.read_text(encoding="utf-8"))
    assert {p: v for p, v in document["paths"].items() if p != "/predict"} == {
        p: v for p, v in committed["paths"].items() if p != "/predict"
    }
