"""Function settings read from the environment at cold start: by the variable names the stack sets."""

from __future__ import annotations

import pytest
from mlops.shared import resources as r
from mlops.shared.settings import MonitorSettings, ServingSettings
from pydantic import ValidationError

SERVING_ENV = {
    r.MODEL_NAME_ENV: "churn",
    r.REGISTRY_TABLE.env_var: "registry",
    r.ARTIFACT_BUCKET.env_var: "artifacts",
    r.PREDICTION_QUEUE.env_var: "https://sqs.example/queue",
}


@pytest.fixture
def serving_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SERVING_ENV.items():
        monkeypatch.setenv(name, value)


def test_settings_come_from_the_variables_the_stack_sets(
    serving_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the predict function's environment, with two tunables as text
    monkeypatch.setenv("MLOPS_MAX_BATCH_ROWS", "250")
    monkeypatch.setenv("MLOPS_CHAMPION_REFRESH_SECONDS", "2.5")
    # when the settings are read
    settings = ServingSettings()  # type: ignore[call-arg]
    # then every field holds its variable's value, converted to the field's type
    assert settings.model_name == "churn"
    assert settings.registry_table == "registry"
    assert settings.artifact_bucket == "artifacts"
    assert settings.prediction_queue_url == "https://sqs.example/queue"
    assert settings.max_batch_rows == 250
    assert settings.champion_refresh_seconds == 2.5
    assert settings.report_bucket is None
    assert settings.log_send_budget_seconds == 3.0


def test_values_given_override_the_environment_by_alias_or_field_name(serving_env: None) -> None:
    by_alias = ServingSettings(**{r.PREDICTION_QUEUE.env_var: "https://other/queue"})  # type: ignore[arg-type]
    by_name = ServingSettings(prediction_queue_url="https://named/queue")  # type: ignore[call-arg]
    assert by_alias.prediction_queue_url == "https://other/queue"
    assert by_name.prediction_queue_url == "https://named/queue"
    assert by_alias.model_name == by_name.model_name == "churn"


def test_a_missing_or_invalid_variable_fails_at_cold_start_naming_it(
    serving_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a bound out of range and a required variable unset
    monkeypatch.setenv("MLOPS_MAX_BATCH_ROWS", "0")
    monkeypatch.delenv(r.PREDICTION_QUEUE.env_var)
    # when the settings are read, then both are named
    with pytest.raises(ValidationError) as err:
        ServingSettings()  # type: ignore[call-arg]
    named = {str(e["loc"][0]) for e in err.value.errors()}
    assert named == {"MLOPS_MAX_BATCH_ROWS", r.PREDICTION_QUEUE.env_var}


def test_each_function_reads_only_its_own_variables(
    serving_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the monitor needs log and report buckets the predict function does not have
    with pytest.raises(ValidationError) as err:
        MonitorSettings()  # type: ignore[call-arg]
    assert {str(e["loc"][0]) for e in err.value.errors()} == {
        r.LOG_BUCKET.env_var,
        r.REPORT_BUCKET.env_var,
    }
    monkeypatch.setenv(r.LOG_BUCKET.env_var, "logs")
    monkeypatch.setenv(r.REPORT_BUCKET.env_var, "reports")
    assert MonitorSettings().log_bucket == "logs"  # type: ignore[call-arg]
