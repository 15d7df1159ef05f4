"""Label-free performance estimation against NannyML's CBPE on generated data with known truth.

The churn generator (`mlops.datagen.churn`) shifts customers' tenure downwards by 0 to 3 standard
deviations: covariate shift only, the label's dependence on the inputs unchanged. For
logistic regression and gradient boosting trained on the same data, every chunk of
production is estimated by our monitor's code and by CBPE (in its own venv, fitted on the
same test set), and compared with the ROC AUC its labels realize:

- `mae_*`: mean absolute error of the estimate against the realized AUC, over all chunks;
- `alarm_recall_*`: share of degraded chunks that raised an alarm; a chunk is degraded when
  its shift strength lowers the population's AUC (100,000 rows) by at least DEGRADED;
- `false_alarms_*`: alarms on chunks whose strength lowers it by less than HEALTHY
  (strengths in between are neither: either answer is defensible there).

Ours alarms when the estimated gap reaches its limit from the test set's variability
(`EstimatedGapRatio >= 1`); CBPE when its estimate leaves its reference band.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlops.datagen.churn import generate_churn
from mlops.model.spec import Estimator, EstimatorKind, load_spec
from mlops.model.training import TrainingResult, feature_frame, train_model
from mlops.monitoring.performance import estimate_performance
from mlops.monitoring.window import ScoreGrid
from sklearn import metrics as skm

ROOT = Path(__file__).resolve().parent
SPEC = ROOT.parent / "functions" / "mlops" / "examples" / "churn" / "spec.toml"
NANNYML_VENV = ROOT / ".venv-nannyml"
NANNYML_PACKAGES = ["nannyml", "statsmodels", "pyarrow"]
# NannyML reports usage to a third party unless told not to.
NANNYML_ENV = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
SHIFT_FEATURES = ("tenure_months",)
STRENGTHS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
MODELS = (EstimatorKind.LOGISTIC_REGRESSION, EstimatorKind.GRADIENT_BOOSTING)
DEGRADED = 0.02
HEALTHY = 0.01
METRIC = "roc_auc"


def ensure_nannyml() -> Path | None:
    python = NANNYML_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(NANNYML_VENV)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import nannyml, pyarrow"], capture_output=True, env=NANNYML_ENV
    )
    if probe.returncode != 0:
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *NANNYML_PACKAGES],
            capture_output=True,
            text=True,
        )
        if install.returncode != 0:
            print(f"nannyml could not be installed: {install.stderr[-500:]}", file=sys.stderr)
            return None
    return python


def run_nannyml(
    python: Path, y_ref: np.ndarray, p_ref: np.ndarray, chunks: list[np.ndarray], chunk_rows: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        ref_path, analysis_path = Path(tmp) / "reference.parquet", Path(tmp) / "analysis.parquet"
        pd.DataFrame(
            {"y_true": y_ref, "y_pred_proba": p_ref, "y_pred": (p_ref >= 0.5).astype(int)}
        ).to_parquet(ref_path)
        p = np.concatenate(chunks)
        pd.DataFrame({"y_pred_proba": p, "y_pred": (p >= 0.5).astype(int)}).to_parquet(analysis_path)
        out = subprocess.run(
            [
                str(python),
                str(ROOT / "nannyml_cbpe.py"),
                str(ref_path),
                str(analysis_path),
                str(chunk_rows),
                METRIC,
            ],
            capture_output=True,
            text=True,
            env=NANNYML_ENV,
        )
    if out.returncode != 0:
        raise RuntimeError(f"nannyml run failed: {out.stderr[-1000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def scores(result: TrainingResult, data: pd.DataFrame) -> np.ndarray:
    return np.asarray(result.pipeline.predict_proba(feature_frame(data, result.spec))[:, 1])


def shifted(rows: int, seed: int, strength: float) -> pd.DataFrame:
    return generate_churn(rows, seed=seed, covariate_shift=-strength, shift_features=SHIFT_FEATURES)


def bench_model(kind: EstimatorKind, args: argparse.Namespace, nannyml: Path | None) -> dict[str, Any]:
    spec = load_spec(SPEC)
    spec = spec.model_copy(update={"estimator": Estimator(kind=kind)})
    base = 100_000 * args.seed
    result = train_model(
        generate_churn(args.train_rows, seed=base + 11),
        spec,
        test_data=generate_churn(args.reference_rows, seed=base + 12),
    )
    population = {s: shifted(args.population_rows, base + 500 + i, s) for i, s in enumerate(STRENGTHS)}
    population_auc = {s: skm.roc_auc_score(d["churned"], scores(result, d)) for s, d in population.items()}
    chunk_scores, realized, ours, ours_alarm, truth = [], [], [], [], []
    for i, strength in enumerate(STRENGTHS):
        drop = population_auc[0.0] - population_auc[strength]
        state = "degraded" if drop >= DEGRADED else "healthy" if drop < HEALTHY else "between"
        for j in range(args.chunks):
            data = shifted(args.chunk_rows, base + 10_000 + 100 * i + j, strength)
            p = scores(result, data)
            estimate = estimate_performance(
                ScoreGrid.of(p), METRIC, result.test_metrics, 100, result.profile.estimation
            )
            assert estimate.value is not None and estimate.gap_ratio is not None
            chunk_scores.append(p)
            realized.append(skm.roc_auc_score(data["churned"], p))
            ours.append(estimate.value)
            ours_alarm.append(estimate.gap_ratio >= 1)
            truth.append(state)
    figures: dict[str, Any] = {"model": kind.value}
    state_arr = np.asarray(truth)
    degraded, healthy = state_arr == "degraded", state_arr == "healthy"
    real = np.asarray(realized)

    def summarise(name: str, estimates: list[float], alarms: list[bool]) -> None:
        alarm = np.asarray(alarms, dtype=bool)
        figures[f"mae_{name}"] = round(float(np.mean(np.abs(np.asarray(estimates) - real))), 4)
        figures[f"alarm_recall_{name}"] = round(float(alarm[degraded].mean()), 3) if degraded.any() else None
        figures[f"false_alarms_{name}"] = int(alarm[healthy].sum())

    summarise("ours", ours, ours_alarm)
    if nannyml is not None:
        cbpe = run_nannyml(nannyml, result.test_labels, result.test_scores, chunk_scores, args.chunk_rows)
        summarise("nannyml", cbpe["estimated"], cbpe["alert"])
    figures.update(
        chunks=len(real),
        degraded_chunks=int(degraded.sum()),
        healthy_chunks=int(healthy.sum()),
        chunk_rows=args.chunk_rows,
        reference_rows=result.test_rows,
        population_auc_drop={str(s): round(population_auc[0.0] - population_auc[s], 4) for s in STRENGTHS},
        test_set_error_ours=round(
            float(
                estimate_performance(
                    ScoreGrid.of(result.test_scores),
                    METRIC,
                    result.test_metrics,
                    100,
                    result.profile.estimation,
                ).value
                or 0.0
            )
            - float(result.test_metrics[METRIC] or 0.0),
            4,
        ),
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--reference-rows", type=int, default=20_000, help="test set: calibration and bands")
    parser.add_argument("--chunk-rows", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=8, help="chunks per shift strength")
    parser.add_argument("--population-rows", type=int, default=100_000)
    parser.add_argument(
        "--seed", type=int, default=0, help="another draw of every data set (0: the figures in the README)"
    )
    parser.add_argument("--no-nannyml", action="store_true")
    parser.add_argument("--json", action="store_true", help="one JSON object per model, then the totals")
    args = parser.parse_args(argv)
    nannyml = None if args.no_nannyml else ensure_nannyml()
    rows = [bench_model(kind, args, nannyml) for kind in MODELS]
    keys = [k for k in rows[0] if k.startswith(("mae_", "alarm_recall_", "false_alarms_"))]
    total: dict[str, Any] = {"model": "all"}
    for key in keys:
        values = [r[key] for r in rows if r.get(key) is not None]
        if key.startswith("false_alarms_"):
            total[key] = int(sum(values))
        elif key.startswith("mae_"):
            total[key] = round(float(np.mean(values)), 4)
        else:
            weights = [r["degraded_chunks"] for r in rows if r.get(key) is not None]
            total[key] = round(float(np.average(values, weights=weights)), 3) if sum(weights) else None
    for row in [*rows, total]:
        if args.json:
            print(json.dumps(row))
        else:
            print("  ".join(f"{k}={v}" for k, v in row.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
