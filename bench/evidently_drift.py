"""Time Evidently's DataDriftPreset on reference/current Parquet files; runs in its own venv.

Usage: evidently_drift.py REFERENCE.parquet CURRENT.parquet NUMERIC,COLS CATEGORICAL,COLS
Prints one JSON line: {"evidently_s": ..., "drifted_columns": ...}.
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def main() -> None:
    ref_path, cur_path, numeric, categorical = sys.argv[1:5]
    definition = DataDefinition(
        numerical_columns=numeric.split(","), categorical_columns=categorical.split(",")
    )
    reference = Dataset.from_pandas(pd.read_parquet(ref_path), data_definition=definition)
    current = Dataset.from_pandas(pd.read_parquet(cur_path), data_definition=definition)
    start = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    elapsed = time.perf_counter() - start
    drifted = None
    for metric in snapshot.dict().get("metrics", []):
        value = metric.get("value")
        if (
            isinstance(value, dict)
            and "count" in value
            and "DriftedColumnsCount" in str(metric.get("metric_id", ""))
        ):
            drifted = value["count"]
    print(json.dumps({"evidently_s": round(elapsed, 3), "drifted_columns": drifted}))


if __name__ == "__main__":
    main()
