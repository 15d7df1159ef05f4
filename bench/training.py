"""Where training outgrows a Lambda: time and peak memory of `train_model` + ONNX export by data size.

Each size runs in a fresh process so peak RSS is its own. The Lambda limits are 15 minutes
and 10,240 MB; the script extrapolates along the slope between the two largest sizes to
the row count at which half of either limit would be used (a 2x safety margin), for the
demo's 15 features. `--json` prints the figures as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_SECONDS = 15 * 60
LAMBDA_MB = 10_240
SAFETY = 2.0


def measure(rows: int) -> dict[str, float]:
    from mlops.datagen.churn import generate_churn
    from mlops.model.registration import prove_export
    from mlops.model.spec import load_spec
    from mlops.model.training import train_model

    spec = load_spec(ROOT / "functions" / "mlops" / "examples" / "churn" / "spec.toml")
    data = generate_churn(rows, seed=1)
    started = time.perf_counter()
    result = train_model(data, spec)
    trained = time.perf_counter()
    prove_export(result)
    done = time.perf_counter()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "rows": rows,
        "train_s": round(trained - started, 2),
        "export_and_parity_s": round(done - trained, 2),
        "peak_rss_mb": round(peak_mb, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="20000,100000,300000")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return 0
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(size)], capture_output=True, text=True, check=True
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    # Extrapolate along the slope between the two largest sizes (fixed costs excluded).
    small, big = results[-2], results[-1]
    d_rows = big["rows"] - small["rows"]

    def seconds(r: dict[str, float]) -> float:
        return r["train_s"] + r["export_and_parity_s"]

    s_per_row = max((seconds(big) - seconds(small)) / d_rows, 1e-9)
    mb_per_row = max((big["peak_rss_mb"] - small["peak_rss_mb"]) / d_rows, 1e-9)
    rows_by_time = big["rows"] + (LAMBDA_SECONDS / SAFETY - seconds(big)) / s_per_row
    rows_by_memory = big["rows"] + (LAMBDA_MB / SAFETY - big["peak_rss_mb"]) / mb_per_row
    summary = {
        "measurements": results,
        "lambda_row_limit_by_time": int(rows_by_time),
        "lambda_row_limit_by_memory": int(rows_by_memory),
        "lambda_row_limit": int(min(rows_by_time, rows_by_memory)),
        "features": 15,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print("training (logistic regression, 15 features, train + ONNX export + parity)")
        for r in results:
            print(
                f"  rows {r['rows']:>9,}  train {r['train_s']:>7.2f} s  export+parity "
                f"{r['export_and_parity_s']:>6.2f} s  peak RSS {r['peak_rss_mb']:>8.1f} MB"
            )
        print(
            f"  Lambda boundary (2x margin): about {summary['lambda_row_limit']:,} rows "
            f"(time: {summary['lambda_row_limit_by_time']:,}, "
            f"memory: {summary['lambda_row_limit_by_memory']:,})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
