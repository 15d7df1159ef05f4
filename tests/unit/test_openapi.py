"""The committed OpenAPI document is the one the code generates (`make openapi` rewrites it)."""

from __future__ import annotations

import json

from mlops.cloud.registry import MAX_REASON_LENGTH
from mlops.handlers import openapi
from mlops.shared.routes import ROUTES


def _body_schema(operation: dict) -> dict:
    return operation["requestBody"]["content"]["application/json"]["schema"]


def test_committed_openapi_document_matches_the_code():
    committed = openapi.DOCUMENT.read_text(encoding="utf-8")
    assert committed == openapi.render(), "the API changed: run `make openapi` and commit the document"


def test_the_document_describes_every_route_of_the_route_table_and_nothing_else():
    paths = openapi.openapi_document()["paths"]
    documented = {f"{method.upper()} {path}" for path, ops in paths.items() for method in ops}
    assert documented == {r.route_key for r in ROUTES}


def test_every_body_route_documents_its_body_and_the_bad_input_statuses():
    paths = openapi.openapi_document()["paths"]
    for route in ROUTES:
        operation = paths[route.path][route.method.lower()]
        statuses = set(operation["responses"])
        assert statuses & {"200", "202"}, route
        assert "503" in statuses, route
        if route.method == "POST":
            assert {"400", "415", "422"} <= statuses, route
            assert operation["requestBody"]["required"] is True
        if "{version}" in route.path:
            (param,) = operation["parameters"]
            assert param["schema"]["pattern"] == "^[0-9]{1,6}$" and {"404", "422"} <= statuses


def test_bodies_are_as_strict_as_the_code():
    paths = openapi.openapi_document()["paths"]
    one, batch = _body_schema(paths["/predict"]["post"])["oneOf"]
    assert one["required"] == ["features"] and batch["required"] == ["instances"]
    assert one["additionalProperties"] is False and batch["additionalProperties"] is False
    assert batch["properties"]["instances"]["minItems"] == 1
    single, many = _body_schema(paths["/feedback"]["post"])["oneOf"]
    assert single["additionalProperties"] is False and many["additionalProperties"] is False
    assert single["properties"]["label"]["enum"] == [0, 1]
    assert single["properties"]["prediction_id"]["maxLength"] == 128
    for path in ("/models/{version}/promote", "/models/rollback"):
        reason = _body_schema(paths[path]["post"])["properties"]["reason"]
        assert reason["maxLength"] == MAX_REASON_LENGTH and reason["minLength"] == 1
    retrain = _body_schema(paths["/retrain"]["post"])
    assert retrain["additionalProperties"] is False and retrain["properties"]["force"]["type"] == "boolean"


def test_the_document_has_no_dangling_or_unused_schema():
    document = openapi.openapi_document()
    text = json.dumps(document)
    for name in document["components"]["schemas"]:
        assert f'"#/components/schemas/{name}"' in text, name
    for ref in {part.split('"')[0] for part in text.split('"#/components/schemas/')[1:]}:
        assert ref in document["components"]["schemas"], ref
