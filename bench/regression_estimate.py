"""Coverage of the regression estimate's interval and the concept-shift check's rates, by window size.

The pricing model (the example spec, trained once on 2,500 generated quotes) is held fixed; for each
of `--references` fresh reference sets of 625 quotes a loss model is fitted as training fits it, and
`--windows` windows per set are scored. Per window size it prints the share of windows whose 95%
interval holds the realized MAE, RMSE and R2 (sklearn.metrics), and the share of labelled windows
where concept shift is suspected: on in-distribution windows (false alarms) and with part of the
new price rule blended in (`--concept-shift`).

    python -m bench.regression_estimate --sizes 500 3000 --references 80 --windows 3 --json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from mlops.datagen.pricing import TARGET, generate_prices
from mlops.model.spec import load_spec
from mlops.model.training import TrainingResult, feature_frame, train_model
from mlops.regression.estimation import fit_loss_model
from mlops.regression.uncertainty import LabelledLossSums, LossSums, concept_shift_check, estimate_metric
from sklearn import metrics as skm

SPEC = Path(__file__).resolve().parent.parent / "functions" / "mlops" / "examples" / "pricing" / "spec.toml"
REFERENCE_ROWS = 625


def _scored(trained: TrainingResult, data: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    x = feature_frame(data, trained.spec)
    columns = {c: x[c].to_numpy() for c in trained.spec.feature_names}
    return columns, trained.pipeline.predict(x), data[TARGET].to_numpy(dtype=np.float64)


def run(sizes: list[int], references: int, windows: int, concept_shift: float) -> list[dict[str, Any]]:
    spec = load_spec(SPEC)
    trained = train_model(generate_prices(2500, seed=4), spec)
    rows = []
    for size in sizes:
        covered = {m: 0 for m in ("mae", "rmse", "r2")}
        false_alarms = fired = total = 0
        for k in range(references):
            columns, predicted, y = _scored(trained, generate_prices(REFERENCE_ROWS, seed=100 + k))
            model = fit_loss_model(
                columns, spec.numeric_features, spec.categorical_features, y, predicted, seed=k
            )
            for shift, seed in ((0.0, 1000 + k), (concept_shift, 5000 + k)):
                columns, predicted, y = _scored(
                    trained, generate_prices(windows * size, seed=seed, concept_shift=shift)
                )
                for w in range(windows):
                    part = slice(w * size, (w + 1) * size)
                    cols = {c: v[part] for c, v in columns.items()}
                    p, t = predicted[part], y[part]
                    check = concept_shift_check(LabelledLossSums.of(model, cols, p, t), model, "rmse", 2)
                    suspected = bool(check is not None and check.suspected)
                    if shift:
                        fired += suspected
                        continue
                    total += 1
                    false_alarms += suspected
                    sums = LossSums.of(model, cols, p)
                    realized = {
                        "mae": skm.mean_absolute_error(t, p),
                        "rmse": float(np.sqrt(skm.mean_squared_error(t, p))),
                        "r2": skm.r2_score(t, p),
                    }
                    for metric, value in realized.items():
                        estimate = estimate_metric(sums, model, metric)
                        assert estimate.ci_low is not None and estimate.ci_high is not None
                        covered[metric] += estimate.ci_low <= value <= estimate.ci_high
        rows.append(
            {
                "window_rows": size,
                "windows": total,
                "reference_sets": references,
                **{f"coverage_{m}": round(c / total, 3) for m, c in covered.items()},
                "false_alarms": round(false_alarms / total, 3),
                "concept_shift": concept_shift,
                "fired": round(fired / total, 3),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 500, 3000])
    parser.add_argument("--references", type=int, default=40)
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--concept-shift", type=float, default=0.1)
    parser.add_argument("--json", action="store_true", help="print one JSON object per window size")
    args = parser.parse_args(argv)
    for row in run(args.sizes, args.references, args.windows, args.concept_shift):
        print(json.dumps(row) if args.json else "  ".join(f"{k} {v}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
