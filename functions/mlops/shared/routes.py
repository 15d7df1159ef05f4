"""The HTTP API: every route, which function serves it, and whether it is an admin route.

The CDK stack builds API Gateway routes from this table and the local gateway dispatches
with it, so the two cannot list different routes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway route syntax: {name} for a path parameter
    function: str
    admin: bool = False

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


# Function name -> Lambda handler (module path). One Lambda per function.
HANDLERS = {
    "predict": "mlops.handlers.predict.handler",
    "feedback": "mlops.handlers.feedback.handler",
    "admin": "mlops.handlers.admin.handler",
    "log_writer": "mlops.handlers.log_writer.handler",
    "monitor": "mlops.handlers.monitor.handler",
    "retrain": "mlops.handlers.retrain.handler",
}

ROUTES: tuple[Route, ...] = (
    Route("POST", "/predict", "predict"),
    Route("GET", "/model", "predict"),
    Route("GET", "/model/schema", "predict"),
    Route("GET", "/openapi.json", "predict"),
    Route("POST", "/feedback", "feedback"),
    Route("GET", "/models", "admin", admin=True),
    Route("GET", "/models/history", "admin", admin=True),
    Route("GET", "/models/{version}", "admin", admin=True),
    Route("POST", "/models/{version}/promote", "admin", admin=True),
    Route("POST", "/models/rollback", "admin", admin=True),
    Route("POST", "/retrain", "admin", admin=True),
)
