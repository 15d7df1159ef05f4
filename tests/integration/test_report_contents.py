"""What a monitor run reports, on moto: no statistic of an empty window, no report of a retired
version without traffic, unmatched feedback of the window only, history rows kept under concurrent
runs, and `mlops reports` before any run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from mlops.cloud.logstore import FeedbackRecord, feedback_key, history_keys, write_feedback
from mlops.cloud.storage import iso
from mlops.model.training import TrainingResult
from mlops.monitoring.history import read_history
from mlops.monitoring.run import MonitorResult, run_monitor
from mlops.monitoring.run import _run_monitor as run_monitor_unleased
from mlops.shared.resources import LOG_BUCKET, REPORT_BUCKET

from tests.conftest import AwsStack, register_and_promote
from tests.integration.test_reports import cli
from tests.report_story import START, log_day, read_text, settings


def monitor(stack: AwsStack, **when: Any) -> MonitorResult:
    """One monitor run over the stack's own clients and settings."""
    return run_monitor(stack.s3, stack.cloudwatch, stack.dynamodb, settings(stack), **when)


def test_reports_before_the_first_monitor_run_say_so(
    aws_stack: AwsStack, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "reports", "list")
    assert code != 0 and out == ""
    assert "has not run" in err


def test_empty_window_reports_no_data_instead_of_drift_statistics(aws_stack: AwsStack, champion: Any) -> None:
    # Given a champion with no traffic yet
    result = monitor(aws_stack, now=START, window_end=START)
    (report,) = result.reports
    # Then no drift statistic is reported, and the page says there is no data
    assert (
        report.drift is None and report.prediction_drift is not None and report.prediction_drift.psi is None
    )
    page = read_text(aws_stack, result.report_keys[1] + "report.html")
    assert "No data: no prediction in this window" in page
    assert "<th>PSI</th>" not in page


def test_retired_version_without_traffic_in_the_window_gets_no_report(
    aws_stack: AwsStack, trained: TrainingResult, churn_data: Any
) -> None:
    # Given v1 served until 10:10, then v2; a window that starts at 10:30 (in v1's last log hour)
    register_and_promote(aws_stack, trained, churn_data)
    day = datetime(2026, 11, 10, tzinfo=UTC)
    log_day(aws_stack, trained, 1, day - timedelta(hours=13) + timedelta(minutes=10), 24, seed=5)
    register_and_promote(aws_stack, trained, churn_data, reason="v2")
    log_day(aws_stack, trained, 2, day + timedelta(hours=11), 480, seed=6)
    end = day + timedelta(days=1, hours=10, minutes=30)
    # When the monitor runs
    result = monitor(aws_stack, window_end=end, window=timedelta(hours=24), now=end)
    # Then only the serving version has a report; asked for explicitly, v1 still gets one
    assert [r.version for r in result.reports] == [2]
    again = monitor(aws_stack, window_end=end, window=timedelta(hours=24), now=end, versions=[1])
    assert [(r.version, r.prediction_count) for r in again.reports] == [(1, 0)]


def test_unmatched_feedback_counts_only_feedback_received_in_the_window(
    aws_stack: AwsStack, trained: TrainingResult, churn_data: Any
) -> None:
    register_and_promote(aws_stack, trained, churn_data)
    bucket = aws_stack.env[LOG_BUCKET.env_var]
    day = datetime(2026, 11, 12, tzinfo=UTC)

    def feedback(ids: list[str], at: datetime) -> None:
        records = [
            FeedbackRecord(
                prediction_id=i, label=1, source="explicit", observed_at=iso(at), received_at=iso(at)
            )
            for i in ids
        ]
        write_feedback(aws_stack.s3, bucket, feedback_key(at, ids), records)

    # Given the previous day's predictions, all labelled (most of the labels arrive in this window)
    log_day(aws_stack, trained, 1, day - timedelta(days=1), 240, seed=7)
    # And this day's predictions, labelled two hours after each
    log_day(aws_stack, trained, 1, day, 240, seed=8)
    # And three ids never logged, received in the window, and two received after it ended
    feedback(["ghost-1", "ghost-2", "ghost-3"], day + timedelta(hours=5))
    feedback(["late-ghost-1", "late-ghost-2"], day + timedelta(days=1, hours=1))
    end = day + timedelta(days=1)
    # When the day is monitored the morning after
    result = monitor(aws_stack, window_end=end, window=timedelta(days=1), now=end + timedelta(hours=3))
    (report,) = result.reports
    # Then every prediction of the day is labelled (late labels count) ...
    assert report.labels.label_count == 240
    # ... and only feedback received during the day is counted: this day's labels received by
    # midnight, the previous day's labels that arrived after midnight, and the three unknown ids
    received = 230 + 20 + 3
    assert report.labels.feedback_received == received
    assert report.labels.unmatched_feedback == 20 + 3
    html = read_text(aws_stack, result.report_keys[1] + "report.html")
    assert f"{received} record(s), 23 of them for none of this window's predictions" in html


def test_concurrent_monitor_runs_keep_each_others_history_rows(aws_stack: AwsStack, champion: Any) -> None:
    class Interleaved:
        """The real client, but another monitor run commits its history just before our first write of it."""

        def __init__(self, s3: Any) -> None:
            self.s3, self.interleaved = s3, False

        def __getattr__(self, name: str) -> Any:
            return getattr(self.s3, name)

        def put_object(self, **kwargs: Any) -> Any:
            if not self.interleaved and kwargs["Key"] == history_keys("churn")[0]:
                self.interleaved = True
                # The lease keeps a second run out; this one ran past it (the history's own
                # conditional write is the second line of defence), so it starts behind the lease.
                run_monitor_unleased(
                    self.s3,
                    aws_stack.cloudwatch,
                    aws_stack.dynamodb,
                    settings(aws_stack),
                    START,
                    None,
                    None,
                    START,
                    "other",
                    None,
                )
            return self.s3.put_object(**kwargs)

    # Given a second run that writes the history between this run's read and its write
    s3 = Interleaved(aws_stack.s3)
    # When this run records its row
    run_monitor(s3, aws_stack.cloudwatch, aws_stack.dynamodb, settings(aws_stack), now=START, run_id="mine")
    # Then both rows are kept, and the page shows both
    assert s3.interleaved
    history = read_history(aws_stack.s3, aws_stack.env[REPORT_BUCKET.env_var], "churn")
    assert history is not None and sorted(r.run_id for r in history.runs) == ["mine", "other"]
    assert read_text(aws_stack, history_keys("churn")[1]).count(">open</a>") == 2
