"""Reports over time on moto: the history monitor runs keep, and `mlops reports list|open` over it.

One monitored life (tests.report_story) serves the whole module."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlops.cli import main
from mlops.cloud.logstore import history_keys
from mlops.cloud.storage import parse_time
from mlops.datagen.churn import generate_churn
from mlops.model.training import TrainingResult, feature_frame
from mlops.monitoring.history import ModelHistory, shift_onsets
from sklearn.metrics import roc_auc_score

from tests.conftest import AwsStack
from tests.report_story import (
    PROMOTION_DAY,
    SHIFT_DAY,
    Story,
    monitored_life,
    moto_stack,
    read_text,
)


@pytest.fixture(scope="module")
def story_stack(trained: TrainingResult, churn_data: Any) -> Iterator[tuple[AwsStack, Story]]:
    with moto_stack() as stack:
        yield stack, monitored_life(stack, trained, churn_data)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stored_history(stack: AwsStack) -> ModelHistory:
    return ModelHistory.model_validate_json(read_text(stack, history_keys("churn")[0]))


def test_history_keeps_every_run_with_the_shift_alarms_and_promotion(
    story_stack: tuple[AwsStack, Story], trained: TrainingResult
) -> None:
    stack, story = story_stack
    # Given six daily runs with a shift from SHIFT_DAY and v2 promoted on PROMOTION_DAY
    history = stored_history(stack)
    # Then every run is a row, the champion is v1 then v2, and the promotion is recorded
    assert [r.run_id for r in history.runs] == [f"day{d}" for d in range(6)]
    assert [r.version for r in history.runs] == [1] * PROMOTION_DAY + [2] * (6 - PROMOTION_DAY)
    assert all(r.champion for r in history.runs)
    assert [(p.from_version, p.to_version, parse_time(p.at)) for p in history.promotions][-1] == (
        1,
        2,
        story.promoted_at,
    )
    # And the shift is found where it began, with the MetricGap condition from then on
    ((onset, why),) = shift_onsets(history.runs)
    assert onset.run_id == f"day{SHIFT_DAY}" and why == "drift flagged"
    assert ["MetricGap" in r.alarms_met for r in history.runs] == [d >= SHIFT_DAY for d in range(6)]
    # And each production value is the window's ROC AUC by sklearn, inside its interval
    for day, run in enumerate(history.runs):
        drift = {"covariate_shift": 1.5, "concept_shift": 0.6} if day >= SHIFT_DAY else {}
        data = generate_churn(960, seed=100 + day, **drift)
        proba = trained.pipeline.predict_proba(feature_frame(data, trained.spec))[:, 1]
        assert run.label_count == 960
        assert run.production_value == pytest.approx(roc_auc_score(data["churned"], proba), abs=1e-9)
        assert run.production_interval is not None
        assert run.production_interval[0] <= run.production_value <= run.production_interval[1]


def test_history_page_links_every_run_report_relative_to_itself(story_stack: tuple[AwsStack, Story]) -> None:
    stack, story = story_stack
    page_key = story.history_key
    page = read_text(stack, page_key)
    links = re.findall(r'href="([^"]+)"', page)
    assert len(links) == 6
    base = page_key.rsplit("/", 1)[0]
    for link in links:
        parts = base.split("/")
        for part in link.split("/"):
            if part == "..":
                parts.pop()
            else:
                parts.append(part)
        assert "<h1>churn v" in read_text(stack, "/".join(parts))
    assert "promoted v2" in page and "shift: drift flagged" in page


def test_reports_list_prints_runs_newest_first_with_alarms_as_json(
    story_stack: tuple[AwsStack, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "reports", "list")
    assert code == 0
    listed = json.loads(out)
    assert listed["history_page"] == history_keys("churn")[1]
    assert [r["run_id"] for r in listed["runs"]] == [f"day{d}" for d in reversed(range(6))]
    first = listed["runs"][-1]
    assert first["alarms_met"] == [] and first["metric_gap"] < 0.05
    assert "MetricGap" in listed["runs"][0]["alarms_met"]
    code, out, _ = cli(capsys, "reports", "list", "--version", "1", "--limit", "2")
    assert [(r["run_id"], r["version"]) for r in json.loads(out)["runs"]] == [("day3", 1), ("day2", 1)]
    code, out, err = cli(capsys, "reports", "list", "--version", "9")
    assert code != 0 and out == "" and "v9" in err


def test_reports_open_copies_the_history_page_and_the_reports_it_links(
    story_stack: tuple[AwsStack, Story], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = cli(capsys, "reports", "open", "--out", str(tmp_path), "--runs", "3")
    assert code == 0
    page = Path(out.strip())
    assert page.is_file() and page.is_relative_to(tmp_path)
    text = page.read_text()
    copied = [
        link for link in re.findall(r'href="([^"]+)"', text) if (page.parent / link).resolve().is_file()
    ]
    # The three newest runs' reports were copied next to the page, where its links point.
    assert len(copied) == 3
    code, out, _ = cli(capsys, "reports", "open", "--run", "day2", "--out", str(tmp_path))
    assert code == 0 and "run day2" in Path(out.strip()).read_text()
    code, out, err = cli(capsys, "reports", "open", "--run", "nope", "--out", str(tmp_path))
    assert code != 0 and "nope" in err


def test_registry_show_lists_the_reports_of_a_version(
    story_stack: tuple[AwsStack, Story], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "registry", "show", "2")
    assert code == 0
    shown = json.loads(out)
    assert sorted(r["run"] for r in shown["reports"]) == ["day4", "day5"]
    assert shown["production"]["version"] == 2 and shown["served"][0]["to"] is None
