"""A regression model's report pages in a real browser (headless Chromium): every run's page and the
history page draw their charts with no console error and no label over another or cut off, and
they say what a reader of a pricing model needs (errors hour by hour, residuals, the alarm line).

Set MLOPS_SCREENSHOTS=<dir> to keep full-page screenshots of the pages checked here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlops.cloud.logstore import (
    FeedbackRecord,
    RegressionPredictionRecord,
    feedback_key,
    prediction_key,
    write_feedback,
    write_predictions,
)
from mlops.cloud.storage import iso, list_keys
from mlops.datagen.pricing import TARGET, generate_prices
from mlops.model.spec import load_spec
from mlops.model.training import TrainingResult, feature_frame, frame_rows, train_model
from mlops.monitoring.run import run_monitor
from mlops.shared.resources import LOG_BUCKET, REPORT_BUCKET

from tests.browser import Browser
from tests.conftest import AwsStack
from tests.e2e.test_report_pages import assert_clean, screenshot_path
from tests.report_story import START, moto_stack, promote_at, settings
from tests.unit.test_regression_spec import PRICING_SPEC

pytestmark = pytest.mark.slow
# Day by day: stable and labelled, a new price rule (labelled), larger packages (no labels yet).
DAYS: tuple[tuple[dict[str, float], bool], ...] = (
    ({}, True),
    ({"concept_shift": 1.0}, True),
    ({"covariate_shift": 2.5}, False),
)


def log_day(
    stack: AwsStack, result: TrainingResult, day: int, drift: dict[str, float], labelled: bool
) -> None:
    """960 priced quotes over one day, each hour's true prices sent two hours later when `labelled`."""
    data = generate_prices(960, seed=300 + day, **drift)
    features = feature_frame(data, result.spec)
    predicted = result.pipeline.predict(features)
    rows = frame_rows(features)
    truth = data[TARGET].to_numpy(dtype=float)
    bucket = stack.env[LOG_BUCKET.env_var]
    for hour in range(24):
        ts = START + timedelta(days=day, hours=hour)
        idx = range(hour * 40, hour * 40 + 40)
        ids = [f"d{day}-{i}" for i in idx]
        records = [
            RegressionPredictionRecord(
                prediction_id=pid,
                request_id=f"r{pid}",
                timestamp=iso(ts + timedelta(seconds=i % 40)),
                model_name="pricing",
                model_version=1,
                features=rows[i],
                value=float(predicted[i]),
            )
            for pid, i in zip(ids, idx, strict=True)
        ]
        write_predictions(stack.s3, bucket, prediction_key(1, ts, ids), records)
        if labelled:
            seen = ts + timedelta(hours=2)
            feedback = [
                FeedbackRecord(
                    prediction_id=pid,
                    label=float(truth[i]),
                    source="explicit",
                    observed_at=iso(seen),
                    received_at=iso(seen),
                )
                for pid, i in zip(ids, idx, strict=True)
            ]
            write_feedback(stack.s3, bucket, feedback_key(seen, ids), feedback)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
    """Three daily monitor runs of a pricing champion, the report bucket copied locally key by key."""
    spec = load_spec(PRICING_SPEC)
    data = generate_prices(3000, seed=2)
    result = train_model(data, spec)
    out = tmp_path_factory.mktemp("regression-reports")
    summaries = []
    with moto_stack() as stack:
        promote_at(START - timedelta(days=1), stack, result, data, "first champion")
        monitor_settings = settings(stack).model_copy(update={"model_name": "pricing"})
        for day, (drift, labelled) in enumerate(DAYS):
            log_day(stack, result, day, drift, labelled)
            end = START + timedelta(days=day + 1)
            run = run_monitor(
                stack.s3,
                stack.cloudwatch,
                stack.dynamodb,
                monitor_settings,
                window_end=end,
                window=timedelta(days=1),
                now=end + timedelta(hours=3),
                run_id=f"day{day}",
            )
            summaries.append(run.summary())
        bucket = stack.env[REPORT_BUCKET.env_var]
        for key in list_keys(stack.s3, bucket, "reports/"):
            if key.endswith(".html"):
                path = out / key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    yield out, summaries


def test_every_regression_run_report_renders_cleanly(
    browser: Browser, pages: tuple[Path, list[dict[str, Any]]]
) -> None:
    out, summaries = pages
    reports = sorted(out.glob("reports/model_version=*/dt=*/run=*/report.html"))
    assert [re.search(r"run=(day\d)", str(r)).group(1) for r in reports] == ["day0", "day1", "day2"]  # type: ignore[union-attr]
    for report, summary in zip(reports, summaries, strict=True):
        check = browser.check(report.as_uri(), screenshot_path(f"regression-{report.parent.name}.png"))
        text = report.read_text()
        (version,) = summary["versions"]
        if version["label_count"]:
            # Labelled days: the hourly error and bias charts, the residual plot, predicted and true values,
            # and one distribution per tested feature
            assert_clean(check, min_charts=5)
            assert "rmse hour by hour" in text and "residual (true − predicted)" in text
        else:
            # No labels yet: no error to draw, but the drift of predictions and inputs is there
            assert_clean(check, min_charts=2)
            assert "no labels yet" in text and "Too few labelled predictions" in text
    day1 = reports[1].read_text()
    # The new price rule breached MetricGap, and the page says so with the alarm line above the test set
    assert "Alarm conditions met this run" in day1 and "MetricGap" in day1
    assert re.search(r"alarm above [\d.]+", day1)


def test_the_regression_history_page_renders_cleanly_with_an_alarm_line_above_the_test_error(
    browser: Browser, pages: tuple[Path, list[dict[str, Any]]]
) -> None:
    out, summaries = pages
    (page,) = (out / "reports" / "history").glob("*.html")
    check = browser.check(page.as_uri(), screenshot_path("regression-history.png"))
    assert_clean(check, min_charts=3)
    text = page.read_text()
    assert "alarm above (test-set error plus the allowed increase)" in text
    assert "PSI of the predicted values" in text and "bootstrap" not in text
    assert text.count("<tr>") == 1 + len(summaries)  # the header and one row a run
    # The day with the new price rule shows its production RMSE in the run table
    day1 = summaries[1]["versions"][0]
    assert f"{day1['production_metric']:.3f}" in text
    assert np.isfinite(day1["production_metric"])
