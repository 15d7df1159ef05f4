"""The Athena query of infrastructure/README.md, run with DuckDB over logs the log writer wrote.

The logs are written by the log-writer handler on moto, copied with their keys unchanged, and read
through the Glue table's columns and partition keys (`mlops.cloud.logstore`), so the query text, the key
layout and the schema are the ones Athena would use together.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import numpy as np
import pytest
from mlops.cloud.logstore import (
    PREDICTION_PARTITION_KEYS,
    PREDICTIONS_PREFIX,
    prediction_columns,
    unique_predictions_sql,
)
from mlops.cloud.storage import list_keys
from mlops.handlers import log_writer as log_writer_handler
from mlops.serving.log_queue import PredictionBatch, send_predictions
from mlops.shared.resources import LOG_BUCKET, PREDICTION_QUEUE

from infrastructure.config import StageConfig
from tests.integration.serving_helpers import CONTEXT, drain_queue, load_event, sqs_event_from

README = Path(__file__).resolve().parents[2] / "infrastructure" / "README.md"
ROW = json.loads(load_event("predict_single.json")["body"])["features"]


def readme_query() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"Analysts can query.*?```sql\n(.*?)```", text, re.DOTALL)
    assert match, "infrastructure/README.md has no Athena query"
    return match.group(1)


def duckdb_type(hive: str) -> str:
    """A Hive column type as DuckDB spells it."""
    hive = hive.strip()
    if hive.startswith("struct<"):
        fields = [f.split(":", 1) for f in hive[len("struct<") : -1].split(",")]
        return "STRUCT(" + ", ".join(f'"{n}" {duckdb_type(t)}' for n, t in fields) + ")"
    if hive.startswith("array<"):
        return duckdb_type(hive[len("array<") : -1]) + "[]"
    return {"string": "VARCHAR", "double": "DOUBLE", "int": "INTEGER", "bigint": "BIGINT"}[hive]


def _log(aws_stack, version: int, day: str, hour: int, probabilities: np.ndarray, tag: str = "r") -> None:
    n = len(probabilities)
    batch = PredictionBatch(
        request_id=f"{tag}-{version}-{day}-{hour}",
        timestamp=f"{day}T{hour:02d}:15:00.000000Z",
        model_name="churn",
        model_version=version,
        prediction_ids=[f"{tag}-{version}-{day}-{hour}-{i}" for i in range(n)],
        probabilities=[float(p) for p in probabilities],
        labels=[int(p >= 0.5) for p in probabilities],
        unseen_categories=[[] for _ in range(n)],
        features=[ROW] * n,
    )
    send_predictions(aws_stack.sqs, aws_stack.env[PREDICTION_QUEUE.env_var], batch)


def test_the_readme_query_counts_what_the_log_writer_wrote(aws_stack, fresh_settings, churn_spec, tmp_path):
    # Given three versions served on days inside and outside the README's week, logged by the writer,
    rng = np.random.default_rng(11)
    expected: dict[str, list[float]] = {"1": [], "2": []}
    for version in (1, 2, 3):
        for day, inside in (
            ("2026-10-31", False),
            ("2026-11-01", True),
            ("2026-11-07", True),
            ("2026-11-08", False),
        ):
            for hour in (0, 13):
                probabilities = rng.random(int(rng.integers(3, 30)))
                _log(aws_stack, version, day, hour, probabilities)
                if inside and str(version) in expected:
                    expected[str(version)].extend(probabilities)
    # and a second request in one of those hours, whose message SQS will deliver twice,
    again = rng.random(7)
    _log(aws_stack, 1, "2026-11-01", 13, again, tag="again")
    expected["1"].extend(again)
    messages = drain_queue(aws_stack)
    answer = log_writer_handler.handler(sqs_event_from(messages), CONTEXT)
    assert answer == {"batchItemFailures": []}
    # the second time alone, so that its records land in a second object of the same hour.
    redelivered = [m for m in messages if "again-" in m["Body"]]
    assert len(redelivered) == 1
    answer = log_writer_handler.handler(sqs_event_from(redelivered), CONTEXT)
    assert answer == {"batchItemFailures": []}
    bucket = aws_stack.env[LOG_BUCKET.env_var]
    for key in list_keys(aws_stack.s3, bucket, PREDICTIONS_PREFIX):
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(aws_stack.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    # when the README's query text runs over the same layout with the Glue table's schema,
    database = StageConfig.from_context({"stage": "dev"}.get).prefix.replace("-", "_")
    columns = {name: duckdb_type(hive) for name, hive, _ in prediction_columns(churn_spec)}
    partitions = {name: duckdb_type(hive) for name, hive, _ in PREDICTION_PARTITION_KEYS}
    con = duckdb.connect()
    con.execute(f'CREATE SCHEMA "{database}"')
    # Athena's "$path" pseudo-column is DuckDB's filename column.
    con.execute(
        f'CREATE VIEW "{database}"."predictions" AS SELECT * EXCLUDE (filename), filename AS "$path" '
        f"FROM read_json('{tmp_path}/{PREDICTIONS_PREFIX}*/*/*/*.jsonl.gz', format='newline_delimited', "
        f"columns={columns!r}, hive_partitioning=true, hive_types={partitions!r}, filename=true)"
    )
    con.execute(
        f'CREATE VIEW "{database}"."predictions_unique" AS '
        + unique_predictions_sql(churn_spec, f'"{database}"."predictions"')
    )
    count = 'SELECT count(*) FROM "{}"."{}"'
    stored = con.execute(count.format(database, "predictions")).fetchone()
    unique = con.execute(count.format(database, "predictions_unique")).fetchone()
    assert stored is not None and unique is not None and stored[0] == unique[0] + len(again)
    rows = con.execute(readme_query()).fetchall()

    # then it counts and averages exactly the named versions' predictions of that week.
    assert [r[0] for r in rows] == ["1", "2"]
    for version, count, mean in rows:
        assert count == len(expected[version])
        assert mean == pytest.approx(float(np.mean(expected[version])), rel=1e-12)


def test_the_prediction_table_has_every_logged_field_once(churn_spec):
    from mlops.cloud.logstore import PredictionRecord

    names = [n for n, _, _ in prediction_columns(churn_spec)] + [n for n, _, _ in PREDICTION_PARTITION_KEYS]
    assert sorted(names) == sorted([*PredictionRecord.model_fields, "dt", "hour"])
