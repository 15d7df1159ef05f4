"""The HTTP contract as pydantic models: the source of the OpenAPI document.

Requests are not validated through these models on the hot path (the per-schema
`RowValidator` is much faster and names every problem); tests check that real answers
conform to them, so the document cannot drift from the behaviour.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FeatureValue = float | str | None


class _Contract(BaseModel):
    # Built on first use (the OpenAPI document, the tests): requests never go through them.
    model_config = ConfigDict(extra="forbid", defer_build=True)


class PredictRequest(_Contract):
    """Exactly one of `features` (one row) or `instances` (a batch); GET /model lists the features."""

    features: dict[str, FeatureValue] | None = Field(
        None, description="One row: every feature of the model; null for a missing value"
    )
    instances: list[dict[str, FeatureValue]] | None = Field(
        None, description="A batch of rows, answered in input order", min_length=1
    )


class Prediction(_Contract):
    prediction_id: str = Field(description="Quote it when sending feedback")
    label: Literal[0, 1]
    probability: float = Field(ge=0, le=1, description="Probability of the positive class")


class PredictResponse(_Contract):
    model_version: int
    predictions: list[Prediction]


class Problem(_Contract):
    row: int | None = Field(description="Index of the offending row or item; null for the envelope")
    field: str | None
    problem: str


class ErrorBody(_Contract):
    error: str
    problems: list[Problem]


class ModelInfo(_Contract):
    model_name: str
    model_version: int
    champion_since: str
    primary_metric: str
    test_metrics: dict[str, float | None]
    feature_schema: dict[str, Any]
    production: dict[str, Any] | None = Field(
        description="The latest monitoring summary of this version; null before the monitor ran"
    )


class FeedbackItem(_Contract):
    prediction_id: str = Field(min_length=1, max_length=128)
    label: Literal[0, 1]
    source: Literal["explicit", "implicit"]
    observed_at: str | None = Field(None, description="ISO 8601; defaults to the time received")


class FeedbackBatch(_Contract):
    items: list[FeedbackItem] = Field(min_length=1)


class FeedbackStatus(_Contract):
    prediction_id: str
    source: Literal["explicit", "implicit"]
    status: Literal["stored", "duplicate", "conflict"]


class FeedbackResponse(_Contract):
    stored: int
    duplicates: int
    conflicts: int
    items: list[FeedbackStatus]


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def request_body(*models: type[BaseModel], description: str) -> dict[str, Any]:
    """An OpenAPI requestBody for a JSON body that is one of `models`, with nested models inlined."""
    schemas = []
    for model in models:
        schema = model.model_json_schema()
        schemas.append(_inline_refs(schema, schema.get("$defs", {})))
    body_schema = schemas[0] if len(schemas) == 1 else {"oneOf": schemas}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": body_schema}},
        }
    }
