"""NannyML's CBPE on reference/analysis Parquet files; runs in its own venv (see bench/estimation.py).

Usage: nannyml_cbpe.py REFERENCE.parquet ANALYSIS.parquet CHUNK_ROWS METRIC
Both files hold `y_pred_proba` and `y_pred` (and `y_true` in the reference); the analysis rows
are the chunks one after another, CHUNK_ROWS each. Prints one JSON line:
{"estimated": [...], "alert": [...], "lower_threshold": ...} with one entry per analysis chunk.
"""

from __future__ import annotations

import json
import sys

import nannyml as nml
import pandas as pd


def main() -> None:
    ref_path, analysis_path, chunk_rows, metric = sys.argv[1:5]
    reference = pd.read_parquet(ref_path)
    analysis = pd.read_parquet(analysis_path)
    estimator = nml.CBPE(
        y_pred_proba="y_pred_proba",
        y_pred="y_pred",
        y_true="y_true",
        problem_type="classification_binary",
        metrics=[metric],
        chunk_size=int(chunk_rows),
    )
    estimator.fit(reference)
    result = estimator.estimate(analysis).filter(period="analysis").to_df()
    print(
        json.dumps(
            {
                "estimated": [float(v) for v in result[(metric, "value")]],
                "alert": [bool(v) for v in result[(metric, "alert")]],
                "lower_threshold": float(result[(metric, "lower_threshold")].iloc[0]),
            }
        )
    )


if __name__ == "__main__":
    main()
