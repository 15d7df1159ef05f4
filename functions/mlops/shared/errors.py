"""Domain exceptions. One place (mlops.handlers.http) maps them to HTTP status codes."""

from __future__ import annotations

from typing import Any


class MlopsError(Exception):
    """Base of every error the domain raises on purpose."""


class SpecError(MlopsError):
    """The model spec file is missing, unreadable or invalid."""


class DataError(MlopsError):
    """Training or evaluation data cannot be used (missing columns, too few rows, ...)."""


class ExportError(MlopsError):
    """The fitted pipeline could not be exported to ONNX, or the export disagrees with sklearn."""


class IntegrityError(MlopsError):
    """An artifact's bytes do not match the sha256 recorded in the registry."""


class UnsupportedProfileFormat(MlopsError):
    """A stored reference profile is of a format this code does not read."""


class StorageError(MlopsError):
    """An AWS call failed; the message says which resource and what was attempted."""


class NotFoundError(MlopsError):
    """A model version, champion or other record does not exist."""


class ConflictError(MlopsError):
    """A conditional write lost a race or the requested transition is not allowed."""


class UnavailableError(MlopsError):
    """A dependency the request needs (the champion model, a queue) is not available right now."""


class RetrainFailed(MlopsError):
    """A retraining run ended FAILED (recorded, registry and champion unchanged). The retrain
    function raises it so Lambda counts an error and the asynchronous failure path gets the event."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(f"retraining failed: {result.get('detail')}")
        self.result = result


class ValidationFailed(MlopsError):
    """A request failed validation. `problems` lists every offending row and field."""

    def __init__(self, message: str, problems: list[dict[str, Any]], status: int = 422) -> None:
        super().__init__(message)
        self.problems = problems
        self.status = status
