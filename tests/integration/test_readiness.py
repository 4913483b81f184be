"""Readiness without Serve: not ready, and says so. Ready with everything up, and not ready when
the store cannot write, are tested where Serve runs (tests/integration/test_inference_pool.py),
so that the suite starts Serve once."""

from __future__ import annotations

import httpx

from tests.integration.conftest import LivePlatform


def _readiness(platform: LivePlatform) -> httpx.Response:
    return httpx.get(f"{platform.url}/api/v1/health/ready", timeout=30)


def test_not_ready_without_serve(platform: LivePlatform) -> None:
    answer = _readiness(platform)
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unavailable"
    assert (body["store"]["ok"], body["ray"]["ok"], body["serve"]["ok"]) == (True, True, False)
