"""Synthesise the stack once per session; every infrastructure test reads the same template."""

from __future__ import annotations

import pytest

from tests.infrastructure.synth_support import ALARM_EMAIL, Synthesised, synthesise


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesised:
    """The demo stage as `make synth` builds it, plus an alarm e-mail to cover the subscription."""
    return synthesise(tmp_path_factory.mktemp("stack"), {"alarmEmail": ALARM_EMAIL})
