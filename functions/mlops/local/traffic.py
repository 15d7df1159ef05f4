"""Customers sent to a running API as any client would send them: predictions, then their true labels.

`mlops local traffic` uses it so that a newcomer can give a fresh local stack enough labelled
traffic for monitoring and retraining without writing a client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops.local.demo import Api
from mlops.shared.errors import MlopsError

# Rows per request: large enough that a thousand customers take a few requests, far under the limit.
PREDICT_BATCH = 100
FEEDBACK_BATCH = 500


class TrafficError(MlopsError):
    """The API refused what a well-behaved client sent."""


@dataclass
class TrafficSummary:
    predictions: int = 0
    labels: int = 0
    served_by: dict[str, int] = field(default_factory=dict)
    prediction_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "predictions": self.predictions,
            "labels": self.labels,
            "served_by": self.served_by,
            "example_prediction_id": self.prediction_ids[0] if self.prediction_ids else None,
        }


def send_traffic(
    api: Api, rows: list[dict[str, Any]], truth: list[int] | None, batch: int = PREDICT_BATCH
) -> TrafficSummary:
    """POST `rows` to /predict in batches, then each row's label (when `truth` is given) to /feedback."""
    summary = TrafficSummary()
    labelled: list[dict[str, Any]] = []
    for start in range(0, len(rows), batch):
        status, body = api.call("POST", "/predict", {"instances": rows[start : start + batch]})
        if status != 200:
            raise TrafficError(f"/predict answered {status}: {body}")
        version = f"v{body['model_version']}"
        summary.served_by[version] = summary.served_by.get(version, 0) + len(body["predictions"])
        for offset, prediction in enumerate(body["predictions"]):
            summary.prediction_ids.append(prediction["prediction_id"])
            if truth is not None:
                labelled.append(
                    {
                        "prediction_id": prediction["prediction_id"],
                        "label": int(truth[start + offset]),
                        "source": "explicit",
                    }
                )
    summary.predictions = len(summary.prediction_ids)
    for start in range(0, len(labelled), FEEDBACK_BATCH):
        status, body = api.call("POST", "/feedback", {"items": labelled[start : start + FEEDBACK_BATCH]})
        if status != 200:
            raise TrafficError(f"/feedback answered {status}: {body}")
        summary.labels += len(labelled[start : start + FEEDBACK_BATCH])
    return summary
