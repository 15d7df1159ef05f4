"""Registry on DynamoDB + bundles on S3 (moto): versions, champion, history, integrity, races."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from mlops.cloud.registry import Action, Registry, VersionStatus
from mlops.model import bundle
from mlops.model.registration import TrainingData, register_model
from mlops.shared.errors import ConflictError, IntegrityError, NotFoundError

from tests.integration.racing import RacingStore, race


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def _register(stack, trained, registry):
    return register_model(trained, registry, stack.s3, stack.artifact_bucket, TrainingData("ab" * 32, 4000))


def test_register_promote_rollback_and_history_at_time(aws_stack, trained):
    clock = Clock(datetime(2026, 11, 1, 9, 0, tzinfo=UTC))
    registry = Registry(aws_stack.dynamodb, aws_stack.env["MLOPS_REGISTRY_TABLE"], "churn", clock=clock)
    v1 = _register(aws_stack, trained, registry)
    v2 = _register(aws_stack, trained, registry)
    assert (v1.version, v2.version) == (1, 2)
    assert registry.champion() is None

    registry.promote(1, actor="alice", reason="first model")
    clock.advance(days=2)
    registry.promote(2, actor="bob", reason="retrained")
    clock.advance(days=1)
    rollback = registry.rollback(actor="carol", reason="v2 misbehaves")

    assert rollback.action is Action.ROLLBACK and (rollback.from_version, rollback.to_version) == (2, 1)
    assert registry.champion().version == 1
    assert [(h.from_version, h.to_version, h.actor) for h in registry.history()] == [
        (None, 1, "alice"),
        (1, 2, "bob"),
        (2, 1, "carol"),
    ]
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    assert registry.served_at(start - timedelta(seconds=1)) is None
    assert registry.served_at(start + timedelta(hours=1)).to_version == 1
    assert registry.served_at(start + timedelta(days=2, hours=1)).to_version == 2
    assert registry.served_at(start + timedelta(days=5)).to_version == 1
    assert registry.get_version(2).status is VersionStatus.PROMOTED


def test_bundle_verifies_and_tampering_is_detected(aws_stack, trained):
    registry = aws_stack.registry()
    record = _register(aws_stack, trained, registry)
    bundle.verify_bundle(aws_stack.s3, aws_stack.artifact_bucket, record.artifacts)
    ref = record.artifacts[bundle.MODEL_ONNX]
    aws_stack.s3.put_object(Bucket=aws_stack.artifact_bucket, Key=ref.key, Body=b"not the model")
    with pytest.raises(IntegrityError, match="does not match the registry"):
        bundle.read_artifact(aws_stack.s3, aws_stack.artifact_bucket, ref)


def test_bundles_are_immutable_and_complete(aws_stack, trained):
    record = _register(aws_stack, trained, aws_stack.registry())
    assert set(record.artifacts) == set(bundle.ARTIFACTS)
    meta = bundle.read_json_artifact(
        aws_stack.s3, aws_stack.artifact_bucket, record.artifacts[bundle.METADATA]
    )
    assert meta["training_data"] == {"sha256": "ab" * 32, "rows": 4000, "uri": None}
    assert meta["version"] == record.version and meta["parity_max_abs_diff"] <= 1e-6
    with pytest.raises(ConflictError, match="immutable"):
        bundle.write_bundle(
            aws_stack.s3,
            aws_stack.artifact_bucket,
            "churn",
            record.version,
            dict.fromkeys(bundle.ARTIFACTS, b"x"),
        )


def test_racing_promotions_that_read_the_same_champion_leave_one_winner_and_a_consistent_history(
    aws_stack, trained
):
    # Given v1 serving and three promotions that all read v1 as champion before any of them writes
    registry = aws_stack.registry()
    versions = [_register(aws_stack, trained, registry).version for _ in range(4)]
    registry.promote(versions[0], actor="setup", reason="start")
    store = RacingStore(aws_stack.dynamodb, racers=3)
    racing = Registry(store, registry.table, registry.model_name)

    # When they race
    outcomes = race([lambda v=v: racing.promote(v, actor=f"t{v}", reason="race") for v in versions[1:]])

    # Then exactly one wins, the others are told the champion changed, and the history has no gap
    wins = [o for o in outcomes if not isinstance(o, Exception)]
    losses = [o for o in outcomes if isinstance(o, Exception)]
    assert len(wins) == 1 and len(losses) == 2
    assert all(isinstance(o, ConflictError) and "changed" in str(o) for o in losses)
    history = registry.history()
    assert [(h.revision, h.from_version, h.to_version) for h in history] == [
        (1, None, versions[0]),
        (2, versions[0], wins[0].to_version),
    ]
    for before, after in itertools.pairwise(history):
        assert after.from_version == before.to_version and after.revision == before.revision + 1
    assert registry.champion().version == wins[0].to_version
    assert registry.get_version(wins[0].to_version).status is VersionStatus.PROMOTED


def test_racing_version_allocations_never_hand_out_a_number_twice(aws_stack):
    # Given eight registrations that all reach the counter together
    registry = aws_stack.registry()
    racing = Registry(RacingStore(aws_stack.dynamodb, racers=8), registry.table, registry.model_name)

    # When each allocates a version number
    got = race([racing.next_version] * 8)

    # Then the numbers are 1..8, each once, and the counter is at 8
    assert sorted(got) == list(range(1, 9))
    assert registry.next_version() == 9


def test_a_read_then_write_counter_fails_under_the_racing_store(aws_stack):
    # The racing store is strict enough to catch the lost update an atomic ADD avoids.
    registry = aws_stack.registry()
    store = RacingStore(aws_stack.dynamodb, racers=4)
    key = {"pk": {"S": "MODEL#naive"}, "sk": {"S": "COUNTER"}}

    def naive_next() -> int:
        item = store.get_item(TableName=registry.table, Key=key, ConsistentRead=True).get("Item")
        number = int(item["last_version"]["N"]) + 1 if item else 1
        store.put_item(TableName=registry.table, Item={**key, "last_version": {"N": str(number)}})
        return number

    got = race([naive_next] * 4)

    assert got == [1, 1, 1, 1]


def test_rules_of_promotion(aws_stack, trained):
    registry = aws_stack.registry()
    with pytest.raises(NotFoundError):
        registry.promote(7, actor="x", reason="no such version")
    with pytest.raises(NotFoundError):
        registry.rollback(actor="x", reason="nothing yet")
    v1 = _register(aws_stack, trained, registry)
    registry.promote(v1.version, actor="x", reason="first")
    with pytest.raises(ConflictError, match="already the champion"):
        registry.promote(v1.version, actor="x", reason="again")
    with pytest.raises(ConflictError, match="nothing to roll back"):
        registry.rollback(actor="x", reason="first champion")
    v2 = _register(aws_stack, trained, registry)
    registry.set_status(v2.version, VersionStatus.REJECTED, reason="gate failed")
    with pytest.raises(ConflictError, match="rejected"):
        registry.promote(v2.version, actor="x", reason="try anyway")
    assert registry.champion().version == v1.version


def test_retrain_lock_blocks_a_second_run_and_enforces_cooldown(aws_stack):
    clock = Clock(datetime(2026, 11, 1, tzinfo=UTC))
    registry = Registry(aws_stack.dynamodb, aws_stack.env["MLOPS_REGISTRY_TABLE"], "churn", clock=clock)
    registry.acquire_lock("retrain", "run-1", ttl=timedelta(minutes=15), cooldown=timedelta(hours=1))
    with pytest.raises(ConflictError, match="is running"):
        registry.acquire_lock("retrain", "run-2", ttl=timedelta(minutes=15), cooldown=timedelta(hours=1))
    clock.advance(minutes=5)
    registry.release_lock("retrain", "run-1")
    clock.advance(minutes=30)
    with pytest.raises(ConflictError, match="cooldown"):
        registry.acquire_lock("retrain", "run-3", ttl=timedelta(minutes=15), cooldown=timedelta(hours=1))
    clock.advance(minutes=31)
    assert registry.acquire_lock("retrain", "run-4", ttl=timedelta(minutes=15), cooldown=timedelta(hours=1))
