"""Requests generated from the API's own OpenAPI document (schemathesis), in-process: whatever
a client sends, the answer is never a server error.

Each operation gets requests valid by its schema and invalid ones (wrong types, out-of-range
numbers, missing fields), as an admin, so that every route gets past its role check.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.schemas import OpenApiSchema
from starlette.testclient import TestClient

from serve_apps.api.app import create_app
from tests.api_harness import ADMIN_HASH, ADMIN_PASSWORD, InProcessPlatform, in_process_platform
from tests.helpers import unique

# Enough to reach every constraint of every operation; the whole module takes well under a minute.
EXAMPLES_PER_OPERATION = 25
# The body of a tus PATCH: raw bytes (schemathesis has no serializer of its own for it).
schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=256))


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessPlatform, Any]]:
    # Generated logins must not lock the admin out of the session the checks use.
    with in_process_platform(
        tmp_path_factory.mktemp("fuzz") / "data", login_max_failures=1_000_000
    ) as running:
        yield running, create_app(running.state)


@pytest.fixture(scope="module")
def api_schema(fuzzed: tuple[InProcessPlatform, Any]) -> OpenApiSchema:
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", fuzzed[1])


def _fresh_admin(client: TestClient, running: InProcessPlatform) -> dict[str, str]:
    """A new admin, logged in, for each operation: the cases before may have logged the last
    one out, demoted it or deleted it (once they had made another admin)."""
    username = unique("fuzz-admin")
    running.store.run_sync("create_user", username=username, password_hash=ADMIN_HASH, role="admin")
    answer = client.post(
        "/api/v1/auth/login", json={"username": username, "password": ADMIN_PASSWORD}
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _fuzz(operation: Any, client: TestClient, running: InProcessPlatform) -> None:
    headers = _fresh_admin(client, running)

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,  # the same requests on every run: a failure here is reproducible
        database=None,
    )
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(session=client, headers=headers, checks=[not_a_server_error])

    call()


def test_no_request_from_the_schema_causes_a_server_error(
    api_schema: OpenApiSchema, fuzzed: tuple[InProcessPlatform, Any]
) -> None:
    # One test over every operation (schemathesis' own pytest plugin does not run on pytest 9).
    failures = []
    with TestClient(fuzzed[1]) as client:
        for result in api_schema.get_all_operations():
            operation = result.ok()
            try:
                _fuzz(operation, client, fuzzed[0])
            except Exception as failure:
                failures.append(f"{operation.label}: {failure}")
    assert not failures, "\n\n".join(failures)


def test_the_document_covers_every_route(api_schema: OpenApiSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 26
    paths = {operation.path for operation in operations}
    assert {"/api/v1/models", "/api/v1/datasets", "/api/v1/users", "/api/v1/alerts"} <= paths
