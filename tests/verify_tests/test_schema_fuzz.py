"""Fuzz every operation in the published OpenAPI schema: whatever a client sends, no 5xx.

schemathesis generates requests from ``/api/v1/schema/`` and sends them, authenticated, to
the Django WSGI application in this process (no network). Examples per operation are kept
small and derandomised so the run is bounded and repeatable on a small machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import make_user

EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def wsgi_app(db: None) -> Iterator[Any]:
    # Like Django's test client: keep the test's database connection (and its transaction)
    # open across the requests the WSGI handler serves.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_schema_fuzz_no_operation_answers_5xx(wsgi_app: Any) -> None:
    # given
    token = make_user("fuzzer", "analyst", "reviewer", "lead").auth_token.key
    headers = {"Authorization": f"Token {token}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    failures: dict[str, str] = {}
    answered: list[int] = []
    # when
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            answered.append(case.call_and_validate(headers=headers, checks=[not_a_server_error]).status_code)

        try:
            fuzz()
        except Exception as failure:  # report every operation, not only the first that fails
            failures[f"{operation.method.upper()} {operation.path}"] = str(failure)[:2000]
    # then
    assert not failures, "\n\n".join(f"{name}:\n{text}" for name, text in failures.items())
    assert len(answered) >= 3 * len(operations)
    assert {200, 400, 404} <= set(answered)  # the fuzz reached the views, not only the authentication
