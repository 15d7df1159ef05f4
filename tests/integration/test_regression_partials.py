"""Scheduled monitor runs of a regression champion read only the hours whose logs changed, and agree
with the whole window read into memory; error figures are checked against scikit-learn and numpy.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from mlops.cloud import aws
from mlops.cloud.logstore import (
    FEEDBACK_PREFIX,
    PREDICTIONS_PREFIX,
    FeedbackRecord,
    RegressionPredictionRecord,
    feedback_key,
    iter_feedback,
    latest_values,
    prediction_key,
    prediction_prefix,
    write_feedback,
    write_predictions,
)
from mlops.cloud.storage import iso
from mlops.datagen.pricing import TARGET, generate_prices
from mlops.model import bundle
from mlops.model.spec import load_spec, spec_from_json
from mlops.model.training import TrainingResult, feature_frame, frame_rows, train_model
from mlops.monitoring.partials import PartialStore
from mlops.regression.estimation import estimated_metrics, expected_losses
from mlops.regression.monitoring import evaluate_window, read_window, window_in_memory
from mlops.regression.partials import regression_window_from_partials
from mlops.regression.profile import read_regression_profile
from mlops.regression.truths import TRUTH_STATE_KEY
from mlops.shared.resources import LOG_BUCKET, MODEL_NAME_ENV, REPORT_BUCKET
from sklearn import metrics as skm

from tests.conftest import AwsStack, register_and_promote, s3_requests
from tests.integration.test_incremental_monitor import assert_close, comparable, run, stored_report
from tests.unit.test_regression_spec import PRICING_SPEC

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pricing() -> tuple[Any, TrainingResult]:
    spec = load_spec(PRICING_SPEC)
    data = generate_prices(3000, seed=2)
    return data, train_model(data, spec)


@pytest.fixture
def champion(
    aws_stack: AwsStack, pricing: tuple[Any, TrainingResult], monkeypatch: pytest.MonkeyPatch
) -> Any:
    data, result = pricing
    monkeypatch.setenv(MODEL_NAME_ENV, result.spec.name)
    register_and_promote(aws_stack, result, data)
    return result


class Quotes:
    """Priced quotes logged hour by hour as the log writer stores them; the true prices kept aside."""

    def __init__(self, stack: AwsStack, result: TrainingResult, seed: int) -> None:
        self.stack, self.result, self.seed = stack, result, seed
        self.truth: dict[str, float] = {}
        self.predicted: dict[str, float] = {}
        self.region: dict[str, str] = {}
        self.count = 0

    def hour(self, at: datetime, n: int = 50, objects: int = 2) -> list[RegressionPredictionRecord]:
        data = generate_prices(n, seed=self.seed * 1000 + self.count)
        features = feature_frame(data, self.result.spec)
        predicted = self.result.pipeline.predict(features)
        rows = frame_rows(features)
        records = []
        for i in range(n):
            pid = f"q{self.seed}-{self.count + i}"
            self.truth[pid] = float(data[TARGET].iloc[i])
            self.predicted[pid] = float(predicted[i])
            self.region[pid] = str(rows[i]["region"])
            records.append(
                RegressionPredictionRecord(
                    prediction_id=pid,
                    request_id=f"r{pid}",
                    timestamp=iso(at + timedelta(seconds=60 * i * 59 / n)),
                    model_name="pricing",
                    model_version=1,
                    features=rows[i],
                    value=float(predicted[i]),
                )
            )
        self.count += n
        step = -(-n // objects)
        for k in range(0, n, step):
            self.write(records[k : k + step], at)
        return records

    def day(self, start: datetime) -> list[list[RegressionPredictionRecord]]:
        """24 hours of quotes from `start` on, as `hour` logs them."""
        return [self.hour(start + timedelta(hours=h)) for h in range(24)]

    def write(self, records: list[RegressionPredictionRecord], at: datetime) -> None:
        bucket = self.stack.env[LOG_BUCKET.env_var]
        key = prediction_key(1, at, [r.prediction_id for r in records])
        write_predictions(self.stack.s3, bucket, key, records)

    def label(
        self, records: list[RegressionPredictionRecord], at: datetime, written_at: datetime | None = None
    ) -> None:
        """The true prices of `records`, received at `at`, in one object the log writer wrote at
        `written_at` (later: a copy of a message SQS delivered again)."""
        feedback = [
            FeedbackRecord(
                prediction_id=r.prediction_id,
                label=self.truth[r.prediction_id],
                source="explicit",
                observed_at=iso(at),
                received_at=iso(at),
            )
            for r in records
        ]
        ids = [r.prediction_id for r in records]
        key = feedback_key(written_at or at, ids)
        write_feedback(self.stack.s3, self.stack.env[LOG_BUCKET.env_var], key, feedback)

    def arrays(self, records: list[RegressionPredictionRecord]) -> tuple[np.ndarray, np.ndarray]:
        ids = [r.prediction_id for r in records]
        return np.array([self.truth[i] for i in ids]), np.array([self.predicted[i] for i in ids])


def in_memory_report(stack: AwsStack, end: datetime, now: datetime) -> dict[str, Any]:
    """The window read whole into memory (every object, `FirstSeen`), evaluated the same way."""
    registry = stack.registry("pricing")
    record = registry.get_version(1)
    read = lambda name: bundle.read_artifact(stack.s3, stack.artifact_bucket, record.artifacts[name])  # noqa: E731
    spec = spec_from_json(read(bundle.SPEC).decode())
    profile = read_regression_profile(read(bundle.PROFILE))
    start = end - timedelta(hours=24)
    bucket = stack.env[LOG_BUCKET.env_var]
    truths = latest_values(iter_feedback(stack.s3, bucket, start, max(end, now) + timedelta(microseconds=1)))
    window = read_window(stack.s3, bucket, 1, start, end, spec.feature_names)
    summary = window_in_memory(spec, profile, window, truths)
    report = evaluate_window(
        spec, profile, summary, version=1, champion=True, run_id="x", start=start, end=end, now=now
    )
    # The label-free estimate of the whole window at once, as the loss model gives it,
    want = estimated_metrics(profile.loss_model, window.columns, np.asarray(window.values))["rmse"]
    assert report.estimate.value == pytest.approx(want, rel=1e-9)
    # and the labelled rows the stored partials give: the same rows, values and expected losses.
    stored = regression_window_from_partials(
        PartialStore(stack.s3, bucket, stack.env[REPORT_BUCKET.env_var]), spec, profile, 1, start, end, truths
    )
    assert stored.label_true == summary.label_true
    labelled = [i for i, pid in enumerate(window.ids) if pid in truths]
    f, g = expected_losses(
        profile.loss_model,
        {c: [v[i] for i in labelled] for c, v in window.columns.items()},
        np.array([window.values[i] for i in labelled]),
    )
    np.testing.assert_allclose(stored.label_expected_absolute, f, rtol=1e-12)
    np.testing.assert_allclose(stored.label_expected_squared, g, rtol=1e-12)
    return report.model_dump(mode="json")


def assert_matches_in_memory(stack: AwsStack, summary: dict[str, Any], end: datetime) -> dict[str, Any]:
    got = stored_report(stack, summary)
    assert_close(comparable(got), comparable(in_memory_report(stack, end, end)))
    return got


def test_hourly_runs_read_each_hour_once_and_equal_the_whole_window_in_memory(
    aws_stack: AwsStack, champion: TrainingResult, pricing: tuple[Any, TrainingResult]
) -> None:
    # Given 24 hours of quotes in two objects an hour, the true price of every second one known,
    quotes = Quotes(aws_stack, champion, seed=3)
    start = END - timedelta(hours=24)
    hours = quotes.day(start)
    labelled = [r for h in hours for r in h[::2]]
    quotes.label(labelled, END - timedelta(minutes=5))

    # when the scheduled run covers the window, and runs again for the same event,
    listed = s3_requests(aws.client("s3"), "ListObjectsV2")
    first = run(END)
    again = run(END)

    # then the first run read every object once and the re-run none, with the same report,
    assert first["reads"]["log_gets"] == 48 and first["reads"]["hours_computed"] == 24
    # each run found the window's 48 objects with one listing request, not one an hour (besides
    # the one that finds the versions with traffic, and the one-key probes of a version's traffic),
    listings = [
        c["Prefix"]
        for c in listed
        if c.get("Prefix", "").startswith(PREDICTIONS_PREFIX) and c.get("MaxKeys") != 1
    ]
    assert listings == [PREDICTIONS_PREFIX + "model_version=", prediction_prefix(1)] * 2
    # and the re-run read each stored hour with one request: its partial and rows are one object,
    assert again["reads"]["partial_gets"] == 24
    assert again["reads"]["log_gets"] == 0 and again["reads"]["hours_reused"] == 24
    report = assert_matches_in_memory(aws_stack, first, END)
    assert_close(comparable(stored_report(aws_stack, again)), comparable(report))

    # and its error figures are scikit-learn's on the labelled quotes: the window, each hour, each region.
    y, p = quotes.arrays(labelled)
    assert report["prediction_count"] == 24 * 50 and report["label_count"] == y.size
    assert report["performance"]["production"]["value"] == pytest.approx(
        np.sqrt(skm.mean_squared_error(y, p)), rel=1e-9
    )
    assert report["residual_mean"] == pytest.approx(float(np.mean(y - p)), rel=1e-9)
    for hour, row in zip(hours, report["hourly"], strict=True):
        hy, hp = quotes.arrays(hour[::2])
        assert row["predictions"] == 50 and row["labels"] == hy.size
        assert row["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(hy, hp)), rel=1e-9)
        assert row["mae"] == pytest.approx(skm.mean_absolute_error(hy, hp), rel=1e-9)
        assert row["r2"] == pytest.approx(skm.r2_score(hy, hp), rel=1e-9)
    regions = np.array([quotes.region[r.prediction_id] for r in labelled])
    for region, figures in report["fairness"]["groups"]["region"].items():
        mask = regions == region
        assert figures["n"] == mask.sum()
        assert figures["mae"] == pytest.approx(skm.mean_absolute_error(y[mask], p[mask]), rel=1e-9)
        assert figures["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y[mask], p[mask])), rel=1e-9)

    # and the next hour's run reads only the new hour's objects.
    quotes.hour(END)
    later = run(END + timedelta(hours=1))
    assert later["reads"]["log_gets"] == 2 and later["reads"]["hours_computed"] == 1
    assert_matches_in_memory(aws_stack, later, END + timedelta(hours=1))


def test_late_labels_and_redelivered_copies_update_their_hour_without_double_counting(
    aws_stack: AwsStack, champion: TrainingResult
) -> None:
    # Given a window profiled by a run, with no true price known yet,
    quotes = Quotes(aws_stack, champion, seed=5)
    start = END - timedelta(hours=24)
    hours = quotes.day(start)
    first = run(END)
    assert stored_report(aws_stack, first)["label_count"] == 0

    # when the prices of hours 3 to 6 (the minimum of labels) arrive late, SQS redelivers two of
    # hour 7's quotes with a new one into a second object of that hour, and the next run comes
    # after a new hour of quotes,
    late = [r for h in hours[3:7] for r in h]
    quotes.label(late, END + timedelta(minutes=30))
    extra = quotes.hour(start + timedelta(hours=7), n=1, objects=1)
    quotes.write([*hours[7][:2], *extra], start + timedelta(hours=7))
    quotes.hour(END)
    second = run(END + timedelta(hours=1))

    # then only hour 7 (changed objects) and the new hour are read again,
    assert second["reads"]["hours_computed"] == 2
    assert second["reads"]["log_gets"] == 3 + 1 + 2
    # each quote counts once, and the late prices give their hours' errors, as the whole window does.
    report = assert_matches_in_memory(aws_stack, second, END + timedelta(hours=1))
    assert report["prediction_count"] == 23 * 50 + 1 + 50
    y, p = quotes.arrays(late)
    assert report["label_count"] == 200
    assert report["performance"]["production"]["value"] == pytest.approx(
        np.sqrt(skm.mean_squared_error(y, p)), rel=1e-9
    )
    assert [h["labels"] for h in report["hourly"]][2:6] == [50] * 4


def test_each_run_reads_only_the_feedback_that_arrived_since_the_run_before(
    aws_stack: AwsStack, champion: TrainingResult
) -> None:
    # Given a window whose first six hours' true prices arrived in three objects before a run,
    quotes = Quotes(aws_stack, champion, seed=7)
    start = END - timedelta(hours=24)
    hours = quotes.day(start)
    for k in range(3):
        quotes.label(hours[2 * k] + hours[2 * k + 1], END - timedelta(minutes=40 - 10 * k))
    gets = s3_requests(aws.client("s3"), "GetObject")

    def feedback_read(summary: dict[str, Any]) -> int:
        """Feedback objects the run read: as it counts them, and as the S3 client saw the requests."""
        read = [c for c in gets if c["Key"].startswith(FEEDBACK_PREFIX)]
        gets.clear()
        assert summary["reads"]["feedback_gets"] == len(read)
        return len(read)

    first = run(END)
    assert feedback_read(first) == 3
    assert assert_matches_in_memory(aws_stack, first, END)["label_count"] == 300

    # when, before the next run, hours 6 to 9's prices arrive in one object, and SQS delivers the
    # first object's message again into a second object,
    quotes.label([r for h in hours[6:10] for r in h], END + timedelta(minutes=20))
    quotes.label(hours[0] + hours[1], END - timedelta(minutes=40), written_at=END + timedelta(minutes=25))
    quotes.hour(END)
    second = run(END + timedelta(hours=1))

    # then that run reads those two objects only, counts each price of its window (hours 1 to 9
    # now) once, and equals the whole window read into memory (every feedback object read again),
    assert feedback_read(second) == 2
    labelled = [r for h in hours[1:10] for r in h]
    report = assert_matches_in_memory(aws_stack, second, END + timedelta(hours=1))
    y, p = quotes.arrays(labelled)
    assert report["label_count"] == y.size == 450
    assert report["performance"]["production"]["value"] == pytest.approx(
        np.sqrt(skm.mean_squared_error(y, p)), rel=1e-9
    )
    # a re-run reads no feedback object and reports the same,
    again = run(END + timedelta(hours=1))
    assert feedback_read(again) == 0
    assert_close(comparable(stored_report(aws_stack, again)), comparable(report))

    # a longer window than the runs before held reads its feedback again (five objects, copy once),
    longer = run(END + timedelta(hours=1), window_hours=48)
    assert feedback_read(longer) == 5
    assert stored_report(aws_stack, longer)["label_count"] == 500

    # and stored truths that cannot be read are read again from the window, not a failed run.
    aws_stack.s3.put_object(Bucket=aws_stack.env[REPORT_BUCKET.env_var], Key=TRUTH_STATE_KEY, Body=b"{")
    broken = run(END + timedelta(hours=1))
    assert feedback_read(broken) == 5
    assert_close(comparable(stored_report(aws_stack, broken)), comparable(report))
