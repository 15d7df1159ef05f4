"""The report pages in a real browser (headless Chromium): no console error, charts drawn, and no
label drawn over another or cut off; `mlops local up` serves the history page from its first run.

Set MLOPS_SCREENSHOTS=<dir> to keep full-page screenshots of the pages checked here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlops.cli import main
from mlops.model.training import TrainingResult

from tests.browser import Browser, PageCheck
from tests.report_story import monitored_life, moto_stack

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def pages(
    trained: TrainingResult, churn_data: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A monitored life's history page and every run report, copied locally by `mlops reports open`."""
    out = tmp_path_factory.mktemp("reports")
    with moto_stack() as stack:
        monitored_life(stack, trained, churn_data)
        assert main(["reports", "open", "--out", str(out), "--runs", "10"]) == 0
    yield out


def screenshot_path(name: str) -> Path | None:
    folder = os.environ.get("MLOPS_SCREENSHOTS")
    if not folder:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder) / name


def assert_clean(check: PageCheck, min_charts: int) -> None:
    assert check.errors == [], check.errors
    assert check.charts >= min_charts and check.empty_charts == [], check
    assert check.overlaps == [], check.overlaps
    assert check.clipped == [], check.clipped


def test_history_page_renders_cleanly(browser: Browser, pages: Path) -> None:
    (page,) = (pages / "reports" / "history").glob("*.html")
    check = browser.check(page.as_uri(), screenshot_path("history.png"))
    # The performance chart and both drift charts are drawn, with every label legible
    assert_clean(check, min_charts=3)
    assert check.texts > 40


def test_every_run_report_renders_cleanly(browser: Browser, pages: Path) -> None:
    reports = sorted(pages.glob("reports/model_version=*/dt=*/run=*/report.html"))
    assert len(reports) == 6
    for report in reports:
        name = "report-" + re.sub(r"\W+", "-", str(report.relative_to(pages / "reports")))[:60] + ".png"
        check = browser.check(report.as_uri(), screenshot_path(name) if "day3" in str(report) else None)
        # The metric chart, the coverage bar and one distribution per tested feature and the scores
        assert_clean(check, min_charts=3)


def test_the_checks_catch_what_a_reader_would_see(browser: Browser, tmp_path: Path) -> None:
    # Given a page with a script error, a missing image, two labels on top of each other and one
    # label running out of its chart
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body><img src='missing.png'>"
        "<svg class='chart' width='200' height='60' font-size='11'><rect width='5' height='5'/>"
        "<text x='10' y='20'>alarm below</text><text x='30' y='22'>test set</text>"
        "<text x='170' y='40'>cut off here</text></svg>"
        "<script>console.error('boom'); undefinedFunction();</script></body></html>"
    )
    # When it is checked
    check = browser.check(page.as_uri())
    # Then each problem is reported
    assert any("boom" in e for e in check.errors)
    assert any("undefinedFunction" in e for e in check.errors)
    assert any("missing.png" in e for e in check.errors)
    assert check.overlaps == ['chart 0: "alarm below" / "test set"']
    assert check.clipped == ['chart 0: "cut off here"']


def test_local_up_serves_the_history_page_of_its_first_monitor_run(browser: Browser, tmp_path: Path) -> None:
    # Given `mlops local up` started as a user would
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)])}
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.pop(var, None)
    log = tmp_path / "local-up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from mlops.cli import main; sys.exit(main())",
                "local",
                "up",
                "--port",
                "0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        url = _wait_for_line(proc, log, r"^reports\s+(\S+)", timeout=300)
        # When the printed history URL is opened (no monitor run was asked for)
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert resp.status == 200 and resp.headers["content-type"].startswith("text/html")
        root = url.split("/reports/")[0] + "/reports/"
        with urllib.request.urlopen(root, timeout=30) as resp:
            assert resp.url == url  # /reports/ leads to the history page
        check = browser.check(url, screenshot_path("local-history.png"))
        # Then the first run is there: the serving version's test-set line and alarm line are drawn
        assert_clean(check, min_charts=1)
        links = re.findall(r'href="([^"]+)"', urllib.request.urlopen(url, timeout=30).read().decode())
        assert len(links) == 1
        run_report = urllib.parse.urljoin(url, links[0])
        assert_clean(browser.check(run_report), min_charts=2)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for_line(proc: subprocess.Popen[bytes], log: Path, pattern: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        found = re.search(pattern, text, re.MULTILINE)
        if found:
            return found.group(1)
        if proc.poll() is not None:
            raise AssertionError(f"mlops local up exited with {proc.returncode}:\n{text}")
        time.sleep(0.5)
    raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n{log.read_text()}")
