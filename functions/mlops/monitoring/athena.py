"""The hour profile query run by Athena over the Glue table (the monitor on AWS, for big hours).

The same SQL as the embedded engine (`mlops.monitoring.engine.hour_profile_sql`), over the
`predictions_unique` view the stack defines, in the stack's workgroup (which holds the results
location, its encryption and a scan limit). The only module that calls Athena.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from mlops.cloud.logstore import FEEDBACK_TABLE, UNIQUE_PREDICTIONS_VIEW
from mlops.cloud.storage import aws_call, get_bytes
from mlops.model.spec import ModelSpec
from mlops.monitoring.engine import (
    hour_label_range,
    hour_profile_sql,
    hour_rows_sql,
    joined_labels,
    label_join_sql,
    partial_from_rows,
)
from mlops.monitoring.partials import HourEngine, HourPartial, HourRows, Manifest
from mlops.monitoring.profile import ReferenceProfile
from mlops.shared.errors import StorageError
from mlops.shared.settings import MonitorSettings

# Athena answers a profile query in seconds; the function's own timeout bounds the rest.
POLL_SECONDS = 0.5
MAX_WAIT_SECONDS = 240.0
DONE = ("SUCCEEDED", "FAILED", "CANCELLED")


def start_and_wait(
    athena: Any,
    sql: str,
    workgroup: str,
    database: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Start a query in the workgroup and wait until it succeeded; returns its id."""
    with aws_call(f"start an Athena query in workgroup {workgroup}"):
        started = athena.start_query_execution(
            QueryString=sql, WorkGroup=workgroup, QueryExecutionContext={"Database": database}
        )
    query_id = started["QueryExecutionId"]
    waited = 0.0
    while True:
        with aws_call(f"Athena query {query_id}"):
            status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        if status["State"] in DONE:
            break
        if waited >= MAX_WAIT_SECONDS:
            with aws_call(f"stop Athena query {query_id}"):
                athena.stop_query_execution(QueryExecutionId=query_id)
            raise StorageError(f"Athena query {query_id} did not finish in {MAX_WAIT_SECONDS:.0f} s")
        sleep(POLL_SECONDS)
        waited += POLL_SECONDS
    if status["State"] != "SUCCEEDED":
        raise StorageError(
            f"Athena query {query_id} {status['State'].lower()}: {status.get('StateChangeReason', '')}"
        )
    return query_id


def run_query(athena: Any, sql: str, workgroup: str, database: str) -> Iterator[list[str | None]]:
    """Rows of a small query's answer as text (None for NULL), the header row left out."""
    query_id = start_and_wait(athena, sql, workgroup, database)
    first = True
    with aws_call(f"read the answer of Athena query {query_id}"):
        for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
            for row in page["ResultSet"]["Rows"]:
                if first:
                    first = False  # the column names
                    continue
                yield [cell.get("VarCharValue") for cell in row["Data"]]


def answer_location(athena: Any, query_id: str) -> tuple[str, str]:
    """Bucket and key of the CSV Athena wrote a finished query's answer to."""
    with aws_call(f"Athena query {query_id}"):
        done = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
    bucket, _, key = done["ResultConfiguration"]["OutputLocation"].removeprefix("s3://").partition("/")
    return bucket, key


def read_answer_csv(s3: Any, athena: Any, query_id: str) -> Iterator[list[str | None]]:
    """A big answer in one GET of its CSV instead of a page per 1,000 rows; empty fields are NULL."""
    bucket, key = answer_location(athena, query_id)
    # Decoded as it is read: an hour's rows are some 150 MB of CSV, which a StringIO would hold as
    # four bytes a character.
    reader = csv.reader(
        io.TextIOWrapper(io.BytesIO(get_bytes(s3, bucket, key)), encoding="utf-8", newline="")
    )
    next(reader, None)  # the column names
    for row in reader:
        yield [v if v != "" else None for v in row]


def _typed(row: Sequence[str | None]) -> tuple[Any, ...]:
    kind, name, bin_, cat, n, s, s2, mn, mx = row

    def num(v: str | None) -> float | None:
        return None if v is None else float(v)

    return (
        kind,
        name,
        None if bin_ is None else int(bin_),
        cat,
        int(n or 0),
        num(s),
        num(s2),
        num(mn),
        num(mx),
    )


def _hour_rows(answer: Iterable[Sequence[str | None]], sensitive: Sequence[str]) -> HourRows:
    """The rows query's answer as columns, read row by row: a full hour is 3.6 million rows, which as
    lists of strings would take about 1 GB more. A sensitive value is one string however many rows
    hold it."""
    ids: list[str] = []
    probability: list[float] = []
    columns: list[list[Any]] = [[] for _ in sensitive]
    seen: dict[str | None, str | None] = {}
    for row in answer:
        ids.append(str(row[0]))
        probability.append(float(row[1] or "nan"))
        for i, column in enumerate(columns):
            column.append(seen.setdefault(row[2 + i], row[2 + i]))
    return HourRows(
        prediction_ids=ids, probability=probability, groups=dict(zip(sensitive, columns, strict=True))
    )


def athena_hour_engine(
    spec: ModelSpec,
    settings: MonitorSettings,
    athena: Any,
    labels_between: tuple[datetime, datetime] | None = None,
) -> HourEngine:
    if not settings.athena_workgroup or not settings.glue_database:
        raise ValueError("the athena scan engine needs the Athena workgroup and the Glue database")
    workgroup, database = settings.athena_workgroup, settings.glue_database
    relation = f'"{database}"."{UNIQUE_PREDICTIONS_VIEW}"'

    def run(
        s3: Any,
        bucket: str,
        reference: ReferenceProfile,
        sensitive: Sequence[str],
        numeric: Sequence[str],
        categorical: Sequence[str],
        version: int,
        hour: datetime,
        covers: Manifest,
        lo: str | None,
        hi: str | None,
    ) -> tuple[HourPartial, HourRows]:
        sql = hour_profile_sql(spec, reference, relation, version, hour, lo, hi)
        answer = [_typed(r) for r in run_query(athena, sql, workgroup, database)]
        partial = partial_from_rows(answer, reference, version, hour, covers, "athena")
        rows_query = start_and_wait(
            athena, hour_rows_sql(spec, relation, version, hour, lo, hi), workgroup, database
        )
        rows = _hour_rows(read_answer_csv(s3, athena, rows_query), sensitive)
        if labels_between is not None:
            feedback = f'"{database}"."{FEEDBACK_TABLE}"'
            join_sql = label_join_sql(
                relation, feedback, version, hour, lo, hi, *hour_label_range(labels_between, hour)
            )
            # An hour's labels are some 180,000 rows at 1,000 req/s: the CSV in one GET, not 180 pages.
            join_query = start_and_wait(athena, join_sql, workgroup, database)
            rows.joined = joined_labels(read_answer_csv(s3, athena, join_query))
        return partial.model_copy(update={"lo": lo, "hi": hi}), rows

    return run
