"""Bad requests of every kind get the one JSON error shape, with the request id."""

from __future__ import annotations

import json

import httpx

from tests.integration.conftest import LivePlatform


def _error(answer: httpx.Response) -> dict[str, str]:
    error: dict[str, str] = answer.json()["error"]
    assert set(error) >= {"code", "message", "request_id"}
    assert error["request_id"] == answer.headers["x-request-id"]
    return error


def test_unknown_route_is_404_in_the_error_shape(platform: LivePlatform) -> None:
    answer = httpx.get(f"{platform.url}/api/v1/no-such-thing")
    assert answer.status_code == 404
    assert _error(answer)["code"] == "not_found"


def test_wrong_method_is_405(platform: LivePlatform) -> None:
    answer = httpx.put(f"{platform.url}/api/v1/health")
    assert answer.status_code == 405
    assert _error(answer)["code"] == "method_not_allowed"


def test_malformed_json_is_422(platform: LivePlatform) -> None:
    answer = httpx.post(
        f"{platform.url}/api/v1/auth/login",
        content=b'{"username": "admin", "password": ',
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 422
    assert _error(answer)["code"] == "malformed_json"


def test_oversized_body_is_413(platform: LivePlatform) -> None:
    limit = platform.settings.max_request_bytes
    body = json.dumps({"username": "admin", "password": "x" * limit}).encode()
    answer = httpx.post(
        f"{platform.url}/api/v1/auth/login",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 413
    assert _error(answer)["code"] == "payload_too_large"

    def chunks() -> object:  # no Content-Length: the limit is counted while reading
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    streamed = httpx.post(
        f"{platform.url}/api/v1/auth/login",
        content=chunks(),  # type: ignore[arg-type]
        headers={"content-type": "application/json"},
    )
    assert streamed.status_code == 413


def test_request_id_is_taken_from_the_caller_and_logged(platform: LivePlatform) -> None:
    answer = httpx.get(
        f"{platform.url}/api/v1/no-such-thing", headers={"X-Request-ID": "trace-abc.123"}
    )
    assert answer.headers["x-request-id"] == "trace-abc.123"
    assert _error(answer)["request_id"] == "trace-abc.123"
    log_lines = (platform.settings.log_dir / "api.log").read_text().splitlines()
    logged = [json.loads(line) for line in log_lines if "trace-abc.123" in line]
    assert logged and logged[-1]["status"] == 404 and logged[-1]["path"] == "/api/v1/no-such-thing"
    assert {"ts", "level", "request_id", "user_id", "duration_ms"} <= set(logged[-1])


def test_insane_request_ids_are_replaced(platform: LivePlatform) -> None:
    answer = httpx.get(f"{platform.url}/api/v1/health", headers={"X-Request-ID": "a b\tc" * 50})
    assert answer.headers["x-request-id"] != "a b\tc" * 50
    assert len(answer.headers["x-request-id"]) == 32


def test_liveness_needs_no_credentials(platform: LivePlatform) -> None:
    answer = httpx.get(f"{platform.url}/api/v1/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


def test_docs_render_from_local_assets(platform: LivePlatform) -> None:
    page = httpx.get(f"{platform.url}/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert asset in page.text
        assert httpx.get(f"{platform.url}/api/v1/docs-assets/{asset}").status_code == 200
    document = httpx.get(f"{platform.url}/api/v1/openapi.json").json()
    assert "/api/v1/users" in document["paths"]
