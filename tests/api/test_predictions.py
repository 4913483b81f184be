"""Predictions through the real prediction app in-process: real ONNX Runtime on toy models, the
real store and credentials; each bad input of issue 13 refused with its status and code, and
nothing stored changed by a refused request. Serve's own part (replicas, its batching, the proxy)
is tested with a live Serve in ``tests/integration/test_inference_pool.py``."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cvplatform.errors import (
    AuthError,
    Conflict,
    InferenceQueueFull,
    InferenceTimeout,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from tests import models_kit
from tests.api_harness import Caller, InProcessApi, error_of
from tests.helpers import unique
from tests.images_kit import encoded, npy, png_header_only, two_colour_image
from tests.inference_harness import InProcessPool, in_process_pool, ready_onnx_model

pytestmark = pytest.mark.anyio
CLASS_NAMES = ["cat", "dog", "bird", "fish"]


@pytest.fixture
async def pool(api: InProcessApi) -> AsyncIterator[InProcessPool]:
    async with in_process_pool(api, inference_max_batch=4) as running:
        yield running


@pytest.fixture
async def model_id(api: InProcessApi, engineer: Caller, tmp_path: Path) -> str:
    path = models_kit.onnx_classifier(tmp_path / "tiny.onnx", classes=4, size=32)
    return await ready_onnx_model(api, engineer, path, class_names=CLASS_NAMES)


@pytest.fixture
async def viewer_key(api: InProcessApi, viewer: Caller) -> dict[str, str]:
    created = await api.api_key(viewer.headers)
    return {"X-API-Key": created["key"]}


def png(width: int = 40, height: int = 30) -> bytes:
    return encoded(two_colour_image(width, height), "PNG")


def predict_path(model: str) -> str:
    return f"/v1/models/{model}/predict"


async def test_a_viewer_key_predicts_labels_with_timings(
    pool: InProcessPool, model_id: str, viewer_key: dict[str, str]
) -> None:
    answer = await pool.http.post(
        predict_path(model_id),
        headers=viewer_key,
        files=[
            ("files", ("a.png", png())),
            ("files", ("b.jpg", encoded(two_colour_image(), "JPEG"))),
        ],
        params={"top_k": 2},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["request_id"] == answer.headers["x-request-id"]
    assert (body["model_id"], body["engine"], body["images"]) == (model_id, "onnxruntime_cpu", 2)
    assert [prediction["input"] for prediction in body["predictions"]] == ["a.png", "b.jpg"]
    for prediction in body["predictions"]:
        labels = prediction["labels"]
        assert len(labels) == 2 and labels[0]["confidence"] >= labels[1]["confidence"]
        assert {label["name"] for label in labels} <= set(CLASS_NAMES)
    assert set(body["timings_ms"]) == {"queue_wait", "inference", "total"}
    assert body["timings_ms"]["total"] >= body["timings_ms"]["inference"] > 0


async def test_the_answer_is_the_models_own_on_its_own_preprocessing(
    pool: InProcessPool, model_id: str, viewer_key: dict[str, str], tmp_path: Path
) -> None:
    """The probabilities are the softmax of what ONNX Runtime gives for the same preprocessed
    tensor: predicting an image equals predicting its preprocessed .npy."""
    from cvplatform.inference.preprocessing import preprocess

    image = two_colour_image(50, 20)
    as_image = await pool.http.post(
        predict_path(model_id),
        headers=viewer_key,
        files={"files": ("x.png", encoded(image, "PNG"))},
    )
    record = pool.state.read_model(model_id)
    assert record is not None and record.input_dims is not None
    model = pool.state.models.held()[0]
    tensor, _ = preprocess(
        [Image.open(io.BytesIO(encoded(image, "PNG"))).convert("RGB")], model.spec
    )
    as_tensor = await pool.http.post(
        predict_path(model_id),
        headers={**viewer_key, "Content-Type": "application/x-npy"},
        content=npy(tensor),
    )
    assert as_image.status_code == as_tensor.status_code == 200, (as_image.text, as_tensor.text)
    labels_of = [answer.json()["predictions"][0]["labels"] for answer in (as_image, as_tensor)]
    assert labels_of[0] == labels_of[1]


async def test_base64_json_images_predict(
    pool: InProcessPool, model_id: str, viewer_key: dict[str, str]
) -> None:
    images = [
        base64.b64encode(png()).decode(),
        "data:image/png;base64," + base64.b64encode(png()).decode(),
    ]
    answer = await pool.http.post(
        predict_path(model_id), headers=viewer_key, json={"images": images}
    )
    assert answer.status_code == 200, answer.text
    assert [p["input"] for p in answer.json()["predictions"]] == ["image 0", "image 1"]


async def test_a_detector_answers_boxes_in_the_images_own_pixels(
    api: InProcessApi, pool: InProcessPool, engineer: Caller, tmp_path: Path
) -> None:
    path = models_kit.onnx_detector(tmp_path / "detector.onnx")
    detector = await ready_onnx_model(api, engineer, path, task_type="detection")
    answer = await pool.http.post(
        predict_path(detector),
        headers=engineer.headers,
        files={"files": ("wide.png", png(64, 32))},
        params={"confidence": 0.0},
    )
    assert answer.status_code == 200, answer.text
    boxes = answer.json()["predictions"][0]["boxes"]
    assert boxes, "a zero confidence threshold keeps boxes"
    for box in boxes:
        assert 0 <= box["x1"] <= box["x2"] <= 64 and 0 <= box["y1"] <= box["y2"] <= 32


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"not an image at all", "invalid_input"),
        (png_header_only(0, 10), "invalid_input"),
        (png_header_only(50_000, 50_000), "invalid_input"),
    ],
    ids=["not-an-image", "zero-size", "declares-50000x50000"],
)
async def test_bad_images_are_422_and_free_their_worker(
    pool: InProcessPool, model_id: str, viewer_key: dict[str, str], content: bytes, code: str
) -> None:
    answer = await pool.http.post(
        predict_path(model_id), headers=viewer_key, files={"files": ("bad.png", content)}
    )
    assert answer.status_code == 422
    assert error_of(answer, InvalidInput)["code"] == code
    assert (pool.state.admission.busy, pool.state.admission.waiting) == (0, 0)


async def test_a_tensor_of_the_wrong_shape_or_dtype_is_422(
    pool: InProcessPool, model_id: str, viewer_key: dict[str, str]
) -> None:
    headers = {**viewer_key, "Content-Type": "application/x-npy"}
    for tensor in (np.zeros((1, 3, 16, 16), np.float32), np.zeros((1, 3, 32, 32), np.complex64)):
        answer = await pool.http.post(predict_path(model_id), headers=headers, content=npy(tensor))
        assert answer.status_code == 422, answer.text
        error_of(answer, InvalidInput)


async def test_an_empty_batch_is_422_and_one_over_the_limit_is_413(
    pool: InProcessPool, model_id: str, viewer_key: dict[str, str]
) -> None:
    empty = await pool.http.post(predict_path(model_id), headers=viewer_key, json={"images": []})
    assert empty.status_code == 422
    assert "no images" in error_of(empty, InvalidInput)["message"]
    five = [("files", (f"{index}.png", png())) for index in range(5)]
    over = await pool.http.post(predict_path(model_id), headers=viewer_key, files=five)
    assert over.status_code == 413
    assert "CVP_INFERENCE_MAX_BATCH" in error_of(over, PayloadTooLarge)["message"]


async def test_a_body_of_another_type_is_415(
    pool: InProcessPool, model_id: str, viewer_key: dict[str, str]
) -> None:
    answer = await pool.http.post(
        predict_path(model_id), headers={**viewer_key, "Content-Type": "text/plain"}, content=b"x"
    )
    assert answer.status_code == 415
    error_of(answer, UnsupportedMediaType)


async def test_unknown_and_unready_models_are_404_and_409(
    api: InProcessApi,
    pool: InProcessPool,
    engineer: Caller,
    viewer_key: dict[str, str],
    tmp_path: Path,
) -> None:
    unknown = await pool.http.post(
        predict_path("no-such-model"), headers=viewer_key, files={"files": ("a.png", png())}
    )
    assert unknown.status_code == 404
    error_of(unknown, NotFound)
    path = models_kit.onnx_classifier(tmp_path / "uploaded.onnx")
    uploaded = await api.upload_model(
        engineer.headers, path, path.name, unique("raw"), "classification"
    )
    not_ready = await pool.http.post(
        predict_path(uploaded.json()["id"]), headers=viewer_key, files={"files": ("a.png", png())}
    )
    assert not_ready.status_code == 409
    assert "only a ready model can predict" in error_of(not_ready, Conflict)["message"]


async def test_no_or_bad_credentials_are_401(pool: InProcessPool, model_id: str) -> None:
    for headers in ({}, {"X-API-Key": "cvp_not-a-real-key"}, {"Authorization": "Bearer nonsense"}):
        answer = await pool.http.post(
            predict_path(model_id), headers=headers, files={"files": ("a.png", png())}
        )
        assert answer.status_code == 401, headers
        error_of(answer, AuthError)


async def test_a_revoked_key_stops_predicting(
    api: InProcessApi, pool: InProcessPool, viewer: Caller, model_id: str
) -> None:
    created = await api.api_key(viewer.headers)
    headers = {"X-API-Key": created["key"]}
    assert (
        await pool.http.post(
            predict_path(model_id), headers=headers, files={"files": ("a.png", png())}
        )
    ).status_code == 200
    revoked = await api.http.delete(
        f"/api/v1/auth/api-keys/{created['id']}", headers=viewer.headers
    )
    assert revoked.status_code in (200, 204), revoked.text
    # The pool keeps its own short cache of credentials (CVP_AUTH_CACHE_S): past it, refused.
    api.clock.advance(api.settings.auth_cache_s + 1)
    after = await pool.http.post(
        predict_path(model_id), headers=headers, files={"files": ("a.png", png())}
    )
    assert after.status_code == 401
    error_of(after, AuthError)


async def test_a_model_deleted_while_served_is_404_and_let_go(
    api: InProcessApi, pool: InProcessPool, admin: Caller, model_id: str, viewer_key: dict[str, str]
) -> None:
    first = await pool.http.post(
        predict_path(model_id), headers=viewer_key, files={"files": ("a.png", png())}
    )
    assert first.status_code == 200 and pool.state.models.holds(model_id)
    deleted = await api.http.delete(f"/api/v1/models/{model_id}", headers=admin.headers)
    assert deleted.status_code in (200, 202, 204), deleted.text
    # The pool reuses a ready model's record for CVP_AUTH_CACHE_S: past it, the model is gone.
    api.clock.advance(api.settings.auth_cache_s + 1)
    after = await pool.http.post(
        predict_path(model_id), headers=viewer_key, files={"files": ("a.png", png())}
    )
    assert after.status_code == 404
    error_of(after, NotFound)
    assert not pool.state.models.holds(model_id)


async def test_a_flooded_queue_answers_only_503s_beyond_its_bound_then_serves_again(
    api: InProcessApi, engineer: Caller, viewer_key: dict[str, str], tmp_path: Path
) -> None:
    path = models_kit.onnx_slow_classifier(tmp_path / "slow.onnx")
    slow = await ready_onnx_model(api, engineer, path)
    async with in_process_pool(api, inference_workers=1, inference_queue_max=2) as small:
        body = {"files": ("a.png", png(160, 160))}

        async def one() -> Any:
            return await small.http.post(predict_path(slow), headers=viewer_key, files=body)

        answers = await asyncio.gather(*(one() for _ in range(12)))
        statuses = sorted(answer.status_code for answer in answers)
        assert set(statuses) == {200, 503}, statuses
        assert statuses.count(200) >= 3  # the one inferring and the two queued at least
        for refused in (answer for answer in answers if answer.status_code == 503):
            assert error_of(refused, InferenceQueueFull)["code"] == "inference_queue_full"
            assert int(refused.headers["Retry-After"]) >= 1
        assert (small.state.admission.busy, small.state.admission.waiting) == (0, 0)
        again = await one()
        assert again.status_code == 200, again.text
        stats = small.state.stats.snapshot()
        assert stats["errors"] == {"inference_queue_full": statuses.count(503)}


async def test_a_run_past_the_inference_timeout_is_504_and_frees_the_worker(
    api: InProcessApi, engineer: Caller, viewer_key: dict[str, str], tmp_path: Path
) -> None:
    path = models_kit.onnx_slow_classifier(tmp_path / "slow.onnx")
    slow = await ready_onnx_model(api, engineer, path)
    async with in_process_pool(api, inference_timeout_s=0.001, inference_max_batch=8) as tight:
        files = [("files", (f"{index}.png", png(160, 160))) for index in range(8)]
        answer = await tight.http.post(predict_path(slow), headers=viewer_key, files=files)
        assert answer.status_code == 504, answer.text
        assert error_of(answer, InferenceTimeout)["code"] == "inference_timeout"
        assert (tight.state.admission.busy, tight.state.admission.waiting) == (0, 0)


async def test_health_needs_no_credentials_and_tells_the_pool(
    pool: InProcessPool, model_id: str, viewer_key: dict[str, str]
) -> None:
    await pool.http.post(
        predict_path(model_id), headers=viewer_key, files={"files": ("a.png", png())}
    )
    health = await pool.http.get("/v1/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["pool"]["workers"] == pool.state.settings.inference_workers
    assert body["models_loaded"] == [model_id]
    assert body["gpu"]["available"] is False and body["gpu"]["reason"]
    model = await pool.http.get(f"/v1/models/{model_id}/health", headers=viewer_key)
    assert model.status_code == 200
    assert model.json()["stats"]["requests"] == 1
    assert (await pool.http.get(f"/v1/models/{model_id}/health")).status_code == 401


async def test_warming_loads_a_model_and_the_api_shows_where(
    pool: InProcessPool, engineer: Caller, admin: Caller, viewer: Caller, model_id: str
) -> None:
    warmed = await pool.api.post(f"/api/v1/models/{model_id}/serving", headers=engineer.headers)
    assert warmed.status_code == 200, warmed.text
    assert warmed.json()["model"]["engine"] == "onnxruntime_cpu"
    assert "no benchmark" in warmed.json()["engine_reason"]
    assert pool.state.models.holds(model_id)
    pool.state.replica_state_dir.mkdir(parents=True, exist_ok=True)
    from cvplatform.inference.replica_state import publish

    publish(pool.state.replica_state_dir, pool.state.replica_state())
    serving = await pool.api.get(f"/api/v1/models/{model_id}/serving", headers=engineer.headers)
    assert serving.json()["loaded_on"] == [pool.state.replica]
    metrics = await pool.api.get("/api/v1/inference/metrics", headers=admin.headers)
    assert metrics.status_code == 200, metrics.text
    assert metrics.json()["models_loaded"] == [model_id]
    for path, method in (
        (f"/api/v1/models/{model_id}/serving", "POST"),
        (f"/api/v1/models/{model_id}/serving", "GET"),
        ("/api/v1/inference/metrics", "GET"),
    ):
        refused = await pool.api.request(method, path, headers=viewer.headers)
        assert refused.status_code == 403, (path, method)
