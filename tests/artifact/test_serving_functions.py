"""Predict, log writer, feedback and admin from the code asset plus the serving layer only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from mlops.cloud.logstore import FEEDBACK_PREFIX, iter_predictions
from mlops.cloud.storage import list_keys
from mlops.model.training import TrainingResult, feature_frame
from mlops.shared.resources import LOG_BUCKET

from infrastructure.artifact import LambdaProcess
from infrastructure.lambdas import Layer
from tests.artifact.conftest import ReadOnlyArtifact, ServerStack, assert_ran_as_on_lambda
from tests.integration.serving_helpers import drain_queue, load_event, response_json, sqs_event_from


@pytest.fixture(scope="module")
def predict(artifact: ReadOnlyArtifact, server_stack: ServerStack) -> Iterator[LambdaProcess]:
    with server_stack.start(artifact, "Predict") as process:
        yield process


def test_predict_answers_like_the_trained_pipeline(predict: LambdaProcess, trained: TrainingResult) -> None:
    # given the champion v1 and the batch of the sample event
    event = load_event("predict_batch.json")
    rows = json.loads(event["body"])["instances"]

    # when the function built from the artifact answers it
    answer = predict.invoke(event)

    # then every probability matches scikit-learn's on the same rows
    assert answer["statusCode"] == 200, answer
    body = response_json(answer)
    assert body["model_version"] == 1
    expected = trained.pipeline.predict_proba(feature_frame(pd.DataFrame(rows), trained.spec))[:, 1]
    got = np.array([p["probability"] for p in body["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [p["label"] for p in body["predictions"]] == [int(p >= 0.5) for p in got]


def test_predict_names_every_bad_field_and_describes_the_model(predict: LambdaProcess) -> None:
    invalid = predict.invoke(load_event("predict_invalid_rows.json"))
    assert invalid["statusCode"] == 422, invalid
    assert response_json(invalid)["problems"], invalid

    malformed = predict.invoke(load_event("predict_malformed_json.json"))
    assert malformed["statusCode"] == 400, malformed

    model = predict.invoke(load_event("model_get.json"))
    assert model["statusCode"] == 200, model
    assert response_json(model)["model_version"] == 1


def test_log_writer_stores_what_predict_queued(
    predict: LambdaProcess, artifact: ReadOnlyArtifact, server_stack: ServerStack
) -> None:
    # given predictions answered by the artifact (queued on the moto server's SQS)
    answered = response_json(predict.invoke(load_event("predict_single.json")))["predictions"]
    messages = drain_queue(server_stack.stack)
    assert messages, "predict queued nothing"

    # when the log writer built from the artifact receives them as SQS delivers them
    with server_stack.run(artifact, "LogWriter") as writer:
        out = writer.invoke(sqs_event_from(messages))

    # then every answered prediction is in the log bucket
    assert out == {"batchItemFailures": []}
    bucket = server_stack.stack.env[LOG_BUCKET.env_var]
    now = datetime.now(UTC)
    batches = iter_predictions(server_stack.stack.s3, bucket, 1, now - timedelta(hours=1), now)
    logged = {r.prediction_id for batch in batches for r in batch}
    assert answered[0]["prediction_id"] in logged


def test_feedback_is_queued_once_and_the_log_writer_stores_it(
    artifact: ReadOnlyArtifact, server_stack: ServerStack
) -> None:
    event = load_event("feedback_single.json")
    with server_stack.run(artifact, "Feedback") as feedback:
        first = feedback.invoke(event)
        again = feedback.invoke(event)
    assert first["statusCode"] == 200, first
    assert response_json(first)["stored"] == 1
    assert response_json(again)["duplicates"] == 1
    messages = drain_queue(server_stack.stack)
    assert len(messages) == 1
    with server_stack.run(artifact, "LogWriter") as writer:
        assert writer.invoke(sqs_event_from(messages)) == {"batchItemFailures": []}
    bucket = server_stack.stack.env[LOG_BUCKET.env_var]
    assert len(list(list_keys(server_stack.stack.s3, bucket, FEEDBACK_PREFIX))) == 1


def test_admin_lists_and_shows_the_registered_model(
    artifact: ReadOnlyArtifact, server_stack: ServerStack
) -> None:
    with server_stack.run(artifact, "Admin") as admin:
        listed = admin.invoke(load_event("admin_list_models.json"))
        shown = admin.invoke(load_event("admin_show_model.json"))
    assert listed["statusCode"] == 200, listed
    assert [v["version"] for v in response_json(listed)["versions"]] == [1]
    assert shown["statusCode"] == 200, shown
    assert response_json(shown)["version"] == 1


def test_predict_ran_from_its_shipped_bytecode_without_writing(
    predict: LambdaProcess, artifact: ReadOnlyArtifact
) -> None:
    # given the answers above (which imported whatever a request imports lazily)
    # then no module was compiled from source and nothing could be written
    assert_ran_as_on_lambda(predict.report(), artifact, Layer.SERVING)
