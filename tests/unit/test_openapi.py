"""The committed OpenAPI document is the one the code generates (`make openapi` rewrites it)."""

from __future__ import annotations

from mlops.handlers import openapi


def test_committed_openapi_document_matches_the_code():
    committed = openapi.DOCUMENT.read_text(encoding="utf-8")
    assert committed == openapi.render(), "the API changed: run `make openapi` and commit the document"


def test_the_document_describes_every_route_and_its_errors():
    paths = openapi.openapi_document()["paths"]
    assert set(paths) == {"/predict", "/model", "/feedback"}
    predict = paths["/predict"]["post"]
    assert {"200", "400", "413", "415", "422"} <= set(predict["responses"])
    assert "oneOf" not in predict["requestBody"]["content"]["application/json"]["schema"]
    feedback = paths["/feedback"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert len(feedback["oneOf"]) == 2
