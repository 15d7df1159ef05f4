"""The README's local walkthrough, run from the README's own text against `mlops local up`.

The first code block starts the stack; the second is run by bash in order, as a newcomer would
paste it. Only the port and the path of the `mlops` script are substituted (a free port, this
environment's script), and curl is made to fail on an HTTP error status so that a step that
answers 4xx or 5xx stops the walkthrough.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlops.local.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
MLOPS = str(Path(sys.executable).parent / "mlops")
# `curl -s` alone exits 0 on a 404; the walkthrough must not hide a failed step.
CURL_THAT_FAILS = 'curl() { command curl --fail-with-body "$@"; }\n'

pytestmark = pytest.mark.slow


def walkthrough() -> tuple[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Try the API locally", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert len(blocks) >= 2, "the walkthrough section lost its code blocks"
    return blocks[0], blocks[1]


def _adapt(text: str, port: int) -> str:
    return text.replace("8080", str(port)).replace(".venv/bin/mlops", MLOPS)


def test_the_readme_walkthrough_works_in_order(tmp_path: Path) -> None:
    assert shutil.which("curl"), "the walkthrough needs curl"
    start, steps = walkthrough()
    port = free_port()
    command = _adapt(start.split("#", 1)[0].strip(), port)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    stack = subprocess.Popen(
        command,
        shell=True,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # The README's line runs in a shell; its own group lets the stack be stopped with the shell
        # (terminating the shell alone left `mlops local up` running after the test).
        start_new_session=True,
    )
    try:
        printed = _wait_for_start(stack)
        assert f"127.0.0.1:{port}" in printed
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", CURL_THAT_FAILS + _adapt(steps, port)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"a step failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/models/history", timeout=30) as answer:
            history = json.loads(answer.read())["history"]
        # Given the walkthrough ran: v1 first, v2 by retraining, back to v1, forward to v2.
        assert [(h["action"], h["to_version"]) for h in history] == [
            ("promote", 1),
            ("promote", 2),
            ("rollback", 1),
            ("promote", 2),
        ]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/model", timeout=30) as answer:
            assert json.loads(answer.read())["model_version"] == 2
    finally:
        os.killpg(stack.pid, signal.SIGTERM)
        try:
            stack.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            stack.wait()


def _wait_for_start(stack: subprocess.Popen[str], timeout_s: float = 300) -> str:
    assert stack.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = stack.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            return "".join(lines)
    raise AssertionError("mlops local up did not start:\n" + "".join(lines))
