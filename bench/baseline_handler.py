"""The baseline: a predict handler written the way most tutorials write one.

The fitted sklearn pipeline is downloaded and unpickled with joblib at import time, and
every request builds a pandas DataFrame and calls `predict_proba` (a classifier) or `predict`
(a regressor). No input validation, no logging of predictions: it only answers. Used by
bench/serving.py for comparison.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import boto3
import joblib
import pandas as pd
from sklearn.base import is_classifier

s3 = boto3.client("s3")
_object = s3.get_object(Bucket=os.environ["BASELINE_MODEL_BUCKET"], Key=os.environ["BASELINE_MODEL_KEY"])
model = joblib.load(io.BytesIO(_object["Body"].read()))
classifier = is_classifier(model)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = json.loads(event["body"])
    rows = [body["features"]] if "features" in body else body["instances"]
    frame = pd.DataFrame(rows)
    if classifier:
        probabilities = model.predict_proba(frame)[:, 1]
        predictions = [{"label": int(p >= 0.5), "probability": float(p)} for p in probabilities]
    else:
        predictions = [{"value": float(v)} for v in model.predict(frame)]
    return {"statusCode": 200, "body": json.dumps({"predictions": predictions})}
