"""Which Lambda functions exist, what code and layer each carries, and how big each is configured.

Plain data without CDK imports, so the stack and the layer size check (`layers/build.py`)
read the same table.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = ROOT / "functions"
LAYERS_DIR = ROOT / "layers"
LAYER_BUILD_DIR = LAYERS_DIR / "build"
# The function code asset as `make layers` builds it: functions/ without CODE_EXCLUDES, plus the
# bytecode Python 3.12 compiled from it. The CDK asset and the size check both use this folder.
CODE_ASSET_DIR = LAYER_BUILD_DIR / "code"

# Files of functions/ that never belong in a deployment package. A developer's own bytecode
# (compiled by whatever Python ran the tests) is left behind too: the build compiles its own.
# Documentation pictures and the local demo report travel with the source, not with the functions.
CODE_EXCLUDES: tuple[str, ...] = ("__pycache__", "*.pyc", "*.egg-info", ".mypy_cache", "*.png")

# Lambda's limit on a function's unzipped code plus all its layers, and the headroom we keep so
# a dependency bump does not fail a deploy.
UNZIPPED_LIMIT_BYTES = 262_144_000
REQUIRED_HEADROOM = 0.15


class Layer(StrEnum):
    """A pinned set of third-party packages (layers/<name>/requirements.txt)."""

    SERVING = "serving"
    ML = "ml"

    @property
    def requirements(self) -> Path:
        return LAYERS_DIR / self.value / "requirements.txt"

    @property
    def ships_as_image(self) -> bool:
        """Measured by `make layers-check`: the ML set is about 300 MB unzipped, over Lambda's zip
        limit on its own, so its functions run from a container image (10 GB limit) built from the
        same pins; the serving set (about 120 MB) ships as a zip layer."""
        return self is Layer.ML


# The AWS services the functions on the serving layer call. The layer carries its own AWS SDK (the
# runtime's version, layers/runtime/requirements.txt) with the data of these services only: a
# first client parses far less (layers/build.py `slim_sdk`). A test checks the functions' code
# asks for no other.
SERVING_SDK_SERVICES = ("dynamodb", "lambda", "s3", "sqs")


@dataclass(frozen=True)
class FunctionDef:
    key: str
    handler: str
    layer: Layer
    memory_mb: int
    timeout_s: int
    description: str


# Memory and timeout, and why:
# - predict: the measured peak is 116 MB (bench/serving.py, 1,000-row batches included), so memory
#   is not what sizes it: CPU is. Lambda gives CPU in proportion to memory (one vCPU at 1,769 MB),
#   and the cold start (importing numpy and onnxruntime, loading the ONNX session) and large
#   batches are CPU-bound. 1024 MB (about 0.58 vCPU) keeps a cold start well under the 1 s p99
#   alarm; 512 MB would halve the CPU, roughly doubling those times, to save $0.07 per million
#   warm predictions (10 ms billed each). 10 s caps a cold start that also downloads the champion.
# - feedback / admin: small JSON in, DynamoDB and SQS or S3 calls out; 512 MB is the cheapest size
#   without a visibly slower cold start for pydantic.
# - log writer: batches of up to 10,000 messages (6 MB at most) gzip-compressed to S3 take about a
#   second; 512 MB and 30 s, so the queue's visibility timeout (resources.PREDICTION_QUEUE: 240 s) is
#   the six times the function timeout plus the batching window that SQS event sources need.
# - monitor: profiles the hours that arrived since its last run, joins new labels to the hours they
#   label, and computes the window's figures and tests. 2048 MB by default; the model's spec sets it
#   (`monitoring.memory_mb`: a run at 1,000 requests/s holds hours of 3.6 million rows and needs
#   4096). 5 minutes: a full-scale hour took 37 s on a 2-core machine (bench/monitor_full_scale.py).
# - retrain: trains a scikit-learn pipeline, exports and checks ONNX parity, runs the gate;
#   3008 MB (2 vCPU) and the 15-minute maximum. Training that outgrows it moves to a managed
#   engine behind the same interface.
FUNCTIONS: tuple[FunctionDef, ...] = (
    FunctionDef(
        "Predict", "mlops.handlers.predict.handler", Layer.SERVING, 1024, 10, "GET /model, POST /predict"
    ),
    FunctionDef("Feedback", "mlops.handlers.feedback.handler", Layer.SERVING, 512, 10, "POST /feedback"),
    FunctionDef(
        "LogWriter", "mlops.handlers.log_writer.handler", Layer.SERVING, 512, 30, "SQS -> S3 predictions/"
    ),
    FunctionDef("Admin", "mlops.handlers.admin.handler", Layer.SERVING, 512, 15, "registry admin routes"),
    FunctionDef("Monitor", "mlops.handlers.monitor.handler", Layer.ML, 2048, 300, "drift and performance"),
    FunctionDef("Retrain", "mlops.handlers.retrain.handler", Layer.ML, 3008, 900, "train, gate, register"),
)


def function(key: str) -> FunctionDef:
    for f in FUNCTIONS:
        if f.key == key:
            return f
    raise KeyError(key)


def assemble_code_asset(dest: Path) -> Path:
    """Copy functions/ without CODE_EXCLUDES to `dest` (the build then compiles it in place)."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(FUNCTIONS_DIR, dest, ignore=shutil.ignore_patterns(*CODE_EXCLUDES))
    return dest


def assemble_image_context(dest: Path, code_dir: Path | None = None) -> Path:
    """Write the ML image's build context: Dockerfile, pinned requirements and the domain package.

    `code_dir` is a built code asset (its compiled bytecode goes into the image); without it the
    package is copied from source. A small directory of its own, so the CDK asset hashes and
    copies only what the image holds.
    """
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copy2(LAYERS_DIR / Layer.ML.value / "Dockerfile", dest / "Dockerfile")
    shutil.copy2(Layer.ML.requirements, dest / "requirements.txt")
    if code_dir is None:
        shutil.copytree(
            FUNCTIONS_DIR / "mlops", dest / "mlops", ignore=shutil.ignore_patterns(*CODE_EXCLUDES)
        )
    else:
        shutil.copytree(code_dir / "mlops", dest / "mlops")
    return dest
