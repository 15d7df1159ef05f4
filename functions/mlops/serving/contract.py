"""The HTTP contract as pydantic models: the source of the OpenAPI document.

Requests are not validated through these models on the hot path (the per-schema
`RowValidator` is much faster and names every problem); tests check that real answers
conform to them, so the document cannot drift from the behaviour.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlops.cloud.registry import MAX_REASON_LENGTH, Action, VersionRecord, VersionStatus
from mlops.model.bundle import ArtifactRef
from mlops.model.schema import FeatureField, FeatureSchema
from mlops.serving.validation import MAX_CATEGORY_LENGTH, MAX_CLOCK_SKEW, PREDICTION_ID_PATTERN
from mlops.shared.settings import DEFAULT_MAX_BATCH_ROWS, DEFAULT_MAX_FEEDBACK_ITEMS

# Categories may be sent as strings, numbers or booleans: 21, "21" and 21.0 are one category.
FeatureValue = bool | float | Annotated[str, Field(max_length=MAX_CATEGORY_LENGTH)] | None
# The document's generic row; the served document (GET /openapi.json) names the champion's features.
Row = dict[str, FeatureValue]
PredictionId = Annotated[str, Field(pattern=PREDICTION_ID_PATTERN)] | Annotated[int, Field(ge=0)]
EventTime = Annotated[
    datetime,
    Field(
        description="ISO 8601 with a timezone; not in the future (clocks may differ by "
        f"{int(MAX_CLOCK_SKEW.total_seconds() // 60)} minutes) and not before the serving version "
        "was registered"
    ),
]


class _Contract(BaseModel):
    # Built on first use (the OpenAPI document, the tests): requests never go through them.
    model_config = ConfigDict(extra="forbid", defer_build=True)


class PredictOne(_Contract):
    """One row. GET /model/schema lists the champion's features, their types, ranges and categories.

    Optional: the client's prediction id (quoted back and used to join feedback) and the event
    time (when the predicted event happened: the log and monitoring use it, so past traffic
    can be replayed). The model's id column may be sent in the row instead of `id`.
    """

    features: Row = Field(description="Every feature of the model; null for a missing value")
    id: PredictionId | None = Field(None, description="The prediction id of `features`")
    event_time: EventTime | None = None


class PredictBatch(_Contract):
    """A batch of rows, answered in input order, with optional ids and event times per row."""

    instances: list[Row] = Field(
        min_length=1,
        max_length=DEFAULT_MAX_BATCH_ROWS,
        description="Rows, each like `features` of a single request (GET /model/schema gives the limit)",
    )
    ids: list[PredictionId] | None = Field(
        None, description="One prediction id per row of `instances`, unique in the request"
    )
    event_times: list[EventTime] | None = Field(None, description="One event time per row of `instances`")


# What POST /predict takes: one row or a batch.
PredictRequest = PredictOne | PredictBatch


class Prediction(_Contract):
    prediction_id: str = Field(description="The client's id if it sent one; quote it when sending feedback")
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
    feature_schema: FeatureSchema
    production: dict[str, Any] | None = Field(
        description="The latest monitoring summary of this version; null before the monitor ran"
    )


class ModelSchema(_Contract):
    """What a client needs to build valid rows for the champion."""

    model_name: str
    model_version: int
    max_batch_rows: int = Field(ge=1, description="Most rows accepted in one `instances` request")
    features: list[FeatureField] = Field(description="In the model's order: kind, range, known categories")
    row: dict[str, Any] = Field(description="JSON Schema (2020-12) of one row, as the API checks it")


class FeedbackItem(_Contract):
    prediction_id: str = Field(min_length=1, max_length=128)
    label: Literal[0, 1]
    source: Literal["explicit", "implicit"]
    observed_at: str | None = Field(
        None, description="ISO 8601, within the years 1 to 9999 in UTC; defaults to the time received"
    )


class FeedbackBatch(_Contract):
    items: list[FeedbackItem] = Field(min_length=1, max_length=DEFAULT_MAX_FEEDBACK_ITEMS)


class FeedbackStatus(_Contract):
    prediction_id: str
    source: Literal["explicit", "implicit"]
    status: Literal["stored", "duplicate", "conflict"]


class FeedbackResponse(_Contract):
    stored: int
    duplicates: int
    conflicts: int
    items: list[FeedbackStatus]


# -- the registry admin routes ----------------------------------------------------------------

Reason = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_REASON_LENGTH,
        pattern=r"\S",
        description="Why, for the audit trail (not only spaces)",
    ),
]


class ChangeRequest(_Contract):
    """A promotion or rollback: who asked is the IAM caller, why is the reason."""

    reason: Reason


class RetrainRequest(_Contract):
    reason: Reason | None = Field(None, description="Defaults to 'requested through the admin API'")
    force: bool = Field(False, description="Train even when the policy sees no reason to")


class RetrainAccepted(_Contract):
    accepted: Literal[True]
    event_id: str
    reason: str
    force: bool


class ChampionPointer(_Contract):
    version: int
    since: str
    revision: int


class VersionSummary(_Contract):
    version: int
    status: VersionStatus
    champion: bool
    created_at: str
    trigger: str
    parent_version: int | None
    primary_metric: str
    test_metrics: dict[str, float | None]
    gate_passed: bool | None


class ModelList(_Contract):
    model_name: str
    champion: ChampionPointer | None
    versions: list[VersionSummary]


class HistoryRow(_Contract):
    revision: int
    action: Action
    from_version: int | None
    to_version: int
    at: str
    actor: str
    reason: str


class History(_Contract):
    history: list[HistoryRow]


class ServedAt(_Contract):
    at: str
    version: int | None = Field(description="The version serving at that time; null before the first")
    since: str | None


class Lineage(_Contract):
    training_data: dict[str, Any] | None
    original_data: dict[str, Any] | None
    code_version: str | None
    estimator: dict[str, Any] | None
    parent_version: int | None
    trigger: str | None


class ServedPeriod(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from")
    to: str | None = Field(description="null while it still serves")


class ReportRun(_Contract):
    dt: str
    run: str
    json_key: str = Field(alias="json")
    html: str


class ModelDetail(VersionRecord):
    """A version's record with its lineage, when it served, and its monitoring runs."""

    artifacts: dict[str, ArtifactRef]
    lineage: Lineage
    served: list[ServedPeriod]
    production: dict[str, Any] | None
    reports: list[ReportRun]


def error_responses(*codes: int, described: dict[int, str] | None = None) -> dict[int, Any]:
    """OpenAPI responses for the error statuses a route can answer, all with the common body."""
    texts = {**ERROR_TEXTS, **(described or {})}
    content = {"application/json": {"model": ErrorBody}}
    return {code: {"description": texts[code], "content": content} for code in codes}


ERROR_TEXTS = {
    400: "The body is not valid JSON (also: a duplicate key, nesting too deep, a lone surrogate)",
    404: "No such record",
    409: "The change conflicts with the current state; the message says why",
    413: "Too many rows or items",
    415: "The body is not declared as application/json",
    422: "Values that do not match the expected shape; every problem is listed",
    503: "A dependency is unavailable; nothing was changed, retry",
}


def served_openapi(document: dict[str, Any], row: dict[str, Any], max_rows: int) -> dict[str, Any]:
    """The API document with /predict's generic rows replaced by the champion's row schema."""
    served = copy.deepcopy(document)
    schemas = served["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    for option in schemas["oneOf"]:
        props = option["properties"]
        if "features" in props:
            props["features"] = {**row, "description": props["features"].get("description", "")}
        if "instances" in props:
            props["instances"] = {**props["instances"], "items": row, "maxItems": max_rows}
    return served


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
