"""Property-based run of schemathesis against the OpenAPI spec of a live server:
no 5xx for any generated input (positive and negative), and responses match the spec.

Bounded: a few dozen examples per operation (about 10-20 s on 2 cores)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402

from haloguard.server import Settings, create_app  # noqa: E402

from test_server_live import live_server  # noqa: E402

MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def api_schema(keyword_guard):
    app = create_app(Settings(max_body_bytes=200_000, jobs_max_body_bytes=400_000),
                     guard=keyword_guard)
    with live_server(app) as (url, _):
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    response = case.call(timeout=30)
    assert response.status_code < 500 or response.status_code == 503, (
        f"{case.method} {case.path} -> {response.status_code}: {response.text[:300]}")
    assert response.status_code != 503, response.text[:300]  # keyword backend never fails
    case.validate_response(response, checks=[
        schemathesis.checks.not_a_server_error,
        schemathesis.checks.status_code_conformance,
        schemathesis.checks.content_type_conformance,
        schemathesis.checks.response_schema_conformance,
    ])
