"""Stage configuration is validated before anything is built; serving pins stay free of training code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from infrastructure.components.function import retention
from infrastructure.config import LOG_RETENTION_DAYS, StageConfig, built_sources
from infrastructure.lambdas import (
    CODE_ASSET_DIR,
    FUNCTIONS,
    FUNCTIONS_DIR,
    Layer,
    assemble_code_asset,
    assemble_image_context,
)

PIN = re.compile(r"^[A-Za-z0-9_.\-\[\]]+==[0-9][A-Za-z0-9.]*$")


def context(**values: Any) -> Any:
    return lambda key: values.get(key)


def test_defaults_give_the_dev_stage_of_the_demo_spec() -> None:
    config = StageConfig.from_context(context())
    assert (config.stage, config.model_name, config.stack_name) == ("dev", "churn", "ServerlessMlops-dev")
    assert config.alarm_email is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"stage": "Prod!"}, "stage"),
        ({"alarmEmail": "not-an-address"}, "alarmEmail"),
        ({"logRetentionDays": "45"}, "logRetentionDays"),
        ({"predictionLogExpireDays": "20"}, "predictionLogExpireDays"),
        ({"retrainingSnapshotExpireDays": "0"}, "retrainingSnapshotExpireDays"),
        ({"reportExpireDays": "90"}, "reportExpireDays"),
    ],
)
def test_invalid_context_is_refused_with_the_key_named(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StageConfig.from_context(context(**values))


def test_a_missing_spec_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="spec file not found"):
        StageConfig.from_context(context(spec=str(tmp_path / "absent.toml")))


def test_every_allowed_log_retention_maps_to_cloudwatch() -> None:
    assert all(retention(days) for days in LOG_RETENTION_DAYS)


def requirements(layer: Layer) -> list[str]:
    lines = [line.split("#")[0].strip() for line in layer.requirements.read_text().splitlines()]
    return [line for line in lines if line]


@pytest.mark.parametrize("layer", list(Layer))
def test_layer_requirements_are_pinned(layer: Layer) -> None:
    reqs = requirements(layer)
    assert reqs and all(PIN.match(r) for r in reqs), reqs


def test_serving_layer_carries_onnxruntime_never_sklearn_scipy_or_pandas() -> None:
    names = {r.split("==")[0].lower() for r in requirements(Layer.SERVING)}
    assert {"onnxruntime", "numpy", "aws-lambda-powertools", "pydantic"} <= names
    assert not names & {"scikit-learn", "sklearn", "scipy", "pandas", "skl2onnx"}


def test_image_functions_and_layer_functions_split_by_dependency_set() -> None:
    packaging = {f.key: f.layer.ships_as_image for f in FUNCTIONS}
    assert packaging == {
        "Predict": False,
        "Feedback": False,
        "LogWriter": False,
        "Admin": False,
        "Monitor": True,
        "Retrain": True,
    }


def test_image_context_holds_dockerfile_pins_and_code(tmp_path: Path) -> None:
    ctx = assemble_image_context(tmp_path / "ctx")
    assert (ctx / "Dockerfile").read_text().startswith("#")
    assert (ctx / "requirements.txt").read_text() == Layer.ML.requirements.read_text()
    assert (ctx / "mlops" / "__init__.py").is_file()
    assert not list(ctx.rglob("__pycache__"))


def test_code_asset_copies_the_functions_without_pictures_or_a_developers_bytecode(tmp_path: Path) -> None:
    # given a source tree holding stray bytecode of whatever Python ran last
    stray = FUNCTIONS_DIR / "mlops" / "__pycache__" / "stray.cpython-311.pyc"
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"not for Lambda")
    try:
        asset = assemble_code_asset(tmp_path / "code")
    finally:
        stray.unlink()
    sources = {p.relative_to(FUNCTIONS_DIR) for p in FUNCTIONS_DIR.rglob("*.py")}
    assert {p.relative_to(asset) for p in asset.rglob("*.py")} == sources
    assert not list(asset.rglob("*.pyc")) and not list(asset.rglob("*.png"))


def test_the_stack_ships_the_built_code_asset_and_the_image_its_bytecode(tmp_path: Path) -> None:
    # the CDK asset is the built folder (bytecode included), not the source tree filtered at synth
    assert built_sources().functions_dir == CODE_ASSET_DIR
    code = assemble_code_asset(tmp_path / "code")
    compiled = code / "mlops" / "__pycache__" / "config.cpython-312.pyc"
    compiled.parent.mkdir(exist_ok=True)
    compiled.write_bytes(b"compiled by the build")
    ctx = assemble_image_context(tmp_path / "ctx", code)
    assert (ctx / "mlops" / "__pycache__" / "config.cpython-312.pyc").read_bytes() == b"compiled by the build"
