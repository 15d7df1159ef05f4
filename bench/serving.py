"""Serving benchmark: this project's predict function against a tutorial-style baseline, from artifacts.

Both run as Lambda runs them: a fresh ``python3.12 -I -S`` process over read-only copies of a
built code asset (with its shipped bytecode) and a built layer, the AWS SDK from a runtime folder
of its own (infrastructure/artifact.py), fetching the model from a moto server run here. Ours is
the code asset plus the serving layer (`make layers ARCH=host`); the baseline is its one handler
file, built the same way, on the ML layer (scikit-learn, pandas, joblib). Cold start is spawn ->
first answer (import, settings, clients, model load, one prediction; median of several fresh
processes, ours and the baseline's taken in turns so that both meet the same load on a shared
machine); warm figures come from the same process afterwards (bench/serving_worker.py), with
the SQS send stubbed out (its cost is measured apart). ``--json`` prints one JSON object.

The regression row does the same for the pricing model (functions/mlops/examples/pricing), served
by the same code asset and layer, against the same baseline file on its own pickled regressor;
its figures are the JSON's ``regression`` object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infrastructure.artifact import (  # noqa: E402  (the repo root must be importable first)
    ArtifactLayout,
    host_arch,
    lambda_environment,
    lambda_python,
    layer_dir,
    read_only_copy,
    remove_read_only,
    runtime_dir,
)
from infrastructure.lambdas import CODE_ASSET_DIR, Layer  # noqa: E402
from layers.build import TASK_ROOT, compile_bytecode  # noqa: E402

HERE = Path(__file__).resolve().parent
WORKER = HERE / "serving_worker.py"
BASELINE = HERE / "baseline_handler.py"
COLD_STARTS = int(os.environ.get("BENCH_COLD_STARTS", "9"))
TARGETS = {
    "cold_start_s": 0.6,
    "cold_start_speedup": 2.5,
    "warm_p50_ms": 0.5,
    "warm_speedup": 5.0,
    "batch1000_ms": 10.0,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_stack() -> tuple[Any, dict[str, str]]:
    """A moto server with every resource, and the demo model registered and promoted."""
    import boto3
    from mlops.cloud.provision import create_resources
    from mlops.cloud.registry import Registry
    from mlops.datagen.churn import generate_churn
    from mlops.model import bundle
    from mlops.model.registration import TrainingData, register_model
    from mlops.model.spec import load_spec
    from mlops.model.training import train_model
    from mlops.shared.resources import ARTIFACT_BUCKET, REGISTRY_TABLE
    from moto.server import ThreadedMotoServer

    # The moto server logs every request; the benchmark prints figures only.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    os.environ.update(env)
    clients = {n: boto3.client(n) for n in ("s3", "dynamodb", "sqs", "sns", "cloudwatch", "events")}
    env.update(create_resources(clients, "bench", "churn"))
    spec = load_spec(ROOT / "functions" / "mlops" / "examples" / "churn" / "spec.toml")
    result = train_model(generate_churn(4000, seed=1), spec)
    registry = Registry(clients["dynamodb"], env[REGISTRY_TABLE.env_var], spec.name)
    record = register_model(
        result,
        registry,
        clients["s3"],
        env[ARTIFACT_BUCKET.env_var],
        TrainingData("0" * 64, result.train_rows),
    )
    registry.promote(record.version, actor="bench", reason="benchmark")
    env["BASELINE_MODEL_BUCKET"] = env[ARTIFACT_BUCKET.env_var]
    env["BASELINE_MODEL_KEY"] = record.artifacts[bundle.PIPELINE].key
    env["POWERTOOLS_METRICS_NAMESPACE"] = "ServerlessMLOps"
    return server, env


def add_regression_model(env: dict[str, str]) -> dict[str, str]:
    """The pricing model trained, registered and promoted in the same stack as the churn model; returns
    the environment of its function (its model name, its pipeline for the baseline, a quote to send)."""
    import boto3
    from mlops.cloud.registry import Registry
    from mlops.datagen.pricing import generate_prices
    from mlops.model import bundle
    from mlops.model.registration import TrainingData, register_model
    from mlops.model.spec import load_spec
    from mlops.model.training import feature_frame, frame_rows, train_model
    from mlops.shared.resources import ARTIFACT_BUCKET, MODEL_NAME_ENV, REGISTRY_TABLE

    spec = load_spec(ROOT / "functions" / "mlops" / "examples" / "pricing" / "spec.toml")
    data = generate_prices(4000, seed=1)
    result = train_model(data, spec)
    registry = Registry(boto3.client("dynamodb"), env[REGISTRY_TABLE.env_var], spec.name)
    record = register_model(
        result,
        registry,
        boto3.client("s3"),
        env[ARTIFACT_BUCKET.env_var],
        TrainingData("0" * 64, result.train_rows),
    )
    registry.promote(record.version, actor="bench", reason="benchmark")
    quote = frame_rows(feature_frame(data.head(1), spec))[0]
    return {
        **env,
        MODEL_NAME_ENV: spec.name,
        "BASELINE_MODEL_KEY": record.artifacts[bundle.PIPELINE].key,
        "BENCH_PREDICT_BODY": json.dumps({"features": quote}),
    }


# Figures only our function reports: what its cold start was spent on, and the SQS send apart.
OURS_ONLY = ("import_s", "first_request_s", "sqs_send_p50_ms", "sqs_send_batch1000_ms")


def compare(ours: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The figures of one model served both ways, as the classification figures are named."""
    figures: dict[str, Any] = {
        "cold_start_s": round(ours["cold_start_s"], 3),
        "baseline_cold_start_s": round(base["cold_start_s"], 3),
        "cold_start_speedup": round(base["cold_start_s"] / ours["cold_start_s"], 2),
        "warm_p50_ms": round(ours["warm_p50_ms"], 4),
        "warm_p99_ms": round(ours["warm_p99_ms"], 4),
        "baseline_warm_p50_ms": round(base["warm_p50_ms"], 4),
        "baseline_warm_p99_ms": round(base["warm_p99_ms"], 4),
        "warm_speedup": round(base["warm_p50_ms"] / ours["warm_p50_ms"], 2),
        "batch1000_ms": round(ours["batch1000_ms"], 3),
        "baseline_batch1000_ms": round(base["batch1000_ms"], 3),
        "peak_rss_mb": round(ours["peak_rss_mb"], 1),
        "baseline_peak_rss_mb": round(base["peak_rss_mb"], 1),
        "cold_starts_s": [round(c, 3) for c in ours["cold_starts_s"]],
        "baseline_cold_starts_s": [round(c, 3) for c in base["cold_starts_s"]],
        **{key: round(ours[key], 3) for key in OURS_ONLY if key in ours},
    }
    figures["targets_met"] = {
        "cold start <= 0.6 s": figures["cold_start_s"] <= TARGETS["cold_start_s"],
        "cold start >= 2.5x baseline": figures["cold_start_speedup"] >= TARGETS["cold_start_speedup"],
        "warm p50 <= 0.5 ms": figures["warm_p50_ms"] <= TARGETS["warm_p50_ms"],
        "warm p50 >= 5x baseline": figures["warm_speedup"] >= TARGETS["warm_speedup"],
        "batch <= 10 ms": figures["batch1000_ms"] <= TARGETS["batch1000_ms"],
        "batch faster than baseline": figures["batch1000_ms"] < figures["baseline_batch1000_ms"],
    }
    return figures


@contextmanager
def artifacts() -> Iterator[dict[str, ArtifactLayout]]:
    """Read-only copies of ours (code asset + serving layer) and the baseline's (its file + ML layer)."""
    arch = host_arch()
    missing = [
        str(p)
        for p in (
            CODE_ASSET_DIR,
            layer_dir(Layer.SERVING, arch),
            layer_dir(Layer.ML, arch),
            runtime_dir(arch),
        )
        if not p.is_dir()
    ]
    if missing:
        raise SystemExit(
            f"not built: {', '.join(missing)} (run `python layers/build.py --arch host --runtime`)"
        )
    root = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    baseline_code = root / "baseline-build"
    baseline_code.mkdir()
    shutil.copy2(BASELINE, baseline_code / BASELINE.name)
    compile_bytecode(baseline_code, TASK_ROOT)
    copies = {
        "task": read_only_copy(CODE_ASSET_DIR, root / "task"),
        "serving": read_only_copy(layer_dir(Layer.SERVING, arch) / "python", root / "opt-serving"),
        "baseline_task": read_only_copy(baseline_code, root / "baseline-task"),
        "ml": read_only_copy(layer_dir(Layer.ML, arch) / "python", root / "opt-ml"),
        "runtime": read_only_copy(runtime_dir(arch), root / "runtime"),
    }
    try:
        yield {
            "ours": ArtifactLayout(copies["task"], (copies["serving"],), copies["runtime"]),
            "baseline": ArtifactLayout(copies["baseline_task"], (copies["ml"],), copies["runtime"]),
        }
    finally:
        for path in copies.values():
            remove_read_only(path)
        shutil.rmtree(root)


def run_worker(
    which: str, mode: str, env: dict[str, str], layouts: dict[str, ArtifactLayout]
) -> tuple[float, dict[str, Any], dict[str, Any]]:
    """Spawn a container; return (seconds to its first answer, its READY detail, its RESULT figures)."""
    child_env = lambda_environment(f"bench-{which}", env)
    started = time.perf_counter()
    proc = subprocess.Popen(
        layouts[which].command("--driver", str(WORKER), which, mode),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env,
    )
    assert proc.stdout is not None
    cold = float("nan")
    ready: dict[str, Any] = {}
    result: dict[str, Any] = {}
    for line in proc.stdout:
        if line.startswith("READY"):
            cold = time.perf_counter() - started
            ready = json.loads(line.split(" ", 1)[1])
        elif line.startswith("RESULT"):
            result = json.loads(line.split(" ", 1)[1])
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{which} worker failed:\n{err[-3000:]}")
    return cold, ready, result


def measure_both(env: dict[str, str], layouts: dict[str, ArtifactLayout]) -> dict[str, Any]:
    """Ours against the baseline on one model: a full run of each, then cold starts in turns."""
    runs: dict[str, dict[str, Any]] = {}
    for which in ("ours", "baseline"):
        cold, ready, figures = run_worker(which, "full", env, layouts)
        runs[which] = {"cold_starts_s": [cold], **ready, **figures}
    for _ in range(COLD_STARTS - 1):
        for which in ("ours", "baseline"):
            runs[which]["cold_starts_s"].append(run_worker(which, "cold", env, layouts)[0])
    for run in runs.values():
        run["cold_start_s"] = statistics.median(run["cold_starts_s"])
    return compare(runs["ours"], runs["baseline"])


def print_rows(title: str, figures: dict[str, Any]) -> None:
    print(f"{title:40s} {'ours':>12s} {'baseline':>12s}")
    for name, key in (
        ("cold start from the artifact, s", "cold_start_s"),
        ("warm single row p50, ms", "warm_p50_ms"),
        ("warm single row p99, ms", "warm_p99_ms"),
        ("1,000-row batch, ms", "batch1000_ms"),
        ("peak RSS, MB", "peak_rss_mb"),
    ):
        print(f"{name:40s} {figures[key]:>12} {figures['baseline_' + key]:>12}")
    print(f"speed-up: cold start x{figures['cold_start_speedup']}, warm p50 x{figures['warm_speedup']}")
    print(
        "targets: "
        + ", ".join(f"{n} {'met' if ok else 'MISSED'}" for n, ok in figures["targets_met"].items())
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    python = lambda_python()
    server, env = start_stack()
    try:
        with artifacts() as layouts:
            classification = measure_both(env, layouts)
            regression = measure_both(add_regression_model(env), layouts)
    finally:
        server.stop()
    figures: dict[str, Any] = {
        "cold_start_source": "artifact",
        "python": subprocess.run(
            [python, "-I", "-S", "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip(),
        **classification,
        "regression": regression,
    }
    if args.json:
        print(json.dumps(figures))
        return 0
    print_rows("serving benchmark (classification)", figures)
    print(
        f"SQS send (moto server, not timed above): 1 row {figures['sqs_send_p50_ms']} ms p50, "
        f"1,000 rows {figures['sqs_send_batch1000_ms']} ms; of the cold start: import "
        f"{figures['import_s']} s, first request {figures['first_request_s']} s"
    )
    print(f"python {figures['python']} -I -S over read-only copies of the built artifacts")
    print_rows("regression (pricing model)", regression)
    return 0


if __name__ == "__main__":
    sys.exit(main())
