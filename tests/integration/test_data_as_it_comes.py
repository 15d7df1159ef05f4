"""Data as it comes, through the real path: a CSV file -> train -> register -> the predict function on moto.

The model is trained on a file written the way real files are: column names with spaces
and punctuation, a pandas boolean column, "yes"/"no" text, store numbers that pandas
wrote as floats because of blanks, a string target with a named positive class, and an
id column. Clients then send the same values typed as JSON allows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlops.cloud import aws
from mlops.cloud.logstore import PredictionRecord
from mlops.cloud.registry import VersionRecord
from mlops.cloud.storage import iso, read_jsonl_gz
from mlops.handlers import feedback as feedback_handler
from mlops.handlers import log_writer as log_writer_handler
from mlops.handlers import predict as predict_handler
from mlops.model.spec import ModelSpec, parse_spec
from mlops.model.training import TrainingResult, labels, load_table, rows_frame, train_model
from mlops.monitoring.run import iter_prediction_batches
from mlops.serving.contract import ErrorBody, PredictRequest, PredictResponse
from mlops.shared import clock
from mlops.shared.prediction_ids import served_hour
from mlops.shared.resources import LOG_BUCKET, MODEL_NAME_ENV
from mlops.shared.settings import ServingSettings
from pydantic import TypeAdapter
from sklearn.metrics import roc_auc_score

from tests.conftest import AwsStack, register_and_promote
from tests.integration.serving_helpers import (
    CONTEXT,
    drain_queue,
    load_event,
    response_json,
    sqs_event_from,
    with_body,
)

SPEC = {
    "name": "clinic",
    "target": "diagnosis",
    "positive_label": "malignant",
    "id_column": "patient id",
    "features": [
        {"name": "Age (years)", "kind": "numeric", "min": 0},
        {"name": "store #", "kind": "categorical"},
        # Declared categorical, but the file holds pandas booleans: served as a boolean.
        {"name": "is member", "kind": "categorical"},
        {"name": "smoker", "kind": "boolean"},
    ],
}
ROW: dict[str, Any] = {"Age (years)": 55.0, "store #": 21, "is member": True, "smoker": "yes"}
REGISTERED = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SERVED = REGISTERED + timedelta(days=3)


def write_clinic_csv(path: Path, n: int = 1200, seed: int = 7) -> pd.DataFrame:
    """The file as an export would write it; returns the values it was written from."""
    rng = np.random.default_rng(seed)
    age = rng.normal(50, 12, n).round(1)
    store = rng.integers(1, 25, n).astype(float)
    member = rng.random(n) < 0.4
    smoker = rng.random(n) < 0.3
    logit = -1.0 + 0.08 * (age - 50) + 2.0 * (store == 21) + 0.8 * member + 0.9 * smoker
    malignant = rng.random(n) < 1 / (1 + np.exp(-logit))
    store[rng.random(n) < 0.05] = np.nan  # the blanks that make pandas write 21.0
    frame = pd.DataFrame(
        {
            "patient id": [f"P-{i:05d}" for i in range(n)],
            "Age (years)": age,
            "store #": store,
            "is member": member,
            "smoker": np.where(smoker, "yes", "no"),
            "diagnosis": np.where(malignant, "malignant", "benign"),
        }
    )
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def clinic_spec() -> ModelSpec:
    return parse_spec(SPEC)


@pytest.fixture(scope="module")
def clinic_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    path = tmp_path_factory.mktemp("clinic") / "clinic.csv"
    return path, write_clinic_csv(path)


@pytest.fixture(scope="module")
def clinic_data(clinic_file: tuple[Path, pd.DataFrame]) -> pd.DataFrame:
    return load_table(clinic_file[0])


@pytest.fixture(scope="module")
def clinic(clinic_spec: ModelSpec, clinic_data: pd.DataFrame) -> TrainingResult:
    return train_model(clinic_data, clinic_spec)


@pytest.fixture
def simulated_time() -> Iterator[clock.SimulatedClock]:
    source = clock.SimulatedClock(REGISTERED, factor=0.0)  # time stands still unless set
    clock.use(source)
    yield source
    clock.use(None)


@pytest.fixture
def clinic_champion(
    aws_stack: AwsStack,
    clinic: TrainingResult,
    clinic_data: pd.DataFrame,
    simulated_time: clock.SimulatedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[VersionRecord]:
    """The clinic model registered at REGISTERED and served by a fresh predict container at SERVED."""
    record = register_and_promote(aws_stack, clinic, clinic_data)
    monkeypatch.setenv(MODEL_NAME_ENV, clinic.spec.name)
    settings = ServingSettings()  # type: ignore[call-arg]
    predict_handler.use_runtime(
        predict_handler.PredictRuntime(settings, aws.client("s3"), aws.client("dynamodb"), aws.client("sqs"))
    )
    simulated_time.set(SERVED)
    yield record
    predict_handler.use_runtime(None)


def call(body: Any) -> tuple[int, Any]:
    response = predict_handler.handler(with_body(load_event("predict_batch.json"), body), CONTEXT)
    return response["statusCode"], response_json(response)


def probabilities(rows: list[dict[str, Any]], **envelope: Any) -> list[float]:
    status, body = call({"instances": rows, **envelope})
    assert status == 200, body
    PredictResponse.model_validate(body)
    return [p["probability"] for p in body["predictions"]]


def test_the_served_schema_keeps_names_and_reads_types_from_the_data(clinic_champion):
    response = predict_handler.handler(load_event("model_get.json"), CONTEXT)
    schema = response_json(response)["feature_schema"]

    fields = {f["name"]: f for f in schema["features"]}
    assert list(fields) == ["Age (years)", "store #", "is member", "smoker"]
    assert fields["is member"]["kind"] == "boolean"  # inferred from the pandas booleans
    assert fields["smoker"]["kind"] == "boolean"  # declared; "yes"/"no" in the file
    # The blanks made pandas write 1.0 ... 24.0; the categories are the integers' text.
    assert sorted(fields["store #"]["categories"], key=int) == [str(i) for i in range(1, 25)]
    assert schema["positive_label"] == "malignant"


def test_a_numeric_looking_category_is_one_category_however_it_is_typed(clinic_champion, clinic, capsys):
    # given the same patient with the store sent as a number, its text and a float
    rows = [{**ROW, "store #": value} for value in (21, "21", 21.0, "21.0")]

    got = probabilities(rows)

    # then one probability, the sklearn pipeline's for store "21", and no unseen category
    assert got[0] == got[1] == got[2] == got[3]
    expected = clinic.pipeline.predict_proba(rows_frame([{**ROW, "store #": "21"}], clinic.spec))[:, 1]
    assert got[0] == pytest.approx(float(expected[0]), abs=1e-9)
    assert '"UnseenCategories":[0.0]' in capsys.readouterr().out.replace(" ", "")
    # and the category matters: a store the model never saw answers differently
    assert probabilities([{**ROW, "store #": 99}])[0] != pytest.approx(got[0], abs=1e-3)


def test_booleans_are_read_from_json_booleans_and_every_documented_spelling(clinic_champion, clinic):
    yes = [True, "true", "TRUE", "yes", "Y", 1, "1"]
    no = [False, "false", "No", "n", 0, "0"]
    rows = [{**ROW, "is member": v, "smoker": v} for v in yes + no]

    got = probabilities(rows)

    assert len(set(got[: len(yes)])) == 1 and len(set(got[len(yes) :])) == 1
    reference = clinic.pipeline.predict_proba(
        rows_frame(
            [
                {**ROW, "is member": "true", "smoker": "true"},
                {**ROW, "is member": "false", "smoker": "false"},
            ],
            clinic.spec,
        )
    )[:, 1]
    assert got[0] == pytest.approx(float(reference[0]), abs=1e-9)
    assert got[-1] == pytest.approx(float(reference[1]), abs=1e-9)
    assert got[0] != pytest.approx(got[-1], abs=1e-3)


def test_a_value_that_is_no_boolean_is_refused_never_served_as_unseen(clinic_champion):
    status, body = call({"instances": [ROW, {**ROW, "smoker": "maybe"}]})

    assert status == 422
    ErrorBody.model_validate(body)
    assert [(p["row"], p["field"]) for p in body["problems"]] == [(1, "smoker")]
    assert "'maybe'" in body["problems"][0]["problem"] and "yes" in body["problems"][0]["problem"]


def test_a_string_target_is_learnt_with_its_named_positive_class(clinic, clinic_file, clinic_data):
    _, written = clinic_file
    # The training split is stratified: its positive rate is the share of "malignant" rows written.
    assert clinic.profile.positive_rate == pytest.approx(
        float((written["diagnosis"] == "malignant").mean()), abs=2e-3
    )
    assert clinic.test_metrics["roc_auc"] == pytest.approx(
        roc_auc_score(clinic.test_labels, clinic.test_scores)
    )
    assert clinic.test_metrics["roc_auc"] > 0.65

    # The labels are 1 exactly where the file says "malignant"; naming "benign" positive flips them.
    malignant = labels(clinic_data, clinic.spec)
    np.testing.assert_array_equal(malignant, (written["diagnosis"] == "malignant").astype(int))
    np.testing.assert_array_equal(
        labels(clinic_data, parse_spec({**SPEC, "positive_label": "benign"})), 1 - malignant
    )


def _logged(aws_stack: AwsStack) -> dict[str, tuple[str, dict[str, Any]]]:
    assert log_writer_handler.handler(sqs_event_from(drain_queue(aws_stack)), CONTEXT) == {
        "batchItemFailures": []
    }
    bucket = aws_stack.env[LOG_BUCKET.env_var]
    out = {}
    for obj in aws_stack.s3.list_objects_v2(Bucket=bucket, Prefix="predictions/")["Contents"]:
        for record in read_jsonl_gz(aws_stack.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()):
            PredictionRecord.model_validate(record)
            out[record["prediction_id"]] = (obj["Key"], record)
    return out


def test_client_ids_and_event_times_are_answered_logged_and_windowed_by_event_time(
    clinic_champion, aws_stack, fresh_settings, clinic_spec
):
    # given four past visits replayed after the fact, the last within the allowed clock skew
    times = [REGISTERED + timedelta(hours=h) for h in (1, 25, 26, 50)] + [SERVED + timedelta(minutes=4)]
    ids = ["visit-1", "visit-2", "visit-3", "visit-4", "visit-5"]
    rows = [{**ROW, "Age (years)": 40.0 + i} for i in range(5)]

    request = {"instances": rows, "ids": ids, "event_times": [t.isoformat() for t in times]}
    TypeAdapter(PredictRequest).validate_python(request)  # the documented contract describes it

    status, body = call(request)

    assert status == 200
    assert [p["prediction_id"] for p in body["predictions"]] == ids
    logged = _logged(aws_stack)
    assert sorted(logged) == ids
    for pid, ts in zip(ids, times, strict=True):
        key, record = logged[pid]
        assert record["timestamp"] == iso(ts)
        assert record["received_at"] == iso(SERVED)
        assert key.startswith(f"predictions/model_version=1/dt={ts:%Y-%m-%d}/hour={ts:%H}/")
    # when the monitor reads the second day, it sees the visits of that day, not the day they were sent
    batches = iter_prediction_batches(
        aws_stack.s3,
        aws_stack.env[LOG_BUCKET.env_var],
        1,
        REGISTERED + timedelta(days=1),
        REGISTERED + timedelta(days=2),
        clinic_spec.numeric_features,
        clinic_spec.categorical_features,
    )
    seen = [pid for batch in batches for pid in batch.prediction_ids]
    assert sorted(seen) == ["visit-2", "visit-3"]
    # and feedback joins on the client's id
    fb = feedback_handler.handler(
        with_body(
            load_event("feedback_single.json"), {"prediction_id": "visit-2", "label": 1, "source": "explicit"}
        ),
        CONTEXT,
    )
    assert fb["statusCode"] == 200


def test_rows_replayed_without_ids_get_ids_naming_the_hour_they_are_logged_under(
    clinic_champion, aws_stack, fresh_settings
):
    # given two past visits replayed with their event times, the ids left to the function,
    times = [REGISTERED + timedelta(hours=h, minutes=59, seconds=59) for h in (1, 30)]
    status, body = call({"instances": [ROW, ROW], "event_times": [t.isoformat() for t in times]})

    # then each id names the hour of its event time, the partition the log files it under (so the
    # monitor joins its label to that hour alone), not the hour it was served in.
    assert status == 200
    logged = _logged(aws_stack)
    for prediction, ts in zip(body["predictions"], times, strict=True):
        key, record = logged[prediction["prediction_id"]]
        assert record["timestamp"] == iso(ts)
        assert key.startswith(f"predictions/model_version=1/dt={ts:%Y-%m-%d}/hour={ts:%H}/")
        assert served_hour(prediction["prediction_id"]) == ts.replace(minute=0, second=0, microsecond=0)


def test_the_id_column_of_the_spec_may_be_sent_in_each_row(clinic_champion):
    rows = [{**ROW, "patient id": "P-00001"}, {**ROW, "patient id": 42}]

    status, body = call({"instances": rows})

    assert status == 200
    assert [p["prediction_id"] for p in body["predictions"]] == ["P-00001", "42"]


def test_one_row_takes_id_and_event_time(clinic_champion):
    event_time = (REGISTERED + timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    request = {"features": ROW, "id": "visit:77", "event_time": event_time}
    TypeAdapter(PredictRequest).validate_python(request)

    status, body = call(request)

    assert status == 200
    assert body["predictions"][0]["prediction_id"] == "visit:77"
    # null, as the contract allows, is the same as leaving the field out
    status, body = call({"instances": [ROW], "ids": None, "event_times": None})
    assert status == 200 and len(body["predictions"][0]["prediction_id"]) == 32


GOOD_TIME = (REGISTERED + timedelta(days=1)).isoformat()
BAD_IDS_AND_TIMES = [
    ("duplicate ids", {"instances": [ROW, ROW], "ids": ["a", "a"]}, [(1, "ids", "also the id of row 0")]),
    ("unsafe characters", {"instances": [ROW], "ids": ["a b/../c"]}, [(0, "ids", "A-Z a-z 0-9")]),
    ("too long", {"instances": [ROW], "ids": ["x" * 129]}, [(0, "ids", "1 to 128")]),
    ("not a string", {"instances": [ROW], "ids": [1.5]}, [(0, "ids", "got 1.5")]),
    ("a huge integer", {"instances": [ROW], "ids": [10**200]}, [(0, "ids", "too long to show")]),
    ("one id per row", {"instances": [ROW, ROW], "ids": ["a"]}, [(None, "ids", "one item per row (2)")]),
    ("ids with one row", {"features": ROW, "ids": ["a"]}, [(None, "ids", "with 'features' send 'id'")]),
    (
        "ids twice",
        {"instances": [{**ROW, "patient id": "p"}], "ids": ["a"]},
        [(None, "ids", "not both")],
    ),
    (
        "id column in some rows",
        {"instances": [{**ROW, "patient id": "p"}, ROW]},
        [(1, "patient id", "every row or in none")],
    ),
    (
        "no timezone",
        {"features": ROW, "event_time": "2026-03-03T10:00:00"},
        [(0, "event_time", "no timezone")],
    ),
    ("not a time", {"features": ROW, "event_time": "yesterday"}, [(0, "event_time", "ISO 8601")]),
    ("a number", {"features": ROW, "event_time": 1772438400}, [(0, "event_time", "got a number")]),
    (
        "future beyond the skew",
        {"features": ROW, "event_time": (SERVED + timedelta(minutes=6)).isoformat()},
        [(0, "event_time", "in the future")],
    ),
    (
        "before the model",
        {"instances": [ROW, ROW], "event_times": [GOOD_TIME, (REGISTERED - timedelta(hours=1)).isoformat()]},
        [(1, "event_times", "before the serving model (version 1) was registered")],
    ),
]


def test_bad_ids_and_event_times_are_refused_naming_each(clinic_champion, subtests):
    for name, body, expected in BAD_IDS_AND_TIMES:
        with subtests.test(name):
            status, answer = call(json.loads(json.dumps(body)))

            assert status == 422
            ErrorBody.model_validate(answer)
            got = [(p["row"], p["field"]) for p in answer["problems"]]
            assert got == [(row, field) for row, field, _ in expected]
            for problem, (_, _, text) in zip(answer["problems"], expected, strict=True):
                assert text in problem["problem"], problem
