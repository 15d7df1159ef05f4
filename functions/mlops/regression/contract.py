"""The HTTP contract of a regression champion: a number per prediction, a number as feedback.

The committed API document describes the classification contract; a regression champion serves
it rewritten by `regression_document`, so each task's document says exactly what its API does.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlops.model.schema import FeatureSchema


class RegressionPrediction(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Prediction")

    prediction_id: str = Field(description="The client's id if it sent one; quote it when sending feedback")
    value: float = Field(description="The predicted value of the target, in its units")


class RegressionPredictResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", title="PredictResponse")

    model_version: int
    predictions: list[RegressionPrediction]


def _label_schema(schema: FeatureSchema) -> dict[str, Any]:
    label: dict[str, Any] = {
        "type": "number",
        "title": "Label",
        "description": f"The true value of {schema.target!r}",
    }
    if schema.target_min is not None:
        label["minimum"] = schema.target_min
    if schema.target_max is not None:
        label["maximum"] = schema.target_max
    return label


def regression_document(document: dict[str, Any], schema: FeatureSchema) -> dict[str, Any]:
    """The served API document of a regression champion: predictions are values and feedback labels
    are numbers in the target's range."""
    served = copy.deepcopy(document)
    response = RegressionPredictResponse.model_json_schema()
    components = served.setdefault("components", {}).setdefault("schemas", {})
    # Under the names the committed document refers to.
    components["Prediction"] = response.pop("$defs")[RegressionPrediction.__name__]
    response["properties"]["predictions"]["items"] = {"$ref": "#/components/schemas/Prediction"}
    components["PredictResponse"] = response
    body = served["paths"]["/feedback"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    for option in body["oneOf"]:
        props = option["properties"]
        if "label" in props:
            props["label"] = _label_schema(schema)
        if "items" in props:
            props["items"]["items"]["properties"]["label"] = _label_schema(schema)
    return served
