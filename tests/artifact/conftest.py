"""The artifact tier: the built code asset and layers, run as Lambda runs them, against a moto server.

Each function is a fresh ``python3.12 -I -S`` process (infrastructure/artifact.py) over read-only
copies of what `make layers ARCH=<this machine>` built: nothing of the test environment is
importable there, the AWS SDK comes from a runtime folder of its own, and AWS is a moto server
on a random local port. Run by `make test-artifact`, which builds first; a missing build or a
missing Python 3.12 fails the tier, never skips it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import boto3
import pytest
from mlops.cloud.provision import create_resources
from mlops.model.training import TrainingResult
from moto.server import ThreadedMotoServer

from infrastructure.artifact import (
    ArtifactError,
    ArtifactLayout,
    LambdaProcess,
    host_arch,
    lambda_python,
    layer_dir,
    read_only_copy,
    remove_read_only,
    runtime_dir,
)
from infrastructure.components.environment import function_environment
from infrastructure.lambdas import CODE_ASSET_DIR, Layer, function
from tests.conftest import AwsStack, register_and_promote

SERVICES = ("s3", "dynamodb", "sqs", "sns", "cloudwatch", "events")
REGION = "us-east-1"
# Sources in the copies get this modification time (the earliest a zip can record), unlike the one
# their bytecode was compiled at: timestamp-checked bytecode would be recompiled, unchecked-hash not.
UNZIPPED_MTIME = 315532800


def _fail(err: ArtifactError) -> NoReturn:
    pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="session")
def python312() -> str:
    try:
        return lambda_python()
    except ArtifactError as err:
        _fail(err)


@dataclass(frozen=True)
class ReadOnlyArtifact:
    """Read-only copies of the code asset, each layer's python/ folder and the runtime SDK."""

    task: Path
    layers: dict[Layer, Path]
    runtime: Path

    def layout(self, layer: Layer) -> ArtifactLayout:
        return ArtifactLayout(task=self.task, layers=(self.layers[layer],), runtime=self.runtime)


def _restamp_sources(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                os.utime(os.path.join(dirpath, name), (UNZIPPED_MTIME, UNZIPPED_MTIME))


def _read_only_copy(src: Path, dest: Path) -> Path:
    copy = read_only_copy(src, dest)
    _restamp_sources(copy)  # the owner may set times on files it may not write
    return copy


@pytest.fixture(scope="session")
def artifact(python312: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadOnlyArtifact]:
    root = tmp_path_factory.mktemp("lambda")
    arch = host_arch()
    copies: list[Path] = []
    try:
        task = _read_only_copy(CODE_ASSET_DIR, root / "var-task")
        copies.append(task)
        layers = {}
        for layer in Layer:
            layers[layer] = _read_only_copy(layer_dir(layer, arch) / "python", root / f"opt-{layer.value}")
            copies.append(layers[layer])
        runtime = _read_only_copy(runtime_dir(arch), root / "var-runtime")
        copies.append(runtime)
    except ArtifactError as err:
        _fail(err)
    yield ReadOnlyArtifact(task=task, layers=layers, runtime=runtime)
    for path in copies:
        remove_read_only(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server in this process, reached over HTTP by the function processes."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@dataclass
class ServerStack:
    """Every resource of one test module on the moto server, with clients of this process."""

    stack: AwsStack
    connection: dict[str, str]

    def start(self, artifact: ReadOnlyArtifact, key: str) -> LambdaProcess:
        """Cold-start the function `key` of infrastructure.lambdas with the environment the stack gives it."""
        definition = function(key)
        env = function_environment(key, "churn", self.stack.env)
        try:
            return LambdaProcess(
                artifact.layout(definition.layer),
                definition.handler,
                f"artifact-{key.lower()}",
                {**env, **self.connection},
                memory_mb=definition.memory_mb,
                timeout_s=definition.timeout_s,
            )
        except ArtifactError as err:
            _fail(err)

    @contextmanager
    def run(self, artifact: ReadOnlyArtifact, key: str) -> Iterator[LambdaProcess]:
        """`start`, and once the test's invocations are done, check it ran as it would on Lambda."""
        process = self.start(artifact, key)
        try:
            yield process
            report = process.report()
        finally:
            process.close()
        assert_ran_as_on_lambda(report, artifact, function(key).layer)


def assert_ran_as_on_lambda(report: dict[str, Any], artifact: ReadOnlyArtifact, layer: Layer) -> None:
    """Python 3.12 in isolation, modules from where Lambda takes them, shipped bytecode, no writes."""
    assert report["python"][:2] == [3, 12]
    assert report["flags"] == {"isolated": 1, "no_site": 1}
    origins = report["origins"]
    # The SDK from the serving layer, which carries its own (layers/build.py `slim_sdk`), or else
    # from the runtime's folder; boto3 itself only if something imported it.
    sdk = artifact.layers[layer] if layer is Layer.SERVING else artifact.runtime
    assert origins["botocore"] is not None, origins
    for name in ("boto3", "botocore"):
        assert origins[name] is None or origins[name].startswith(str(sdk)), origins
    assert origins["mlops"].startswith(str(artifact.task)), origins
    layers = tuple(str(p) for p in artifact.layers.values())
    for name in ("numpy", "pydantic", "aws_lambda_powertools"):
        assert origins[name] is None or origins[name].startswith(layers), origins
    # Every module came from its shipped bytecode although every source is newer than it...
    assert report["compiled_from_source"] == []
    # ...and the copies refused every write, as Lambda's read-only /var/task and /opt do.
    assert report["writable"] == {}


@pytest.fixture(scope="module")
def server_stack(
    moto_endpoint: str, trained: TrainingResult, churn_data: Any, request: pytest.FixtureRequest
) -> ServerStack:
    """Fresh resources (named after the module) with the demo model registered and promoted as v1."""
    connection = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "artifact",
        "AWS_SECRET_ACCESS_KEY": "artifact",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    clients = {
        name: boto3.client(
            name,
            endpoint_url=moto_endpoint,
            region_name=REGION,
            aws_access_key_id="artifact",
            aws_secret_access_key="artifact",
        )
        for name in SERVICES
    }
    prefix = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")[:20]
    env = create_resources(clients, prefix, "churn")
    stack = AwsStack(env=env, **clients)
    register_and_promote(stack, trained, churn_data)
    return ServerStack(stack=stack, connection=connection)
