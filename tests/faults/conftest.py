"""The fault tier: faults moto never produces (redelivery, hangs, tampering, bad records), injected.

Uses the serving fixtures of the integration tier: a fresh predict container on moto.
"""

from __future__ import annotations

from tests.integration.conftest import clock, fresh_settings, predict_runtime

__all__ = ["clock", "fresh_settings", "predict_runtime"]
