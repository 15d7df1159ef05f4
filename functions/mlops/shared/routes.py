"""The HTTP API: every route, which function serves it, and whether it is an admin route.

The CDK stack builds API Gateway routes from this table, and both the local gateway and each
function's own dispatcher (`mlops.handlers.http.HttpApi`) match requests with `compile_routes`
and `match` over it, so no two of them can list or match routes differently.
"""

from __future__ import annotations

import re
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


@dataclass(frozen=True)
class CompiledRoute:
    route: Route
    pattern: re.Pattern[str]


def compile_routes(routes: tuple[Route, ...] = ROUTES) -> list[CompiledRoute]:
    compiled = []
    for route in routes:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(route.path))
        compiled.append(CompiledRoute(route, re.compile(f"^{regex}$")))
    # Literal segments win over parameters (GET /models/history before /models/{version}).
    compiled.sort(key=lambda c: c.route.path.count("{"))
    return compiled


def match(routes: list[CompiledRoute], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for c in routes:
        if c.route.method == method and (m := c.pattern.match(path)):
            return c.route, m.groupdict()
    return None
