"""Property-based fuzzing of the service's own OpenAPI document with schemathesis, on a fixed small budget.

Each operation is one test: a few derandomized examples (so CI time is fixed and a failure reproduces), sent
with a valid key to the real server: no 5xx, and every response's status, content type and body conform to
the schema. The ledger must verify clean afterwards.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.service_support import Server, engine_name, ledger_verified, service  # noqa: F401

EXAMPLES_PER_OPERATION = 3
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def service_operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation in the service's OpenAPI document (built without a database)."""
    from fastapi import FastAPI

    from ledger.service.routers import account, data, feeds, market, orders, positions

    app = FastAPI()
    for module in (account, orders, positions, market, data, feeds):
        app.include_router(module.router)
    return [(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item]


@pytest.fixture(scope="module")
def api_schema(service: Server):  # type: ignore[no-untyped-def]
    service.set_quotes("alice", {"symbol": "AAPL", "bid": "100", "ask": "100.1"})
    schema = schemathesis.openapi.from_dict(httpx.get(service.url + "/openapi.json").json())
    schema.config.update(base_url=service.url)
    return schema


@pytest.mark.parametrize(("method", "path"), service_operations(), ids=lambda value: str(value))
def test_no_server_error_and_every_response_conforms(api_schema, method: str, path: str,  # type: ignore[no-untyped-def]
                                                     ledger_verified: Server):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):  # type: ignore[no-untyped-def]
        case.call_and_validate(headers=ledger_verified.headers("alice"), checks=CHECKS)

    fuzz()
