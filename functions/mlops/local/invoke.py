"""Invoke Lambda handlers in-process, as the Lambda runtime would: one warm instance per function,
running one invocation at a time (a handler module's state, such as Powertools' current event,
belongs to the invocation in flight, as it does in a Lambda execution environment)."""

from __future__ import annotations

import importlib
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from mlops.shared.observability import metrics
from mlops.shared.routes import HANDLERS, ROUTES


@dataclass
class LocalLambdaContext:
    """What Powertools reads from the Lambda context object."""

    function_name: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = "local"

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def _cold_start(module: ModuleType) -> None:
    """Forget what an earlier use of a handler module in this process kept (settings, clients, the
    champion), as a new execution environment would: the module is imported once per process."""
    for value in vars(module).values():
        if getattr(value, "__module__", None) == module.__name__ and callable(
            getattr(value, "cache_clear", None)
        ):
            value.cache_clear()
    use_runtime = getattr(module, "use_runtime", None)
    if callable(use_runtime):
        use_runtime(None)


class LocalLambdas:
    """Imports each handler once (a warm instance per function); each instance runs one event at a time.

    Concurrent invocations of one function wait for the instance (Lambda would start another
    environment; in one process the handler modules exist once). The API functions also wait for
    each other: Powertools' event handler keeps the current event on a class that every resolver
    in a process shares, which on Lambda is one function's process and here is all of them.
    """

    def __init__(self, prefix: str = "local") -> None:
        self.prefix = prefix
        self._handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        api_turn = threading.Lock()
        api_functions = {route.function for route in ROUTES}
        self._busy: dict[str, threading.Lock] = {
            name: api_turn if name in api_functions else threading.Lock() for name in HANDLERS
        }
        self._lock = threading.Lock()

    def handler(self, function: str) -> Callable[[dict[str, Any], Any], Any]:
        with self._lock:
            if function not in self._handlers:
                module_path, _, attr = HANDLERS[function].rpartition(".")
                module = importlib.import_module(module_path)
                _cold_start(module)
                self._handlers[function] = getattr(module, attr)
            return self._handlers[function]

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        handler = self.handler(function)
        with self._busy[function]:
            return self._run(function, handler, event)

    def _run(
        self, function: str, handler: Callable[[dict[str, Any], Any], Any], event: dict[str, Any]
    ) -> Any:
        try:
            return handler(event, LocalLambdaContext(f"{self.prefix}-{function}"))
        finally:
            if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
                # Disabled metrics are not flushed, and Powertools then keeps them in memory
                # (and prints them once 100 values pile up): drop them after each invocation.
                metrics.clear_metrics()
