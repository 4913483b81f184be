"""Readiness: store writable, Ray up, Serve running; the GPU reported.

Serve runs for this module only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import httpx
import pytest
from ray import serve

from cvplatform.gpu import probe_gpu
from tests.helpers import free_port, wait_for
from tests.integration.conftest import LivePlatform


def _readiness(platform: LivePlatform) -> httpx.Response:
    return httpx.get(f"{platform.url}/api/v1/health/ready", timeout=30)


def test_not_ready_without_serve(platform: LivePlatform) -> None:
    answer = _readiness(platform)
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unavailable"
    assert (body["store"]["ok"], body["ray"]["ok"], body["serve"]["ok"]) == (True, True, False)


@pytest.fixture(scope="module")
def serve_running(platform: LivePlatform) -> Iterator[int]:
    port = free_port()
    serve.start(proxy_location="EveryNode", http_options={"host": "127.0.0.1", "port": port})
    yield port
    serve.shutdown()


def test_ready_when_everything_is_up(platform: LivePlatform, serve_running: int) -> None:
    def ready() -> dict[str, dict[str, object]]:
        answer = _readiness(platform)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    body = wait_for(ready, timeout_s=60)
    assert body["status"] == "ready"
    assert "gpu_slot 2" in str(body["ray"]["detail"])
    assert body["gpu"]["detail"] == probe_gpu().detail

    # Serve's proxy answers on its port; with no application deployed it has no route yet.
    proxy = httpx.get(f"http://127.0.0.1:{serve_running}/-/routes", timeout=10)
    assert proxy.status_code == 503
    assert "route table" in proxy.text.lower()


def test_not_ready_when_the_store_cannot_write(platform: LivePlatform, serve_running: int) -> None:
    blocker = sqlite3.connect(platform.settings.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        answer = _readiness(platform)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert answer.status_code == 503
    assert answer.json()["store"]["ok"] is False
    assert "busy" in answer.json()["store"]["detail"]
    assert wait_for(lambda: _readiness(platform).raise_for_status()).status_code == 200
