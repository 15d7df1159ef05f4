"""The champion model of a container: loaded once, refreshed by version, never per request.

The registry's champion pointer is read at most every `refresh_seconds`. A new champion
is loaded only if every serving artifact matches its recorded sha256; otherwise it is
refused and the previous model keeps serving, so a bad promotion cannot take the API down.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import ValidationError

from mlops.cloud.registry import Champion, Registry
from mlops.cloud.storage import parse_time
from mlops.model.bundle import MODEL_ONNX, SCHEMA, read_artifact
from mlops.model.inference import load_session, session_numeric_dtype
from mlops.model.kinds import FeatureKind
from mlops.model.schema import FeatureSchema
from mlops.serving.validation import RowValidator
from mlops.shared.errors import MlopsError, UnavailableError


@dataclass(frozen=True)
class ServingModel:
    """Everything a request needs from one model version, prepared once."""

    model_name: str
    version: int
    since: str
    # The earliest event time a client may log against this version (backfill and replay).
    registered_at: datetime
    primary_metric: str
    test_metrics: dict[str, float | None]
    schema: FeatureSchema
    session: Any
    numeric_dtype: type[np.floating[Any]]
    validator: RowValidator
    # (feature, categories seen in training) for every categorical feature that lists them.
    known_categories: tuple[tuple[str, frozenset[str]], ...]

    def unseen_categories_by_row(self, columns: Mapping[str, Sequence[Any]], n: int) -> list[list[str]]:
        """Per row, the features whose category the model never saw in training (served, but
        flagged), from the request's columns."""
        unseen: list[list[str]] = [[] for _ in range(n)]
        for name, known in self.known_categories:
            column = columns[name]
            novel = set(column) - known - {None, ""}
            if novel:
                for i, v in enumerate(column):
                    if v in novel:
                        unseen[i].append(name)
        return unseen


def load_serving_model(registry: Registry, s3: Any, bucket: str, champion: Champion) -> ServingModel:
    """Read and verify the serving artifacts of the champion version and build its session.

    Raises IntegrityError when an artifact's sha256 differs from the registry's record.
    """
    record = registry.get_version(champion.version)
    missing = [a for a in (MODEL_ONNX, SCHEMA) if a not in record.artifacts]
    if missing:
        raise UnavailableError(f"version {champion.version} has no {', '.join(missing)} artifact")
    onnx_bytes = read_artifact(s3, bucket, record.artifacts[MODEL_ONNX])
    schema = FeatureSchema.model_validate_json(read_artifact(s3, bucket, record.artifacts[SCHEMA]))
    session = load_session(onnx_bytes)
    return ServingModel(
        model_name=record.model_name,
        version=record.version,
        since=champion.since,
        registered_at=parse_time(record.created_at),
        primary_metric=record.primary_metric,
        test_metrics=dict(record.test_metrics),
        schema=schema,
        session=session,
        numeric_dtype=session_numeric_dtype(session),
        validator=RowValidator(schema),
        known_categories=tuple(
            (f.name, frozenset(f.categories))
            for f in schema.features
            if f.kind is FeatureKind.CATEGORICAL and f.categories
        ),
    )


LoadFailureHook = Callable[[int, Exception], None]
ModelLoader = Callable[[Champion], ServingModel]


class ChampionCache:
    """Holds the serving model; `current()` is what every request calls.

    `clock` (monotonic seconds) and `refresh_seconds` are injectable so a test can move
    time instead of sleeping. `on_load_failure(version, error)` is told about every
    refused champion (the handler logs it and emits a metric).
    """

    def __init__(
        self,
        registry: Registry,
        loader: ModelLoader,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_load_failure: LoadFailureHook | None = None,
    ) -> None:
        self.registry = registry
        self.loader = loader
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self.on_load_failure = on_load_failure
        self._model: ServingModel | None = None
        self._next_check = float("-inf")

    @property
    def model(self) -> ServingModel | None:
        return self._model

    def current(self) -> ServingModel:
        model = self._model
        now = self.clock()
        if model is not None and now < self._next_check:
            return model
        self._next_check = now + self.refresh_seconds
        return self._refresh(model)

    def _refresh(self, model: ServingModel | None) -> ServingModel:
        try:
            pointer = self.registry.champion()
        except MlopsError as err:
            # The registry being unreachable for a moment is no reason to stop serving.
            if model is not None:
                return model
            raise UnavailableError(f"cannot read the champion of {self.registry.model_name}: {err}") from err
        if pointer is None:
            if model is not None:
                return model
            raise UnavailableError(f"{self.registry.model_name} has no champion yet; promote a version first")
        if model is not None and pointer.version == model.version:
            return model
        try:
            loaded = self.loader(pointer)
        except (MlopsError, ValidationError) as err:
            if self.on_load_failure is not None:
                self.on_load_failure(pointer.version, err)
            if model is not None:
                return model
            raise UnavailableError(f"champion v{pointer.version} cannot be loaded: {err}") from err
        self._model = loaded
        return loaded
