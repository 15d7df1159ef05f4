"""One monitor run at a time: a run that starts while another holds the lease is skipped, and says why.

Two runs at once would each rewrite the day roll-ups from what they read and the later write would
drop the labels the earlier one joined. moto never runs two invocations at once, so the overlap is
made explicit: the second run starts from inside the first. The lease's conditional writes are
checked against moto's S3, which refuses If-None-Match and If-Match writes as S3 does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mlops.cloud.registry import VersionRecord
from mlops.cloud.storage import get_bytes, iso, list_keys, put_bytes
from mlops.handlers import monitor
from mlops.model.training import TrainingResult
from mlops.monitoring import lease
from mlops.monitoring import run as monitor_run
from mlops.monitoring.lease import LEASE_KEY, Lease, release_lease, take_lease
from mlops.shared.resources import REPORT_BUCKET

from tests.conftest import AwsStack
from tests.integration.serving_helpers import CONTEXT, load_event
from tests.integration.test_incremental_monitor import END, Traffic, run, sklearn_auc, stored_report


def request(at: datetime) -> dict[str, Any]:
    event = load_event("monitor_request.json")
    event["time"] = iso(at)
    return event


def report_keys(stack: AwsStack) -> list[str]:
    keys = list_keys(stack.s3, stack.env[REPORT_BUCKET.env_var], "reports/")
    return sorted(k for k in keys if k != LEASE_KEY)


def test_a_run_that_starts_while_another_runs_is_skipped_and_the_first_keeps_every_label(
    aws_stack: AwsStack, champion: VersionRecord, trained: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a day of traffic with a third of it labelled,
    traffic = Traffic(aws_stack, trained)
    start = END - timedelta(hours=24)
    hours = [traffic.hour(start + timedelta(hours=h)) for h in range(24)]
    labelled = [r for h in hours for r in h[::3]]
    traffic.label(labelled, END - timedelta(minutes=5))

    # when a monitor request arrives while the scheduled run is assembling its window,
    overlapping: list[dict[str, Any]] = []
    assemble = monitor_run.window_from_rollups

    def assemble_while_a_request_arrives(*args: Any, **kwargs: Any) -> Any:
        if not overlapping:
            monitor.settings.cache_clear()
            overlapping.append(monitor.handler(request(END), CONTEXT))
        return assemble(*args, **kwargs)

    monkeypatch.setattr(monitor_run, "window_from_rollups", assemble_while_a_request_arrives)
    first = run(END)
    monkeypatch.setattr(monitor_run, "window_from_rollups", assemble)

    # then the request is skipped, naming the run that holds the lease, and wrote nothing,
    (skipped,) = overlapping
    assert skipped["outcome"] == "skipped" and first["run_id"] in skipped["skipped"]
    assert skipped["versions"] == [] and skipped["metrics_published"] == 0
    assert first["outcome"] == "ran"
    # the scheduled run joined every label,
    report = stored_report(aws_stack, first)
    assert report["performance"]["metrics"]["roc_auc"] == pytest.approx(sklearn_auc(traffic, labelled))

    # and once it ended the next run runs, reusing every stored hour with the same labels.
    again = run(END)
    assert again["outcome"] == "ran" and again["reads"]["hours_reused"] == 24
    again_labels = stored_report(aws_stack, again)["labels"]["label_count"]
    assert again_labels == report["labels"]["label_count"] == len(labelled)


def test_of_two_runs_that_both_saw_the_lease_free_only_one_takes_it(aws_stack: AwsStack) -> None:
    bucket = aws_stack.env[REPORT_BUCKET.env_var]
    # Given no lease, and a second run that read the same empty state before the first wrote,
    stale = lease._held(aws_stack.s3, bucket)
    assert stale == (None, None)
    assert take_lease(aws_stack.s3, bucket, "run-a") is None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lease, "_held", lambda s3, b: stale)
        # when the second writes its lease, then S3 refuses it (If-None-Match: *),
        assert (
            take_lease(aws_stack.s3, bucket, "run-b")
            == "another monitor run took the lease at the same moment"
        )
    assert Lease.model_validate_json(get_bytes(aws_stack.s3, bucket, LEASE_KEY)).owner == "run-a"

    # and of two runs taking over the same expired lease (If-Match on its ETag), only one does.
    expired = Lease(owner="died", expires_at=iso(datetime.now(UTC) - timedelta(minutes=1)))
    put_bytes(aws_stack.s3, bucket, LEASE_KEY, expired.model_dump_json().encode())
    seen = lease._held(aws_stack.s3, bucket)
    assert take_lease(aws_stack.s3, bucket, "run-c") is None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lease, "_held", lambda s3, b: seen)
        assert take_lease(aws_stack.s3, bucket, "run-d") is not None
    assert Lease.model_validate_json(get_bytes(aws_stack.s3, bucket, LEASE_KEY)).owner == "run-c"


def test_a_lease_left_by_a_run_that_died_blocks_until_it_expires(
    aws_stack: AwsStack, champion: VersionRecord, trained: TrainingResult
) -> None:
    bucket = aws_stack.env[REPORT_BUCKET.env_var]
    Traffic(aws_stack, trained).hour(END - timedelta(hours=1))
    # Given a lease a run took and never released (its function timed out),
    held = Lease(owner="timed-out", expires_at=iso(datetime.now(UTC) + timedelta(minutes=5)))
    put_bytes(aws_stack.s3, bucket, LEASE_KEY, held.model_dump_json().encode())
    # when the schedule fires, then the run is skipped and writes no report,
    blocked = run(END)
    assert blocked["outcome"] == "skipped" and "timed-out" in blocked["skipped"]
    assert report_keys(aws_stack) == []
    # and once the lease has expired the next run runs and ends its own lease.
    gone = held.model_copy(update={"expires_at": iso(datetime.now(UTC) - timedelta(seconds=1))})
    put_bytes(aws_stack.s3, bucket, LEASE_KEY, gone.model_dump_json().encode())
    ran = run(END)
    assert ran["outcome"] == "ran" and report_keys(aws_stack)
    after = Lease.model_validate_json(get_bytes(aws_stack.s3, bucket, LEASE_KEY))
    assert after.owner == ran["run_id"] and after.expires_at <= iso(datetime.now(UTC))


def test_a_run_that_fails_still_ends_its_lease(
    aws_stack: AwsStack, champion: VersionRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = aws_stack.env[REPORT_BUCKET.env_var]

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the run broke half way")

    # Given a run that raises after taking the lease,
    monkeypatch.setattr(monitor_run, "_run_monitor", fail)
    with pytest.raises(RuntimeError):
        run(END)
    # then the lease is free for the next run at once,
    assert take_lease(aws_stack.s3, bucket, "next") is None
    # and a holder's release never ends a lease another run holds.
    release_lease(aws_stack.s3, bucket, "someone-else")
    assert Lease.model_validate_json(get_bytes(aws_stack.s3, bucket, LEASE_KEY)).owner == "next"
    assert take_lease(aws_stack.s3, bucket, "third") is not None
