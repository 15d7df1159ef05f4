"""Scheduled monitor runs on moto read only what arrived since the last run, and agree with a full read.

Each run goes through the monitor handler. The reference is the from-scratch read of the same
window (every object of every hour, `FirstSeen`, the labels of the same feedback), evaluated the
same way; label metrics are also checked against scikit-learn on the logged records.
"""

from __future__ import annotations

import gzip
import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from mlops.cloud import aws
from mlops.cloud.logstore import (
    FeedbackRecord,
    PredictionRecord,
    feedback_key,
    iter_feedback,
    latest_labels,
    prediction_key,
    prediction_prefix,
    write_feedback,
)
from mlops.cloud.registry import VersionRecord
from mlops.cloud.storage import iso, list_keys
from mlops.datagen.churn import generate_churn
from mlops.handlers import monitor
from mlops.model.training import TrainingResult, feature_frame, frame_rows
from mlops.monitoring.rollup import (
    HOURS_NAME,
    RECORDS_INLINE_FORMAT,
    ROLLUP_FORMAT,
    ROLLUP_NAME,
    ROWS_INLINE_FORMAT,
    DayRollup,
    rollup_key,
)
from mlops.monitoring.run import (
    accumulate,
    evaluate,
    iter_prediction_batches,
    load_reference,
    received_in,
)
from mlops.serving.log_writer import plan_log_objects, write_log_object
from mlops.shared.prediction_ids import new_prediction_ids
from mlops.shared.resources import LOG_BUCKET, REPORT_BUCKET
from sklearn.metrics import roc_auc_score

from tests.conftest import AwsStack, register_and_promote, s3_requests
from tests.integration.serving_helpers import CONTEXT, scheduled

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def run(at: datetime, window_hours: int | None = None) -> dict[str, Any]:
    monitor.settings.cache_clear()
    event = scheduled(at)
    if window_hours is not None:
        event = {**event, "detail": {"window_hours": window_hours}}
    return monitor.handler(event, CONTEXT)


class Traffic:
    """Scored churn rows logged hour by hour as the log writer stores them, labels kept aside."""

    def __init__(
        self, stack: AwsStack, trained: TrainingResult, seed: int = 3, client_ids: bool = False
    ) -> None:
        """Ids as the predict function makes them (naming the hour served), or, with `client_ids`,
        ids a client sent (which name none)."""
        self.stack, self.trained = stack, trained
        self.client_ids = client_ids
        self.bucket = stack.env[LOG_BUCKET.env_var]
        self.rng = np.random.default_rng(seed)
        self.records: dict[str, PredictionRecord] = {}
        self.truth: dict[str, int] = {}
        self.count = 0

    def hour(self, at: datetime, n: int = 60, objects: int = 2, version: int = 1) -> list[PredictionRecord]:
        data = generate_churn(n, seed=int(self.rng.integers(1 << 30)))
        features = feature_frame(data, self.trained.spec)
        proba = self.trained.pipeline.predict_proba(features)[:, 1]
        rows = frame_rows(features)
        out = []
        for i in range(n):
            served = at + timedelta(seconds=3599 * i / n)
            pid = f"p{self.count}" if self.client_ids else new_prediction_ids(1, served)[0]
            self.count += 1
            out.append(
                PredictionRecord(
                    prediction_id=pid,
                    request_id=pid,
                    timestamp=iso(served),
                    model_name="churn",
                    model_version=version,
                    features=rows[i],
                    probability=float(proba[i]),
                    label=int(proba[i] >= 0.5),
                )
            )
            self.truth[pid] = int(data[self.trained.spec.target].iloc[i])
        for part in np.array_split(np.arange(n), objects):
            self.write([out[i] for i in part], at)
        self.records.update((r.prediction_id, r) for r in out)
        return out

    def hours(self, start: datetime, count: int) -> list[list[PredictionRecord]]:
        """`count` hours of traffic from `start` on, as `hour` logs them."""
        return [self.hour(start + timedelta(hours=h)) for h in range(count)]

    def write(self, records: list[PredictionRecord], hour: datetime, arrived: datetime | None = None) -> None:
        """Write `records` (of `hour`) as the log writer does when their batch comes in at `arrived`
        (default: within the hour); a late batch's marker first."""
        (obj,) = plan_log_objects([("batch", records)])
        assert obj.key == prediction_key(records[0].model_version, hour, [r.prediction_id for r in records])
        write_log_object(self.stack.s3, self.bucket, obj, now=arrived or hour + timedelta(minutes=59))

    def label(self, records: list[PredictionRecord], at: datetime) -> None:
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
        write_feedback(
            self.stack.s3, self.bucket, feedback_key(at, [f.prediction_id for f in feedback]), feedback
        )


def a_day_of_traffic(
    stack: AwsStack, trained: TrainingResult, seed: int, client_ids: bool = False
) -> tuple[Traffic, datetime, list[list[PredictionRecord]]]:
    """24 hours of traffic ending at END: the traffic, the window's start and each hour's records."""
    traffic = Traffic(stack, trained, seed=seed, client_ids=client_ids)
    start = END - timedelta(hours=24)
    return traffic, start, traffic.hours(start, 24)


def from_scratch(stack: AwsStack, start: datetime, end: datetime, now: datetime) -> Any:
    """The window read in full, every object once, as the monitor read it before partials."""
    registry = stack.registry()
    settings = monitor.settings()
    reference = load_reference(registry, stack.s3, settings.artifact_bucket, 1)
    bucket = stack.env[LOG_BUCKET.env_var]
    feedback = list(iter_feedback(stack.s3, bucket, start, now + timedelta(microseconds=1)))
    labels = latest_labels(feedback)
    spec = reference.spec
    batches = iter_prediction_batches(
        stack.s3, bucket, 1, start, end, spec.numeric_features, spec.categorical_features
    )
    acc = accumulate(reference, batches, labels)
    received = received_in(feedback, start, end)
    unmatched = sum(1 for fb in received if fb.prediction_id not in acc.matched_ids)
    return reference, acc, len(received), unmatched


def stored_report(stack: AwsStack, summary: dict[str, Any]) -> dict[str, Any]:
    key = summary["versions"][0]["report_key"]
    body = stack.s3.get_object(Bucket=stack.env[REPORT_BUCKET.env_var], Key=key)["Body"].read()
    return dict(json.loads(body))


def assert_close(got: Any, want: Any, path: str = "") -> None:
    """Equal structures; floats equal to rounding (partial sums add in another order)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), path
        for k in want:
            assert_close(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        assert isinstance(got, int | float), path
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12) or (
            math.isnan(got) and math.isnan(want)
        ), (
            path,
            got,
            want,
        )
    else:
        assert got == want, path


VOLATILE = ("run_id", "generated_at", "report_key")


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k not in VOLATILE}


def assert_matches_from_scratch(
    stack: AwsStack, summary: dict[str, Any], end: datetime, hours: int = 24
) -> dict[str, Any]:
    start = end - timedelta(hours=hours)
    reference, acc, received, unmatched = from_scratch(stack, start, end, end)
    want = evaluate(
        acc,
        reference,
        champion=True,
        run_id="x",
        window_start=start,
        window_end=end,
        generated_at=end,
        feedback_received=received,
        unmatched_feedback=unmatched,
    ).model_dump(mode="json")
    got = stored_report(stack, summary)
    assert_close(comparable(got), comparable(want))
    return got


def sklearn_auc(traffic: Traffic, labelled: list[PredictionRecord]) -> float:
    y = [traffic.truth[r.prediction_id] for r in labelled]
    return float(roc_auc_score(y, [r.probability for r in labelled]))


def test_hourly_runs_read_each_hour_once_and_equal_a_full_read(
    aws_stack: AwsStack, champion: VersionRecord, trained: TrainingResult
) -> None:
    # Given 24 hours of traffic in two objects an hour, labels for a third of it,
    traffic, _, hours = a_day_of_traffic(aws_stack, trained, 3)
    traffic.label([r for h in hours for r in h[::3]], END - timedelta(minutes=5))

    # when the scheduled run covers the window, and runs again for the same event,
    first = run(END)
    again = run(END)

    # then the first run read every object once and the re-run read none, with the same report,
    assert first["reads"]["log_gets"] == 48 and first["reads"]["hours_computed"] == 24
    assert again["reads"]["log_gets"] == 0 and again["reads"]["hours_reused"] == 24
    report = assert_matches_from_scratch(aws_stack, first, END)
    assert_close(comparable(stored_report(aws_stack, again)), comparable(report))
    assert report["prediction_count"] == 24 * 60
    labelled = [r for h in hours for r in h[::3]]
    assert report["performance"]["metrics"]["roc_auc"] == pytest.approx(sklearn_auc(traffic, labelled))

    # and the next hour's run reads only the new hour's objects.
    traffic.hour(END)
    later = run(END + timedelta(hours=1))
    assert later["reads"]["log_gets"] == 2 and later["reads"]["hours_computed"] == 1
    assert_matches_from_scratch(aws_stack, later, END + timedelta(hours=1))


def test_late_labels_and_late_copies_update_their_hour_without_double_counting(
    aws_stack: AwsStack, champion: VersionRecord, trained: TrainingResult
) -> None:
    # Given a window profiled by a run, with no labels yet,
    traffic, start, hours = a_day_of_traffic(aws_stack, trained, 5)
    first = run(END)
    assert stored_report(aws_stack, first)["labels"]["label_count"] == 0

    # when labels for hour 3 arrive late, SQS redelivers two of hour 7's predictions with a new one
    # into a second object of that hour, and the next run comes after a new hour of traffic,
    late_at = END + timedelta(minutes=30)
    traffic.label(hours[3], late_at)
    redelivered = hours[7][:2]
    extra = traffic.hour(start + timedelta(hours=7), n=1, objects=1)
    traffic.write([*redelivered, *extra], start + timedelta(hours=7), arrived=late_at)
    traffic.hour(END)
    second = run(END + timedelta(hours=1))

    # then only hour 7 (changed objects) and the new hour are read again,
    assert second["reads"]["hours_computed"] == 2
    assert second["reads"]["log_gets"] == 3 + 1 + 2
    # each prediction counts once, and the late labels give hour 3's performance, as a full read does.
    report = assert_matches_from_scratch(aws_stack, second, END + timedelta(hours=1))
    in_window = [r for h in hours[1:] for r in h] + extra
    assert report["prediction_count"] == len(in_window) + 60
    assert report["labels"]["label_count"] == 60
    assert report["performance"]["metrics"]["roc_auc"] == pytest.approx(sklearn_auc(traffic, hours[3]))


def test_a_missed_run_is_caught_up_and_an_unaligned_window_cuts_its_edge_hours(
    aws_stack: AwsStack, champion: VersionRecord, trained: TrainingResult
) -> None:
    # Given a run, then three hours of traffic whose hourly runs did not happen,
    traffic = Traffic(aws_stack, trained, seed=7)
    start = END - timedelta(hours=24)
    hours = traffic.hours(start, 27)
    traffic.label([r for h in hours for r in h[::2]], END + timedelta(hours=3))
    run(END)

    # when the next run ends 20 minutes into an hour,
    at = END + timedelta(hours=3, minutes=20)
    caught_up = run(at)

    # then it profiles the three missed hours and the hour the window's start cuts (the hour its end
    # cuts holds nothing yet), stores the whole hours only, and equals a full read of its window.
    assert caught_up["reads"]["hours_computed"] == 3 + 1
    assert caught_up["reads"]["hours_reused"] == 24 - 4
    assert_matches_from_scratch(aws_stack, caught_up, at)
    bucket = aws_stack.env[REPORT_BUCKET.env_var]
    partials = list(list_keys(aws_stack.s3, bucket, "reports/partials/model_version=1/"))
    partials = [k for k in partials if k.endswith("/day.json.gz")]
    assert [k.rsplit("/", 2)[1] for k in partials] == ["dt=2026-11-19", "dt=2026-11-20"]
    stored = [
        DayRollup.from_bytes(aws_stack.s3.get_object(Bucket=bucket, Key=k)["Body"].read(), ["age_band"], dict)
        for k in partials
    ]
    assert sum(len(day.hours) for day in stored if day is not None) == 27


def test_a_window_of_days_merges_whole_days_and_late_labels_reach_their_day(
    aws_stack: AwsStack, champion: VersionRecord, trained: TrainingResult
) -> None:
    # Given three days of traffic profiled by a 72-hour run, two whole days inside its window,
    traffic = Traffic(aws_stack, trained, seed=9)
    start = END - timedelta(hours=72)
    hours = [traffic.hour(start + timedelta(hours=h), n=20, objects=1) for h in range(72)]
    first = run(END, window_hours=72)
    assert first["reads"]["hours_computed"] == 72
    assert_matches_from_scratch(aws_stack, first, END, hours=72)

    # when labels arrive late for predictions of a whole day and of the last day, and a new hour of
    # traffic, and the next run covers 72 hours again,
    late_at = END + timedelta(minutes=40)
    traffic.label(hours[30] + hours[70], late_at)
    traffic.hour(END, n=20, objects=1)
    puts = s3_requests(aws.client("s3"), "PutObject")
    later = run(END + timedelta(hours=1), window_hours=72)

    # then it reads the new hour's object only and one roll-up per day, not per hour, the hours
    # objects of the two days the window cuts, and the rows and label records of the two hours the
    # labels' ids name only: the whole day its labels changed is one read of its day object and one
    # write of it, its hours' counts neither read nor written,
    assert later["reads"]["log_gets"] == 1 and later["reads"]["hours_computed"] == 1
    assert later["reads"]["hours_rows_read"] == 2 and later["reads"]["hours_labels_read"] == 2
    assert later["reads"]["partial_gets"] == 4 + 2 + 2 + 2
    labelled_day, last_day = (start + timedelta(hours=h) for h in (30, 70))
    version_days = rollup_key(1, start).rsplit("dt=", 1)[0]
    written = [p["Key"] for p in puts if p["Key"].startswith(version_days)]
    assert sorted(k for k in written if "/rows-" not in k and "/labels-" not in k) == sorted(
        [
            rollup_key(1, labelled_day),
            rollup_key(1, last_day),
            rollup_key(1, last_day, HOURS_NAME),
        ]
    )
    # (and the new hour's rows, once, and the label records of the three hours whose labels changed)
    assert [k.rsplit("/", 1)[1][:8] for k in written if "/rows-" in k] == [f"rows-{END:%H}-"]
    assert sorted(k.rsplit("/", 1)[1][:9] for k in written if "/labels-" in k) == sorted(
        f"labels-{h:%H}" for h in (labelled_day, last_day, END)
    )
    assert later["reads"]["feedback_gets"] == 1
    # and equals a full read, the late labels in their hours,
    report = assert_matches_from_scratch(aws_stack, later, END + timedelta(hours=1), hours=72)
    assert report["labels"]["label_count"] == 40
    assert report["performance"]["metrics"]["roc_auc"] == pytest.approx(
        sklearn_auc(traffic, hours[30] + hours[70])
    )
    # and a re-run reads no feedback and gives the same report.
    again = run(END + timedelta(hours=1), window_hours=72)
    assert again["reads"]["feedback_gets"] == 0 and again["reads"]["hours_computed"] == 0
    assert_close(comparable(stored_report(aws_stack, again)), comparable(report))


def test_settled_hours_are_not_listed_again_yet_late_writes_and_deletions_reach_the_report(
    aws_stack: AwsStack, champion: VersionRecord, trained: TrainingResult
) -> None:
    # Given a day of traffic written in time, profiled by a run that listed every hour,
    traffic, start, hours = a_day_of_traffic(aws_stack, trained, 11)
    assert run(END)["reads"]["hours_listed"] == 24

    # when the next run comes an hour later, after a new hour of traffic,
    traffic.hour(END)
    second = run(END + timedelta(hours=1))

    # then it lists the two hours that had not settled (an hour settles 2 h 15 min after it began),
    # the new hour, and the hour of the day the run's own hour names (once a day), not the window.
    assert second["reads"]["hours_listed"] == 4
    assert_matches_from_scratch(aws_stack, second, END + timedelta(hours=1))

    # When SQS redelivers a batch of a settled hour long after it ended (the writer marks it late),
    late_hour = start + timedelta(hours=5)
    copy = traffic.hour(late_hour, n=3, objects=1)
    traffic.write([*hours[5][:2], *copy], late_hour, arrived=END + timedelta(hours=1, minutes=30))
    traffic.hour(END + timedelta(hours=1))
    third = run(END + timedelta(hours=2))

    # then the next run lists and profiles that hour again, and counts each prediction once.
    assert third["reads"]["hours_listed"] == 5
    assert third["reads"]["hours_computed"] == 2  # the marked hour, and the hour that just ended
    report = assert_matches_from_scratch(aws_stack, third, END + timedelta(hours=2))
    assert report["prediction_count"] == 60 * 22 + len(copy) + 60 * 2

    # When an object of a settled hour is deleted, the run whose hour of the day is that hour's sees it.
    gone = start + timedelta(hours=8)
    bucket = aws_stack.env[LOG_BUCKET.env_var]
    (key, *_) = list_keys(aws_stack.s3, bucket, prediction_prefix(1, gone))
    aws_stack.s3.delete_object(Bucket=bucket, Key=key)
    later = run(gone + timedelta(days=1))
    assert later["reads"]["hours_computed"] >= 1
    assert_matches_from_scratch(aws_stack, later, gone + timedelta(days=1))


def test_late_labels_read_the_rows_of_the_hours_their_ids_name_and_waiting_ones_none(
    aws_stack: AwsStack, champion: Any, trained: TrainingResult
) -> None:
    # Given a window profiled by a run, ids as the predict function makes them,
    traffic, _, hours = a_day_of_traffic(aws_stack, trained, 21)
    first = run(END)
    assert first["reads"]["hours_rows_read"] == 0

    # when labels arrive for predictions of hours 3 and 17, and for an id of that form whose
    # prediction is not logged yet (served in the hour after the window),
    coming = traffic_record(traffic, END + timedelta(minutes=10))
    traffic.label(hours[3] + hours[17], END + timedelta(minutes=20))
    traffic.truth[coming.prediction_id] = 1
    traffic.label([coming], END + timedelta(minutes=25))
    second = run(END + timedelta(minutes=30))

    # then the run reads the rows of those two hours only, and equals a full read;
    assert second["reads"]["hours_rows_read"] == 2
    report = assert_matches_from_scratch(aws_stack, second, END + timedelta(minutes=30))
    assert report["labels"]["label_count"] == 2 * 60
    assert report["performance"]["metrics"]["roc_auc"] == pytest.approx(
        sklearn_auc(traffic, hours[3] + hours[17])
    )
    # the label still waiting reads no stored hour's rows in the next run,
    idle = run(END + timedelta(minutes=50))
    assert idle["reads"]["hours_rows_read"] == 0 and idle["reads"]["feedback_gets"] == 0
    # and joins its prediction once that is logged and its hour profiled.
    traffic.write([coming], END)
    later = run(END + timedelta(hours=1))
    assert later["reads"]["hours_rows_read"] == 0
    report = assert_matches_from_scratch(aws_stack, later, END + timedelta(hours=1))
    assert report["labels"]["label_count"] == 2 * 60 + 1


def traffic_record(traffic: Traffic, served: datetime, prediction_id: str | None = None) -> PredictionRecord:
    """One more scored prediction, served at `served`, not written yet; its id the predict
    function's (naming `served`'s hour) unless `prediction_id` is given."""
    pid = prediction_id or new_prediction_ids(1, served)[0]
    template = next(iter(traffic.records.values()))
    record = template.model_copy(update={"prediction_id": pid, "request_id": pid, "timestamp": iso(served)})
    traffic.records[pid] = record
    return record


def test_labels_of_client_ids_are_looked_for_in_every_stored_hour(
    aws_stack: AwsStack, champion: Any, trained: TrainingResult
) -> None:
    # Given a window of predictions whose ids clients sent (ids that name no hour), profiled by a run,
    traffic, start, hours = a_day_of_traffic(aws_stack, trained, 22, client_ids=True)
    run(END)

    # when labels arrive for predictions of hours 5 and 20, and for a prediction written late to
    # hour 12 whose id is a UUID's hex (32 hex digits, as the predict function's are long),
    late = traffic_record(traffic, start + timedelta(hours=12, minutes=5), prediction_id=uuid.uuid4().hex)
    traffic.write([late], start + timedelta(hours=12), arrived=END + timedelta(minutes=5))
    traffic.truth[late.prediction_id] = 0
    traffic.label(hours[5] + hours[20] + [late], END + timedelta(minutes=20))
    second = run(END + timedelta(minutes=30))

    # then the run reads the rows of every stored hour once (the hour the late write changed is
    # profiled again from its logs instead, as is the part of the hour the window's start cuts),
    # and finds each labelled prediction where it is.
    assert second["reads"]["hours_rows_read"] == 23 and second["reads"]["hours_computed"] == 2
    report = assert_matches_from_scratch(aws_stack, second, END + timedelta(minutes=30))
    assert report["labels"]["label_count"] == 2 * 60 + 1
    assert report["labels"]["unmatched_feedback"] == 0


@pytest.mark.parametrize(
    "layout", [ROWS_INLINE_FORMAT, RECORDS_INLINE_FORMAT], ids=["rows-inline", "records-inline"]
)
def test_day_roll_ups_of_earlier_layouts_keep_their_labels(
    aws_stack: AwsStack, champion: Any, trained: TrainingResult, layout: int
) -> None:
    # Given a window whose labels a run joined, stored as an earlier layout stored days (each hour's
    # rows inline, its labels as positions into them; or its label records inline),
    traffic, start, hours = a_day_of_traffic(aws_stack, trained, 23)
    traffic.label(hours[2] + hours[8], END - timedelta(minutes=30))
    run(END)
    bucket = aws_stack.env[REPORT_BUCKET.env_var]
    version_days = rollup_key(1, start).rsplit("dt=", 1)[0]
    inlined = "/rows-" if layout == ROWS_INLINE_FORMAT else "/labels-"
    for key in list(list_keys(aws_stack.s3, bucket, version_days)):
        if key.endswith(ROLLUP_NAME):
            aws_stack.s3.put_object(
                Bucket=bucket, Key=key, Body=as_earlier_layout(aws_stack, bucket, key, layout)
            )
    for key in list(list_keys(aws_stack.s3, bucket, version_days)):
        if inlined in key:
            aws_stack.s3.delete_object(Bucket=bucket, Key=key)

    # when labels of hour 15 arrive and the next run reads those days,
    traffic.label(hours[15], END + timedelta(minutes=20))
    later = run(END + timedelta(minutes=30))

    # then the labels joined before are kept, the new ones joined, as a full read gives them,
    report = assert_matches_from_scratch(aws_stack, later, END + timedelta(minutes=30))
    assert report["labels"]["label_count"] == 3 * 60
    assert report["performance"]["metrics"]["roc_auc"] == pytest.approx(
        sklearn_auc(traffic, hours[2] + hours[8] + hours[15])
    )
    # and the day the new labels changed is stored in today's layout, its objects written.
    rewritten = read_json_gz(aws_stack, bucket, rollup_key(1, END))
    assert rewritten["format"] == ROLLUP_FORMAT
    stored = set(list_keys(aws_stack.s3, bucket, version_days))
    for h in rewritten["hours"].values():
        for name in (h["rows"]["name"], h["labels"]["name"]):
            assert rollup_key(1, END, name) in stored


def as_earlier_layout(stack: AwsStack, bucket: str, key: str, layout: int) -> bytes:
    """A day object of today's layout rewritten in an earlier one: its hours' label records inline
    (format 3), and also its rows inline with labels as positions into them (format 2)."""
    body = read_json_gz(stack, bucket, key)
    folder = key.rsplit("/", 1)[0]
    for hour in body["hours"].values():
        hour["labels"] = read_json_gz(stack, bucket, f"{folder}/{hour['labels']['name']}")
        if layout == ROWS_INLINE_FORMAT:
            hour["rows"] = read_json_gz(stack, bucket, f"{folder}/{hour['rows']['name']}")
            hour["labels"] = {c: hour["labels"][c] for c in ("i", "y", "s", "o", "r")}
    body["format"] = layout
    return gzip.compress(json.dumps(body).encode())


def read_json_gz(stack: AwsStack, bucket: str, key: str) -> Any:
    return json.loads(gzip.decompress(stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read()))


@pytest.mark.parametrize("lost", ["rows", "labels"])
def test_an_hour_whose_rows_or_label_records_are_lost_is_profiled_again_with_its_labels(
    aws_stack: AwsStack, champion: Any, trained: TrainingResult, lost: str
) -> None:
    # Given a settled window with labels, and two hours' rows (or label records) objects lost, one
    # deleted, one damaged,
    traffic, start, hours = a_day_of_traffic(aws_stack, trained, 24)
    traffic.label(hours[3][:30] + hours[17][:30], END - timedelta(minutes=30))
    run(END)
    bucket = aws_stack.env[REPORT_BUCKET.env_var]
    objects = {
        k.rsplit(f"/{lost}-", 1)[1][:2]: k
        for k in list_keys(aws_stack.s3, bucket, rollup_key(1, start).rsplit("dt=", 1)[0])
        if f"/{lost}-" in k
    }
    aws_stack.s3.delete_object(Bucket=bucket, Key=objects[f"{start + timedelta(hours=3):%H}"])
    aws_stack.s3.put_object(Bucket=bucket, Key=objects[f"{start + timedelta(hours=17):%H}"], Body=b"x")

    # when the other labels of those two hours arrive,
    traffic.label(hours[3][30:] + hours[17][30:], END + timedelta(minutes=10))
    later = run(END + timedelta(minutes=30))

    # then both hours are profiled again from their logs (the settled one listed again), the labels
    # they held follow their predictions (read again from the feedback when their records are lost),
    # the new ones join them, and the report equals a full read.
    assert later["reads"]["hours_computed"] == 2 + 1  # and the part of the hour the window's start cuts
    report = assert_matches_from_scratch(aws_stack, later, END + timedelta(minutes=30))
    assert report["labels"]["label_count"] == 2 * 60
    assert report["performance"]["metrics"]["roc_auc"] == pytest.approx(
        sklearn_auc(traffic, hours[3] + hours[17])
    )


def test_with_two_versions_serving_a_label_reads_the_hour_its_id_names_in_each(
    aws_stack: AwsStack, champion: Any, trained: TrainingResult, churn_data: Any
) -> None:
    # Given two versions serving side by side every hour of a window, profiled by a run,
    register_and_promote(aws_stack, trained, churn_data, reason="second version")
    traffic = Traffic(aws_stack, trained, seed=25)
    start = END - timedelta(hours=24)
    ours = {v: [traffic.hour(start + timedelta(hours=h), n=30, version=v) for h in range(24)] for v in (1, 2)}
    first = run(END)
    assert sorted(v["version"] for v in first["versions"]) == [1, 2]

    # when labels arrive for version 2's predictions of hours 3 and 17,
    traffic.label(ours[2][3] + ours[2][17], END + timedelta(minutes=20))
    second = run(END + timedelta(minutes=30))

    # then each version reads the rows of those two hours only (version 1's hold none of them),
    assert second["reads"]["hours_rows_read"] == 2 * 2
    by_version = {v["version"]: v for v in second["versions"]}
    assert by_version[2]["label_count"] == 60 and by_version[1]["label_count"] == 0
