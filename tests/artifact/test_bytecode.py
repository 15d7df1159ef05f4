"""What the build ships: Python 3.12 unchecked-hash bytecode everywhere, and nothing but its layer."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infrastructure.artifact import (
    ArtifactError,
    ArtifactLayout,
    LambdaProcess,
    host_arch,
    lambda_python,
    layer_dir,
    runtime_dir,
)
from infrastructure.lambdas import CODE_ASSET_DIR, FUNCTIONS, LAYERS_DIR, SERVING_SDK_SERVICES, Layer
from tests.artifact.conftest import ReadOnlyArtifact

# PEP 552: bit 0 of the flags word says hash-based, bit 1 says check the source; 0b01 never checks.
UNCHECKED_HASH = 0b01


@pytest.fixture(scope="module")
def magic_312(python312: str) -> bytes:
    script = "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"
    out = subprocess.run([python312, "-I", "-S", "-c", script], capture_output=True, text=True, check=True)
    return bytes.fromhex(out.stdout.strip())


def bytecode_problems(root: Path, magic: bytes) -> list[str]:
    """Every module under `root` without Python 3.12 bytecode that no timestamp can invalidate."""
    problems = []
    for source in sorted(root.rglob("*.py")):
        cached = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        if not cached.is_file():
            problems.append(f"{source.relative_to(root)}: no {cached.name}")
            continue
        header = cached.read_bytes()[:8]
        if header[:4] != magic:
            problems.append(f"{source.relative_to(root)}: compiled by another Python")
        elif int.from_bytes(header[4:8], "little") != UNCHECKED_HASH:
            problems.append(f"{source.relative_to(root)}: bytecode a timestamp or hash check may reject")
    return problems


@pytest.mark.parametrize("part", ["code", *[layer.value for layer in Layer]])
def test_every_shipped_module_carries_unchecked_hash_bytecode(part: str, magic_312: bytes) -> None:
    root = CODE_ASSET_DIR if part == "code" else layer_dir(Layer(part), host_arch()) / "python"
    if not root.is_dir():
        pytest.fail(f"{root} is not built: run `make layers ARCH={host_arch()}`", pytrace=False)
    problems = bytecode_problems(root, magic_312)
    assert not problems, f"{len(problems)} modules under {root}, e.g. {problems[:5]}"


def test_the_ml_layer_leaves_the_sdk_to_the_runtime() -> None:
    site = layer_dir(Layer.ML, host_arch()) / "python"
    assert site.is_dir(), f"{site} is not built"
    assert not [name for name in ("boto3", "botocore", "s3transfer") if (site / name).exists()]


def test_the_serving_layer_carries_the_runtime_sdk_with_the_data_of_the_services_it_calls() -> None:
    site = layer_dir(Layer.SERVING, host_arch()) / "python"
    assert site.is_dir(), f"{site} is not built"
    # The runtime's pinned version...
    pins = dict(
        line.split("==")
        for line in (LAYERS_DIR / "runtime" / "requirements.txt").read_text().splitlines()
        if "==" in line
    )
    for name in ("boto3", "botocore"):
        assert len(list(site.glob(f"{name}-{pins[name]}.dist-info"))) == 1, name
    # ...with the data of its services only, every operation of each kept...
    data = site / "botocore" / "data"
    assert sorted(p.name for p in data.iterdir() if p.is_dir()) == sorted(SERVING_SDK_SERVICES)
    endpoints = json.loads((data / "endpoints.json").read_text())
    aws = next(p for p in endpoints["partitions"] if p["partition"] == "aws")
    assert set(aws["services"]) == set(SERVING_SDK_SERVICES)
    (s3_model,) = (data / "s3").glob("*/service-2.json")
    assert {"GetObject", "PutObject", "ListObjectsV2"} <= set(json.loads(s3_model.read_text())["operations"])
    # ...and the functions on the layer ask for no other service.
    assert serving_layer_services() <= set(SERVING_SDK_SERVICES)


# Where each kept service sends one call, in a commercial, a GovCloud and a China region: with
# virtual-host S3 addressing, FIPS-less defaults and each partition's DNS suffix.
ENDPOINT_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import botocore.session

class Sent(Exception):
    pass

def stop(request, **_):
    raise Sent(request.url)

calls = {
    "s3": ("get_object", {"Bucket": "bucket-1", "Key": "a/b.json"}),
    "dynamodb": ("get_item", {"TableName": "t", "Key": {"pk": {"S": "x"}}}),
    "sqs": ("send_message", {"QueueUrl": "https://q.example/1/q", "MessageBody": "m"}),
    "lambda": ("invoke", {"FunctionName": "f"}),
}
session = botocore.session.get_session()
found = {"sdk": botocore.__file__.rsplit("/botocore/", 1)[0]}
for region in ("us-east-1", "eu-central-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1"):
    for service, (operation, params) in calls.items():
        keys = {"aws_access_key_id": "a", "aws_secret_access_key": "b"}
        client = session.create_client(service, region_name=region, **keys)
        client.meta.events.register("before-send", stop)
        try:
            getattr(client, operation)(**params)
        except Sent as sent:
            found[f"{service} {region}"] = str(sent)
print(json.dumps(found))
"""


def test_the_slimmed_sdk_resolves_every_endpoint_as_the_runtime_sdk_does() -> None:
    arch = host_arch()
    answers = []
    for sdk in (layer_dir(Layer.SERVING, arch) / "python", runtime_dir(arch)):
        out = subprocess.run(
            [lambda_python(), "-I", "-S", "-c", ENDPOINT_PROBE, str(sdk)],
            capture_output=True,
            text=True,
            check=True,
        )
        answers.append(json.loads(out.stdout))
    slim, full = answers
    assert slim.pop("sdk") != full.pop("sdk")  # two SDK folders really were compared
    assert len(slim) == 5 * len(SERVING_SDK_SERVICES)
    assert slim == full
    assert slim["s3 us-east-1"].startswith("https://bucket-1.s3.amazonaws.com/")


def serving_layer_services() -> set[str]:
    """The services the code of the serving layer's functions makes clients for (`aws.client("x")`)."""
    handlers = [f.handler.rsplit(".", 1)[0] for f in FUNCTIONS if f.layer is Layer.SERVING]
    probe = "import sys\n" + "".join(f"import {h}\n" for h in handlers)
    probe += "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.startswith('mlops')))"
    files = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=CODE_ASSET_DIR
    ).stdout.split()
    found = set()
    for path in files:
        found |= set(re.findall(r"\bclient\(\s*\"([a-z0-9-]+)\"", Path(path).read_text()))
    assert "s3" in found and "sqs" in found, found  # the scan sees what it must
    return found


def test_a_module_missing_from_the_layer_fails_the_cold_start(
    artifact: ReadOnlyArtifact, tmp_path: Path
) -> None:
    # given the code asset with an empty layer (Powertools, numpy... are in the test environment)
    empty = tmp_path / "opt"
    empty.mkdir()
    layout = ArtifactLayout(task=artifact.task, layers=(empty,), runtime=artifact.runtime)

    # when the predict function starts, then it fails as Lambda's init would, naming the module
    with pytest.raises(ArtifactError, match="No module named 'aws_lambda_powertools'"):
        LambdaProcess(layout, "mlops.handlers.predict.handler", "missing-layer", {})


def test_the_checks_see_a_source_compile_and_a_writable_copy(
    artifact: ReadOnlyArtifact, tmp_path: Path
) -> None:
    # given a code folder that is writable and holds a module without bytecode
    task = tmp_path / "task"
    task.mkdir()
    (task / "plain.py").write_text("def handler(event, context):\n    return event\n")
    layout = ArtifactLayout(task=task, layers=(), runtime=artifact.runtime)

    # when it starts and answers
    with LambdaProcess(layout, "plain.handler", "plain", {}) as process:
        assert process.invoke({"ping": 1}) == {"ping": 1}
        report = process.report()

    # then the report names both, so the artifact tests cannot pass on a tree that has either
    assert report["compiled_from_source"] == [str(task / "plain.py")]
    assert list(report["writable"]) == [str(task)]
