"""Fuzz the API over HTTP from the document it serves: no 5xx, every answer as documented.

Schemathesis reads GET /openapi.json from the local stack (the committed document with the
champion's features in the /predict body), generates valid and invalid requests for every
route, sends them to the local gateway on 127.0.0.1, and checks each answer: no server error,
a documented status code and content type, and a body that validates against the documented
schema. The examples per route and mode bound the run to about a minute on a busy machine.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from mlops.shared.routes import ROUTES
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ServedStack

EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def served_document(served: ServedStack) -> Any:
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    schema.config.update(base_url=served.url)
    return schema


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def test_every_route_but_the_document_itself_is_fuzzed(served_document: Any) -> None:
    # Schemathesis leaves out the operation that serves the schema it was loaded from.
    routes = {f"{op.method.upper()} {op.path}" for op in _operations(served_document)}
    assert routes == {r.route_key for r in ROUTES} - {"GET /openapi.json"}


def _fuzz(operation: Any, mode: GenerationMode, sent: list[Any]) -> None:
    """Send `operation` the generated requests of `mode`; raises on the first answer that fails a check."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def exchange(case: Any) -> None:
        sent.append(case)
        case.call_and_validate(checks=CHECKS)

    exchange()


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=lambda m: m.value)
def test_every_route_answers_as_documented_whatever_it_is_sent(
    served: ServedStack, served_document: Any, mode: GenerationMode
) -> None:
    failures: list[str] = []
    for operation in _operations(served_document):
        takes_input = bool(len(operation.body) or len(operation.path_parameters) or len(operation.query))
        if mode is GenerationMode.NEGATIVE and not takes_input:
            continue  # nothing to send it that could be invalid
        sent: list[Any] = []
        try:
            _fuzz(operation, mode, sent)
        except Exception as err:  # every route is fuzzed; all failures are reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {err}")
        assert sent, operation.path
    assert not failures, "\n\n".join(failures)
