"""The inference pool on a live Ray Serve: predictions through Serve's proxy over real HTTP, the
pool's bounds as Serve enforces them (a flood of a small pool answers 200s and 503s only, and
the pool answers normally afterwards), Serve's dynamic batching, warming through a Serve handle
from the management API, and the replica's published state.

Serve runs for this module only, with a deliberately small pool (4 workers, a queue of 4).
Also the management API's readiness with Serve up (so that the suite starts Serve once). What
does not need Serve (every bad input, the 504, credentials) is tested in-process in
tests/api/test_predictions.py.
"""

from __future__ import annotations

import concurrent.futures
import sqlite3
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from ray import serve

from cvplatform.client import Client
from cvplatform.gpu import probe_gpu
from serve_apps.inference.deployment import deploy_inference_pool
from tests import models_kit
from tests.helpers import free_port, unique, wait_for
from tests.images_kit import encoded, two_colour_image
from tests.integration.conftest import LivePlatform

WORKERS, QUEUE_MAX = 4, 4


@pytest.fixture(scope="module")
def serve_url(platform: LivePlatform) -> Iterator[str]:
    port = free_port()
    serve.start(proxy_location="EveryNode", http_options={"host": "127.0.0.1", "port": port})
    pool_settings = platform.settings.model_copy(
        update={
            "serve_port": port,
            # One replica: the bounds below are then one replica's, and a model warmed is the
            # one predicted with (two replicas run in tests/e2e/test_make_run.py, the default
            # on a 2-core machine).
            "inference_replicas": 1,
            "inference_workers": WORKERS,
            "inference_queue_max": QUEUE_MAX,
            "inference_batch_size": 4,
        }
    )
    deploy_inference_pool(pool_settings)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{url}/v1/health", timeout=5).raise_for_status(), timeout_s=60)
    yield url
    serve.shutdown()


@pytest.fixture(scope="module")
def model_id(platform: LivePlatform, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A classifier slow enough to queue (tens of ms per image), uploaded and converted."""
    path = models_kit.onnx_slow_classifier(tmp_path_factory.mktemp("served") / "slow.onnx")
    with platform.admin() as admin:
        accepted = admin.upload_model(path, unique("slow"), "classification")
        assert admin.wait_for_model(accepted.id, timeout_s=120).status == "ready"
    return accepted.id


@pytest.fixture(scope="module")
def viewer_key(platform: LivePlatform) -> str:
    _, viewer = platform.new_user("viewer")
    with viewer:
        return viewer.create_api_key("predictions").key


def _predict(url: str, model_id: str, key: str, size: int = 32) -> httpx.Response:
    image = encoded(two_colour_image(size, size), "PNG")
    return httpx.post(
        f"{url}/v1/models/{model_id}/predict",
        headers={"X-API-Key": key},
        files={"files": ("digit.png", image)},
        timeout=60,
    )


def test_warming_through_the_api_loads_on_a_replica(
    platform: LivePlatform, serve_url: str, model_id: str
) -> None:
    _, engineer = platform.new_user("engineer")
    with engineer:
        warmed = engineer.warm_model(model_id)
    assert warmed.model.model_id == model_id and warmed.model.engine == "onnxruntime_cpu"

    def listed() -> None:
        with platform.admin() as admin:
            metrics = admin.inference_metrics()
        assert model_id in metrics.models_loaded, metrics

    wait_for(listed, timeout_s=10)
    health = httpx.get(f"{serve_url}/v1/health", timeout=10).json()
    assert health["models_loaded"] == [model_id]


def test_a_viewer_predicts_through_serve(
    platform: LivePlatform, serve_url: str, model_id: str, viewer_key: str
) -> None:
    answer = _predict(serve_url, model_id, viewer_key)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["engine"] == "onnxruntime_cpu" and len(body["predictions"][0]["labels"]) == 4
    assert body["timings_ms"]["queue_wait"] >= 0
    assert body["request_id"] == answer.headers["x-request-id"]
    with Client(platform.url, api_key=viewer_key, serve_url=serve_url) as viewer:
        through_sdk = viewer.predict(model_id, [encoded(two_colour_image(), "JPEG")], top_k=1)
    assert [len(one.labels or []) for one in through_sdk.predictions] == [1]
    missing = httpx.post(f"{serve_url}/v1/models/{model_id}/predict", timeout=10)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthenticated"


def test_concurrent_requests_for_one_model_are_batched(
    serve_url: str, model_id: str, viewer_key: str
) -> None:
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as clients:
        answers = list(
            clients.map(lambda _: _predict(serve_url, model_id, viewer_key, 160), range(8))
        )
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    assert max(answer.json()["batched_with"] for answer in answers) > 1


def test_a_flood_gets_only_200s_and_503s_then_the_pool_answers(
    serve_url: str, model_id: str, viewer_key: str
) -> None:
    with concurrent.futures.ThreadPoolExecutor(40) as clients:
        answers = list(
            clients.map(lambda _: _predict(serve_url, model_id, viewer_key, 160), range(60))
        )
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) == {200, 503}, statuses
    for refused in (answer for answer in answers if answer.status_code == 503):
        assert "Retry-After" in refused.headers, refused.text
    assert _predict(serve_url, model_id, viewer_key).status_code == 200
    health = httpx.get(f"{serve_url}/v1/health", timeout=10).json()
    assert health["pool"]["workers"] == WORKERS and health["pool"]["queue_max"] == QUEUE_MAX


# --- the management API's readiness, with Serve and the pool up ------------------------------


def _readiness(platform: LivePlatform) -> httpx.Response:
    return httpx.get(f"{platform.url}/api/v1/health/ready", timeout=30)


def test_ready_when_everything_is_up(platform: LivePlatform, serve_url: str) -> None:
    def ready() -> dict[str, dict[str, object]]:
        answer = _readiness(platform)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    body = wait_for(ready, timeout_s=60)
    assert body["status"] == "ready"
    assert "gpu_slot 2" in str(body["ray"]["detail"])
    assert body["gpu"]["detail"] == probe_gpu().detail

    # Serve's proxy routes its port to the inference pool.
    routes = httpx.get(f"{serve_url}/-/routes", timeout=10)
    assert routes.status_code == 200 and routes.json() == {"/": "cvp-inference"}, routes.text


def test_not_ready_when_the_store_cannot_write(platform: LivePlatform, serve_url: str) -> None:
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
