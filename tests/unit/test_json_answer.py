"""The predict answer: orjson's text where it says what the resolver's serializer says."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mlops.handlers.http import APPLICATION_JSON, json_answer, serialize


def _serialized(body: dict[str, Any]) -> str:
    """What the dispatcher of every HTTP function writes for a body (the reference)."""
    return serialize(body)


def test_an_answer_is_ascii_json_with_the_values_the_resolver_would_write():
    # Given predictions whose probabilities have spellings of their own
    probabilities = [5.7248975435908456e-05, 1e-300, 0.1 + 0.2, 1 / 3, 0.0, 1.0]
    body = {
        "model_version": 3,
        "predictions": [
            {"prediction_id": f"id-{i}", "label": int(p >= 0.5), "probability": p}
            for i, p in enumerate(probabilities)
        ],
    }
    # When the answer is made
    answer = json_answer(body, probabilities)
    # Then its text is ready, ASCII, JSON, and holds exactly the resolver's values
    assert answer.status_code == 200
    assert answer.content_type == APPLICATION_JSON
    assert isinstance(answer.body, str) and answer.body.isascii()
    assert json.loads(answer.body) == json.loads(_serialized(body)) == body


@pytest.mark.parametrize(
    ("body", "outputs"),
    [
        ({"model_version": 1, "predictions": [{"probability": float("nan")}]}, [float("nan")]),
        ({"model_version": 1, "predictions": [{"value": float("inf")}]}, [float("inf")]),
        ({"model_version": 1, "note": "caf\u00e9"}, []),
        ({"model_version": 2**70}, []),
    ],
)
def test_what_orjson_would_write_otherwise_is_left_to_the_resolver(
    body: dict[str, Any], outputs: list[float]
):
    # Given an answer with a non-finite output, text beyond ASCII or an integer beyond 64 bits
    # When the answer is made
    answer = json_answer(body, outputs)
    # Then the resolver serializes it as any other answer (escaping text, spelling NaN as it does)
    assert answer.body is body
    assert _serialized(body).isascii()
