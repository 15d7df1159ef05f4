"""The model registry: versions, the champion pointer and its history, on one DynamoDB table.

Items of a model share the partition ``MODEL#<name>``:

- ``COUNTER``: the last version number handed out (atomic ADD: monotonic, race-free);
- ``VERSION#<v:06d>``: one version (status, metrics, artifact refs, lineage, gate report);
- ``CHAMPION``: the serving version, since when, and a revision number;
- ``HISTORY#<revision:010d>``: each promotion or rollback (from, to, at, actor, reason);
- ``LOCK#<name>``: short-lived locks (one retraining run at a time);
- ``CONDITION#retraining``: whether retraining is wanted (an alarm episode), its attempts, a pause.

A promotion is one transaction that moves the pointer only if its revision is the one
read before, writes the history row and marks the version promoted: two concurrent
promotions cannot both win, and the history never skips a change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from mlops.cloud.storage import aws_call, error_code, iso, parse_time, utcnow
from mlops.model.bundle import ArtifactRef
from mlops.shared.errors import ConflictError, NotFoundError, StorageError, ValidationFailed

# Version sort keys are zero-padded to this many digits, so no version has more.
VERSION_DIGITS = 6
# A reason is a sentence for the audit trail; the bound keeps each history row far below
# DynamoDB's 400 KB item limit, which would otherwise refuse the change as a storage error.
MAX_REASON_LENGTH = 1000


class VersionStatus(StrEnum):
    REGISTERED = "registered"
    APPROVED = "approved"
    REJECTED = "rejected"
    PROMOTED = "promoted"
    FAILED = "failed"


class Action(StrEnum):
    PROMOTE = "promote"
    ROLLBACK = "rollback"


class VersionRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str
    version: int
    status: VersionStatus
    created_at: str
    primary_metric: str
    test_metrics: dict[str, float | None]
    artifacts: dict[str, ArtifactRef]
    trigger: str = "manual"
    parent_version: int | None = None
    training_rows: int | None = None
    training_data_sha256: str | None = None
    code_version: str | None = None
    gate_report: dict[str, Any] | None = None
    status_reason: str | None = None
    # The primary metric's reference value with its rows, standard error and interval.
    reference_metric: dict[str, Any] | None = None


class Champion(BaseModel):
    version: int
    since: str
    revision: int


class HistoryEntry(BaseModel):
    model_config = ConfigDict(defer_build=True)  # the predict path never reads one

    revision: int
    action: Action
    from_version: int | None
    to_version: int
    at: str
    actor: str
    reason: str


# A check of a version before it becomes the champion (`mlops.model.admin.servable_check`).
VersionCheck = Callable[["VersionRecord"], None]


class RetrainLock(BaseModel):
    model_config = ConfigDict(defer_build=True)  # the predict path never reads one

    owner: str
    acquired_at: str
    expires_at: str
    last_finished_at: str | None = None


def _to_dynamo(value: Any) -> Any:
    """JSON-compatible value -> DynamoDB attribute value (numbers as strings, no float loss)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, dict):
        return {"M": {k: _to_dynamo(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [_to_dynamo(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def _from_dynamo(attr: dict[str, Any]) -> Any:
    ((kind, value),) = attr.items()
    if kind == "NULL":
        return None
    if kind == "N":
        number = float(value)
        return (
            int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
        )
    if kind == "M":
        return {k: _from_dynamo(v) for k, v in value.items()}
    if kind == "L":
        return [_from_dynamo(v) for v in value]
    return value


def _item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _to_dynamo(v) for k, v in data.items()}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(v) for k, v in item.items() if k not in ("pk", "sk")}


class Registry:
    """Registry of one model. Clients are passed in; `clock` makes time testable."""

    def __init__(
        self, dynamodb: Any, table: str, model_name: str, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = dynamodb
        self.table = table
        self.model_name = model_name
        self.clock = clock
        self.pk = f"MODEL#{model_name}"

    def _key(self, sk: str) -> dict[str, Any]:
        return {"pk": {"S": self.pk}, "sk": {"S": sk}}

    @staticmethod
    def _version_sk(version: int) -> str:
        return f"VERSION#{version:06d}"

    # -- versions -------------------------------------------------------------------

    def next_version(self) -> int:
        """Hand out the next version number; concurrent callers never get the same one."""
        with aws_call(f"allocate a version of {self.model_name} in {self.table}"):
            out = self.db.update_item(
                TableName=self.table,
                Key=self._key("COUNTER"),
                UpdateExpression="ADD last_version :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
        return int(out["Attributes"]["last_version"]["N"])

    def put_version(self, record: VersionRecord) -> None:
        data = json.loads(record.model_dump_json())
        item = {**self._key(self._version_sk(record.version)), **_item(data)}
        try:
            self.db.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                raise ConflictError(
                    f"version {record.version} of {self.model_name} is already registered"
                ) from err
            raise StorageError(f"register version {record.version} of {self.model_name}: {err}") from err

    def get_version(self, version: int) -> VersionRecord:
        with aws_call(f"read version {version} of {self.model_name}"):
            out = self.db.get_item(
                TableName=self.table, Key=self._key(self._version_sk(version)), ConsistentRead=True
            )
        if "Item" not in out:
            raise NotFoundError(f"{self.model_name} has no version {version}")
        return VersionRecord.model_validate(_plain(out["Item"]))

    def _query(self, prefix: str, descending: bool = False) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": self.pk}, ":prefix": {"S": prefix}},
            "ConsistentRead": True,
            "ScanIndexForward": not descending,
        }
        with aws_call(f"query {prefix} of {self.model_name}"):
            while True:
                out = self.db.query(**kwargs)
                items.extend(out.get("Items", []))
                if "LastEvaluatedKey" not in out:
                    return items
                kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def list_versions(self) -> list[VersionRecord]:
        return [VersionRecord.model_validate(_plain(i)) for i in self._query("VERSION#")]

    def set_status(
        self,
        version: int,
        status: VersionStatus,
        reason: str | None = None,
        gate_report: dict[str, Any] | None = None,
    ) -> None:
        names = {"#s": "status", "#r": "status_reason"}
        values: dict[str, Any] = {":s": {"S": status.value}, ":r": _to_dynamo(reason)}
        update = "SET #s = :s, #r = :r"
        if gate_report is not None:
            names["#g"] = "gate_report"
            values[":g"] = _to_dynamo(json.loads(json.dumps(gate_report, default=str)))
            update += ", #g = :g"
        try:
            self.db.update_item(
                TableName=self.table,
                Key=self._key(self._version_sk(version)),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                raise NotFoundError(f"{self.model_name} has no version {version}") from err
            raise StorageError(f"set the status of version {version}: {err}") from err

    # -- champion and history -----------------------------------------------------------

    def champion(self) -> Champion | None:
        with aws_call(f"read the champion of {self.model_name}"):
            out = self.db.get_item(TableName=self.table, Key=self._key("CHAMPION"), ConsistentRead=True)
        return Champion.model_validate(_plain(out["Item"])) if "Item" in out else None

    def history(self) -> list[HistoryEntry]:
        return [HistoryEntry.model_validate(_plain(i)) for i in self._query("HISTORY#")]

    def served_at(self, at: datetime) -> HistoryEntry | None:
        """The promotion or rollback that made the version serving at time `at` champion."""
        current = None
        for entry in self.history():
            if parse_time(entry.at) <= at:
                current = entry
            else:
                break
        return current

    def promote(
        self, version: int, actor: str, reason: str, verify: VersionCheck | None = None
    ) -> HistoryEntry:
        """Make `version` the champion; `verify(record)` runs first and may refuse it by raising."""
        record = self.get_version(version)
        if record.status in (VersionStatus.REJECTED, VersionStatus.FAILED):
            raise ConflictError(f"version {version} is {record.status.value}; it cannot be promoted")
        current = self.champion()
        if current is not None and current.version == version:
            raise ConflictError(f"version {version} is already the champion")
        if verify is not None:
            verify(record)
        return self._move_champion(current, version, Action.PROMOTE, actor, reason)

    def rollback(self, actor: str, reason: str, verify: VersionCheck | None = None) -> HistoryEntry:
        """Return to the version that served before the current champion (`verify` as in `promote`)."""
        current = self.champion()
        if current is None:
            raise NotFoundError(f"{self.model_name} has no champion to roll back")
        history = self.history()
        last = next((h for h in reversed(history) if h.revision == current.revision), None)
        if last is None or last.from_version is None:
            raise ConflictError(
                f"version {current.version} is the first champion; there is nothing to roll back to"
            )
        if verify is not None:
            verify(self.get_version(last.from_version))
        return self._move_champion(current, last.from_version, Action.ROLLBACK, actor, reason)

    def _move_champion(
        self, current: Champion | None, version: int, action: Action, actor: str, reason: str
    ) -> HistoryEntry:
        if not reason.strip() or len(reason) > MAX_REASON_LENGTH:
            problem = f"send 1 to {MAX_REASON_LENGTH} characters, not only spaces (got {len(reason)})"
            raise ValidationFailed(
                f"reason: {problem}", [{"row": None, "field": "reason", "problem": problem}]
            )
        now = iso(self.clock())
        revision = (current.revision if current else 0) + 1
        entry = HistoryEntry(
            revision=revision,
            action=action,
            from_version=current.version if current else None,
            to_version=version,
            at=now,
            actor=actor,
            reason=reason,
        )
        if current is None:
            pointer_condition = "attribute_not_exists(pk)"
            pointer_values: dict[str, Any] = {}
        else:
            pointer_condition = "revision = :expected"
            pointer_values = {":expected": {"N": str(current.revision)}}
        transact = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {
                        **self._key("CHAMPION"),
                        **_item({"version": version, "since": now, "revision": revision}),
                    },
                    "ConditionExpression": pointer_condition,
                    **({"ExpressionAttributeValues": pointer_values} if pointer_values else {}),
                }
            },
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {
                        **self._key(f"HISTORY#{revision:010d}"),
                        **_item(entry.model_dump(mode="json")),
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": self._key(self._version_sk(version)),
                    "UpdateExpression": "SET #s = :promoted",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":promoted": {"S": VersionStatus.PROMOTED.value}},
                }
            },
        ]
        try:
            self.db.transact_write_items(TransactItems=transact)
        except ClientError as err:
            if error_code(err) in (
                "TransactionCanceledException",
                "ConditionalCheckFailedException",
            ):
                raise ConflictError(
                    f"the champion of {self.model_name} changed while {action.value} to v{version} ran; "
                    "read it again and retry"
                ) from err
            raise StorageError(f"{action.value} {self.model_name} to v{version}: {err}") from err
        return entry

    # -- retraining runs ----------------------------------------------------------------

    def record_run(self, run: dict[str, Any]) -> None:
        """Keep the outcome of a retraining run (skipped, failed, rejected, approved, promoted)."""
        started = str(run.get("started_at") or iso(self.clock()))
        item = {
            **self._key(f"RUN#{started}#{run.get('run_id', '')}"),
            **_item(json.loads(json.dumps(run, default=str))),
        }
        with aws_call(f"record a retraining run of {self.model_name}"):
            self.db.put_item(TableName=self.table, Item=item)

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        return [_plain(i) for i in self._query("RUN#", descending=True)[:limit]]

    # -- the retraining condition ----------------------------------------------------------

    def retraining_condition(self) -> dict[str, Any] | None:
        """The stored retraining condition (see `mlops.retraining.persistence`), or None."""
        with aws_call(f"read the retraining condition of {self.model_name}"):
            out = self.db.get_item(
                TableName=self.table, Key=self._key("CONDITION#retraining"), ConsistentRead=True
            )
        return _plain(out["Item"]) if "Item" in out else None

    def put_retraining_condition(self, data: dict[str, Any], expected_revision: int | None) -> None:
        """Write the condition if nobody changed it since it was read (revision `expected_revision`,
        None: it did not exist); ConflictError otherwise."""
        item = {**self._key("CONDITION#retraining"), **_item(json.loads(json.dumps(data, default=str)))}
        kwargs: dict[str, Any] = {"TableName": self.table, "Item": item}
        if expected_revision is None:
            kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            kwargs["ConditionExpression"] = "revision = :expected"
            kwargs["ExpressionAttributeValues"] = {":expected": {"N": str(expected_revision)}}
        try:
            self.db.put_item(**kwargs)
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                raise ConflictError("the retraining condition changed while it was updated") from err
            raise StorageError(f"write the retraining condition: {err}") from err

    # -- locks -------------------------------------------------------------------------

    def lock_state(self, name: str) -> RetrainLock | None:
        with aws_call(f"read lock {name}"):
            out = self.db.get_item(TableName=self.table, Key=self._key(f"LOCK#{name}"), ConsistentRead=True)
        return RetrainLock.model_validate(_plain(out["Item"])) if "Item" in out else None

    def acquire_lock(self, name: str, owner: str, ttl: timedelta, cooldown: timedelta) -> RetrainLock:
        """Take a named lock unless it is held and unexpired, or was released less than `cooldown` ago.

        Raises ConflictError saying why when the lock cannot be taken.
        """
        now = self.clock()
        key = self._key(f"LOCK#{name}")
        with aws_call(f"read lock {name}"):
            out = self.db.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        existing = RetrainLock.model_validate(_plain(out["Item"])) if "Item" in out else None
        if existing is not None:
            if parse_time(existing.expires_at) > now:
                raise ConflictError(
                    f"{name} is running (held by {existing.owner} since {existing.acquired_at})"
                )
            if existing.last_finished_at and parse_time(existing.last_finished_at) + cooldown > now:
                raise ConflictError(
                    f"{name} cooldown: last run finished at {existing.last_finished_at}, "
                    f"next allowed after {iso(parse_time(existing.last_finished_at) + cooldown)}"
                )
        lock = RetrainLock(
            owner=owner,
            acquired_at=iso(now),
            expires_at=iso(now + ttl),
            last_finished_at=existing.last_finished_at if existing else None,
        )
        condition = "attribute_not_exists(pk)" if existing is None else "acquired_at = :seen"
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Item": {**key, **_item(lock.model_dump())},
            "ConditionExpression": condition,
        }
        if existing is not None:
            kwargs["ExpressionAttributeValues"] = {":seen": {"S": existing.acquired_at}}
        try:
            self.db.put_item(**kwargs)
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                raise ConflictError(f"{name} was taken by another run just now") from err
            raise StorageError(f"take lock {name}: {err}") from err
        return lock

    def release_lock(self, name: str, owner: str) -> None:
        now = iso(self.clock())
        try:
            self.db.update_item(
                TableName=self.table,
                Key=self._key(f"LOCK#{name}"),
                UpdateExpression="SET expires_at = :now, last_finished_at = :now",
                ConditionExpression="#o = :owner",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":now": {"S": now}, ":owner": {"S": owner}},
            )
        except ClientError as err:
            if error_code(err) != "ConditionalCheckFailedException":
                raise StorageError(f"release lock {name}: {err}") from err
