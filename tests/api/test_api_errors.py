"""Bad requests of every kind get the one JSON error shape, with the request id."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from cvplatform.errors import NotFound
from serve_apps.api.guard import GuardedRoute
from tests.api_harness import Caller, InProcessApi, error_of
from tests.helpers import route_table

pytestmark = pytest.mark.anyio

# Routes that name a record in their path, with a body they accept (so that only the id is wrong).
ROUTES_WITH_AN_ID = [
    (method, path, route) for method, path, route in route_table() if "{" in route.path
]
ACCEPTED_BODIES = {
    ("PATCH", "/api/v1/users/{user_id}"): {"role": "viewer"},
    ("PUT", "/api/v1/users/{user_id}/password"): {"password": "a-new-password"},
}
# The resumable upload routes speak tus: without its version header they answer 412 first.
ACCEPTED_HEADERS = {
    "/api/v1/uploads/{upload_id}": {
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
    }
}


async def test_unknown_route_is_404_in_the_error_shape(api: InProcessApi) -> None:
    answer = await api.http.get("/api/v1/no-such-thing")
    assert answer.status_code == 404
    assert error_of(answer)["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "route"),
    ROUTES_WITH_AN_ID,
    ids=[f"{method} {route.path}" for method, _, route in ROUTES_WITH_AN_ID],
)
async def test_unknown_ids_are_404_naming_the_id(
    api: InProcessApi, admin: Caller, method: str, path: str, route: GuardedRoute
) -> None:
    body = ACCEPTED_BODIES.get((method, route.path), {})
    headers = {**admin.headers, **ACCEPTED_HEADERS.get(route.path, {})}
    if "content-type" in {name.lower() for name in headers}:
        answer = await api.http.request(method, path, content=b"", headers=headers)
    else:
        answer = await api.http.request(method, path, json=body, headers=headers)
    assert answer.status_code == 404, answer.text
    if method == "HEAD":  # an answer without a body
        return
    error = error_of(answer, NotFound)
    assert error["code"] == "not_found"
    assert "999999" in error["message"]


async def test_wrong_method_is_405(api: InProcessApi) -> None:
    answer = await api.http.put("/api/v1/health")
    assert answer.status_code == 405
    assert error_of(answer)["code"] == "method_not_allowed"


async def test_malformed_json_is_422(api: InProcessApi) -> None:
    answer = await api.http.post(
        "/api/v1/auth/login",
        content=b'{"username": "admin", "password": ',
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 422
    assert error_of(answer)["code"] == "malformed_json"


async def test_oversized_body_is_413(api: InProcessApi) -> None:
    limit = api.settings.max_request_bytes
    body = json.dumps({"username": "admin", "password": "x" * limit}).encode()
    answer = await api.http.post(
        "/api/v1/auth/login", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert error_of(answer)["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    streamed = await api.http.post(
        "/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    assert error_of(streamed)["code"] == "payload_too_large"


async def test_request_id_is_taken_from_the_caller_and_logged(api: InProcessApi) -> None:
    answer = await api.http.get("/api/v1/no-such-thing", headers={"X-Request-ID": "trace-abc.123"})
    assert answer.headers["x-request-id"] == "trace-abc.123"
    assert error_of(answer)["request_id"] == "trace-abc.123"
    log_lines = (api.settings.log_dir / "api.log").read_text().splitlines()
    logged = [json.loads(line) for line in log_lines if "trace-abc.123" in line]
    assert logged and logged[-1]["status"] == 404 and logged[-1]["path"] == "/api/v1/no-such-thing"
    assert logged[-1]["request_id"] == "trace-abc.123"
    assert {"ts", "level", "request_id", "user_id", "duration_ms"} <= set(logged[-1])


async def test_insane_request_ids_are_replaced(api: InProcessApi) -> None:
    insane = "a b\tc" * 50
    answer = await api.http.get("/api/v1/health", headers={"X-Request-ID": insane})
    assert answer.headers["x-request-id"] != insane
    assert len(answer.headers["x-request-id"]) == 32


async def test_liveness_needs_no_credentials(api: InProcessApi) -> None:
    answer = await api.http.get("/api/v1/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


async def test_docs_render_from_local_assets(api: InProcessApi) -> None:
    page = await api.http.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert asset in page.text
        assert (await api.http.get(f"/api/v1/docs-assets/{asset}")).status_code == 200
    document = (await api.http.get("/api/v1/openapi.json")).json()
    assert "/api/v1/users" in document["paths"]
