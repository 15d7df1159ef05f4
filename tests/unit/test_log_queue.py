"""The log queue's message formats (predictions, feedback): size limits, batching, retries, reading back."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ReadTimeoutError
from mlops.cloud.logstore import FeedbackRecord
from mlops.serving.log_queue import (
    FALLBACK_PIECE_BYTES,
    MAX_BATCH_ENTRIES,
    SEND_CALL_SECONDS,
    MalformedMessage,
    PredictionBatch,
    decode_message,
    fallback_pieces,
    feedback_bodies,
    is_feedback,
    message_bodies,
    parse_feedback,
    parse_message,
    send_batches,
    send_bodies,
    send_predictions,
)


def batch_of(n: int, pad: int = 0, event_times: list[str] | None = None) -> PredictionBatch:
    return PredictionBatch(
        request_id="req",
        timestamp="2025-11-27T10:15:30.000000Z",
        model_name="churn",
        model_version=3,
        prediction_ids=[f"id-{i}" for i in range(n)],
        probabilities=[i / max(n, 1) for i in range(n)],
        labels=[int(i / max(n, 1) >= 0.5) for i in range(n)],
        unseen_categories=[["device"] if i % 7 == 0 else [] for i in range(n)],
        features=[{"x": float(i), "note": "n" * pad, "device": None} for i in range(n)],
        event_times=event_times,
    )


@pytest.mark.parametrize(
    ("rows", "pad", "limit"), [(1, 0, 10_000), (50, 200, 2_000), (700, 30, 20_000), (300, 0, 500)]
)
def test_bodies_stay_under_the_limit_and_carry_every_row_once_in_order(rows, pad, limit):
    batch = batch_of(rows, pad)
    bodies = message_bodies(batch, max_bytes=limit)
    assert all(len(b.encode()) <= limit for b in bodies)
    records = [r for b in bodies for r in parse_message(b)]
    assert [r.model_dump(mode="json") for r in records] == batch.records()


def test_a_message_carries_the_features_as_one_list_per_feature():
    # Given three predictions
    batch = batch_of(3, pad=2)
    # When they are packed into a message
    (body,) = message_bodies(batch)
    # Then each feature's name is written once, with its values in row order
    message = json.loads(body)
    assert message["v"] == 2
    assert message["features"] == {"x": [0.0, 1.0, 2.0], "note": ["nn"] * 3, "device": [None] * 3}


def test_a_row_wise_message_of_format_1_still_reads_as_its_records():
    # Given a message as earlier releases queued it: the features as one object per row
    batch = batch_of(9, pad=3, event_times=[f"2025-11-26T10:0{i}:00.000000Z" for i in range(9)])
    message = json.loads(message_bodies(batch)[0])
    message.update(v=1, features=[dict(row) for row in batch.features])
    # When the log writer reads it
    records = parse_message(json.dumps(message))
    # Then it holds the same records as the column-wise message of today
    assert [r.model_dump(mode="json") for r in records] == batch.records()


def test_rows_of_one_request_with_different_features_are_refused():
    batch = batch_of(2)
    rows = [{"x": 1.0}, {"y": 2.0}]
    with pytest.raises(ValueError, match="same features"):
        message_bodies(PredictionBatch(**{**batch.__dict__, "features": rows}))


def _stdlib_body(body: str) -> str:
    """What the standard library writes for the same message: the reference encoding."""
    return json.dumps(json.loads(body), separators=(",", ":"), allow_nan=False)


def test_a_message_reads_back_as_the_standard_library_would_have_written_it():
    # Given predictions whose floats have spellings of their own (tiny, huge, many digits)
    batch = batch_of(6)
    tiny = [5.7248975435908456e-05, 1e-300, 0.1 + 0.2, 1 / 3, 0.0, 1.0]
    batch = PredictionBatch(**{**batch.__dict__, "probabilities": tiny})
    batch.features[0]["x"] = 1.7976931348623157e308
    # When it is packed
    (body,) = message_bodies(batch)
    # Then it is ASCII and holds exactly the values the standard library's text holds
    assert body.isascii()
    assert json.loads(body) == json.loads(_stdlib_body(body))
    assert [r.model_dump(mode="json") for r in parse_message(body)] == batch.records()


@pytest.mark.parametrize(
    ("feature", "value"),
    [("note", "caf\u00e9 \u2603 \U0001f600"), ("x", 2**70), ("x", -(2**64))],
)
def test_text_beyond_ascii_and_integers_beyond_64_bits_are_written_by_the_standard_library(feature, value):
    # Given a row with a category beyond ASCII or an integer too large for a 64-bit encoder
    batch = batch_of(3)
    batch.features[1][feature] = value
    # When it is packed
    (body,) = message_bodies(batch)
    # Then the text is the standard library's, every character escaped to ASCII, and reads back whole
    assert body == json.dumps(json.loads(body), separators=(",", ":"))
    assert body.isascii()
    assert [r.model_dump(mode="json") for r in parse_message(body)] == batch.records()


def test_a_non_finite_model_output_is_refused_not_written_as_null():
    batch = batch_of(2)
    broken = PredictionBatch(**{**batch.__dict__, "probabilities": [float("nan"), 0.5]})
    with pytest.raises(ValueError):
        message_bodies(broken)


def test_a_row_that_cannot_fit_is_refused():
    with pytest.raises(ValueError, match="over the"):
        message_bodies(batch_of(1, pad=5000), max_bytes=1000)


def test_send_batches_respect_entry_count_and_total_size():
    bodies = ["x" * 100_000] * 5 + ["y" * 10] * 25
    groups = send_batches(bodies)
    assert [b for g in groups for b in g] == bodies
    assert all(len(g) <= MAX_BATCH_ENTRIES for g in groups)
    assert all(sum(len(b) for b in g) <= 256 * 1024 for g in groups)


BODIES = message_bodies(batch_of(40), max_bytes=1_000)


class FlakySQS:
    """Fails the given entry ids on the first call(s), then accepts them."""

    def __init__(self, fail_times: int, sender_fault: bool = False) -> None:
        self.fail_times = fail_times
        self.sender_fault = sender_fault
        self.calls: list[list[dict]] = []

    def send_message_batch(self, QueueUrl, Entries):
        self.calls.append(Entries)
        if len(self.calls) <= self.fail_times:
            failed = [{"Id": Entries[0]["Id"], "SenderFault": self.sender_fault, "Code": "x"}]
            return {"Successful": [{"Id": e["Id"]} for e in Entries[1:]], "Failed": failed}
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def test_predictions_are_sent_as_message_bodies():
    sqs = FlakySQS(fail_times=0)
    send_predictions(sqs, "url", batch_of(3))
    assert [e["MessageBody"] for call in sqs.calls for e in call] == message_bodies(batch_of(3))


def test_failed_entries_are_sent_again_and_only_they():
    sqs = FlakySQS(fail_times=1)
    send_bodies(sqs, "url", BODIES, sleep=lambda s: None)
    first, second = sqs.calls[0], sqs.calls[1]
    assert len(first) > 1
    assert second == [first[0]]


def test_entries_still_failing_after_every_attempt_are_returned_unsent():
    sqs = FlakySQS(fail_times=10)
    unsent = send_bodies(sqs, "url", BODIES, attempts=3, sleep=lambda s: None)
    assert len(sqs.calls) == 3
    assert unsent == [sqs.calls[0][0]["MessageBody"]]


def test_sender_faults_are_not_retried():
    sqs = FlakySQS(fail_times=1, sender_fault=True)
    unsent = send_bodies(sqs, "url", BODIES, sleep=lambda s: None)
    assert len(sqs.calls) == 1
    assert unsent == [sqs.calls[0][0]["MessageBody"]]


class HangingSQS:
    """Every call takes the whole client timeout on a clock the test owns, then times out."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def send_message_batch(self, QueueUrl, Entries):
        self.calls += 1
        self.now += SEND_CALL_SECONDS
        raise ReadTimeoutError(endpoint_url=QueueUrl)


@pytest.mark.parametrize("budget", [SEND_CALL_SECONDS, 3.0, 5.9])
def test_a_hanging_queue_costs_at_most_the_budget_and_nothing_is_lost(budget):
    # Given a request cut into several SendMessageBatch calls, and a queue that never answers
    bodies = message_bodies(batch_of(600, pad=40), max_bytes=1_000)
    assert len(send_batches(bodies)) > 3
    sqs = HangingSQS()
    # When it is sent with a deadline
    unsent = send_bodies(sqs, "url", bodies, deadline=budget, clock=sqs.clock, sleep=sqs.sleep)
    # Then no call ran past the deadline, at least one was tried, and every body is returned unsent
    assert sqs.now <= budget and sqs.calls >= 1
    assert unsent == bodies


@pytest.mark.parametrize("client_times", [False, True])
def test_fallback_pieces_fit_a_log_event_and_read_back_as_every_record_once(client_times):
    # Given bodies as big as SQS takes (with the client's event times, or the time of serving)
    times = [f"2025-11-26T{i // 100 % 24:02d}:{i % 60:02d}:00.000000Z" for i in range(2_000)]
    batch = batch_of(2_000, pad=300, event_times=times if client_times else None)
    bodies = message_bodies(batch)
    assert max(len(b) for b in bodies) > FALLBACK_PIECE_BYTES
    # When they are cut into pieces for the log
    pieces = fallback_pieces(bodies)
    # Then each piece is a message under the piece size, and together they hold each record once
    encoded = [json.dumps(p, separators=(",", ":")) for p in pieces]
    assert max(len(e.encode()) for e in encoded) <= FALLBACK_PIECE_BYTES
    records = [r.model_dump(mode="json") for e in encoded for r in parse_message(e)]
    assert records == batch.records()


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"v": 2}),
        json.dumps({"v": 1, "prediction_id": ["a"]}),
        json.dumps({**json.loads(message_bodies(batch_of(2))[0]), "label": [1]}),
        json.dumps({**json.loads(message_bodies(batch_of(2))[0]), "probability": ["high", 0.2]}),
        json.dumps({**json.loads(message_bodies(batch_of(2))[0]), "timestamp": None}),
        json.dumps({**json.loads(message_bodies(batch_of(2))[0]), "timestamp": "yesterday"}),
        json.dumps({**json.loads(message_bodies(batch_of(2))[0]), "timestamp": "9999-12-31T23:59:59-01:00"}),
        json.dumps({**json.loads(message_bodies(batch_of(2))[0]), "timestamp": "0001-01-01T00:00:00+01:00"}),
        json.dumps({**json.loads(message_bodies(batch_of(2))[0]), "model_version": 0}),
        json.dumps({**json.loads(message_bodies(batch_of(2))[0]), "label": [1, 2]}),
        json.dumps({**json.loads(message_bodies(batch_of(2))[0]), "prediction_id": ["a", ""]}),
        json.dumps({**json.loads(message_bodies(batch_of(2))[0]), "probability": [0.5, 1.5]}),
        message_bodies(batch_of(2))[0].replace('"probability":[0.0,', '"probability":[NaN,'),
        json.dumps({**json.loads(message_bodies(batch_of(2))[0]), "features": [{"x": 1.0}, {"x": 2.0}]}),
        json.dumps({**json.loads(message_bodies(batch_of(2))[0]), "features": {"x": [1.0]}}),
        json.dumps({**json.loads(message_bodies(batch_of(2))[0]), "features": {"x": 1.0}}),
        json.dumps({**json.loads(message_bodies(batch_of(2))[0]), "v": 1}),
    ],
)
def test_malformed_messages_are_refused(body):
    with pytest.raises(MalformedMessage):
        parse_message(body)


def feedback_of(n: int) -> list[FeedbackRecord]:
    return [
        FeedbackRecord(
            prediction_id=f"prediction-{i:06d}",
            label=i % 2,
            source="explicit" if i % 3 else "implicit",
            observed_at="2025-11-27T10:15:30.000000Z",
            received_at="2025-11-27T11:00:00.000000Z",
        )
        for i in range(n)
    ]


def test_feedback_is_cut_into_messages_under_the_limit_and_read_back_in_order():
    records = feedback_of(3000)

    bodies = feedback_bodies(records, max_bytes=20_000)

    assert len(bodies) > 10
    assert all(len(body) <= 20_000 and body.isascii() for body, _ in bodies)
    assert [r for _, held in bodies for r in held] == records
    decoded = [decode_message(body) for body, _ in bodies]
    assert all(is_feedback(d) for d in decoded)
    assert [r for d in decoded for r in parse_feedback(d)] == records
    # A prediction message is not taken for feedback.
    assert not is_feedback(decode_message(message_bodies(batch_of(2))[0]))


def test_one_feedback_record_over_the_limit_is_refused():
    with pytest.raises(ValueError, match="over the 100 limit"):
        feedback_bodies(feedback_of(1), max_bytes=100)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"feedback": 2, "records": []}, "format 1"),
        ({"feedback": 1}, "non-empty list"),
        ({"feedback": 1, "records": []}, "non-empty list"),
        ({"feedback": 1, "records": [{"prediction_id": "a"}]}, "invalid feedback record"),
        ({"feedback": 1, "records": [{**feedback_of(1)[0].model_dump(), "prediction_id": ""}]}, "empty"),
        ({"feedback": 1, "records": [{**feedback_of(1)[0].model_dump(), "received_at": "soon"}]}, "ISO 8601"),
    ],
)
def test_malformed_feedback_messages_are_refused_naming_the_problem(data, problem):
    with pytest.raises(MalformedMessage, match=problem):
        parse_feedback(data)
