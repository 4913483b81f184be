"""The prediction app that each inference replica serves on Ray Serve's port: predict, and the
pool's and a model's health. Errors are the platform's JSON error body with the request id.

Built around one ``InferenceState``: the Serve deployment builds it per replica, the tests build
one in-process (no Ray) and call the app over httpx's ASGI transport.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import psutil
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from cvplatform import __version__
from cvplatform.benchmarking.resources import gpu_now
from cvplatform.errors import CvpError, NotFound, PermissionDenied
from cvplatform.inference.replica_state import pool_summary, read_live
from cvplatform.inference.served import check_servable
from cvplatform.schemas.inference import ImagePrediction, PredictionOut, PredictionTimings
from cvplatform.scrub import platform_scrubber
from serve_apps.api.authn import authenticate
from serve_apps.api.errors import install_error_handlers
from serve_apps.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from serve_apps.auth.policy import Action, can
from serve_apps.inference.predict import (
    Options,
    answer_predictions,
    elapsed_ms,
    infer,
    milliseconds,
    prepare,
    read_payload,
)
from serve_apps.inference.state import Counts, InferenceState

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
# Room for a full batch of large JPEGs; each image's pixels are bounded on their own.
_BYTES_PER_IMAGE = 4 * 1024 * 1024


def create_inference_app(
    state: InferenceState, lifespan: Lifespan | None = None, behind_serve_proxy: bool = False
) -> FastAPI:
    """The app over ``state``; ``lifespan`` runs while it serves (the replica's state publisher).

    ``behind_serve_proxy``: Serve's proxy gives each request its id (``X-Request-ID``, the
    caller's when sane) and answers it; the app then uses that id and adds no header of its own.
    """
    app = FastAPI(
        title="cv-platform predictions",
        version=__version__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.platform = state  # the name authentication reads its context from
    app.add_api_route("/v1/models/{model_id}/predict", predict, methods=["POST"])
    app.add_api_route("/v1/health", pool_health, methods=["GET"])
    app.add_api_route("/v1/models/{model_id}/health", model_health, methods=["GET"])
    install_error_handlers(app, platform_scrubber(state.settings))
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=state.settings.inference_max_batch * _BYTES_PER_IMAGE,
        limits_by_path={},
        limits_by_prefix={},
    )
    app.add_middleware(RequestContextMiddleware, answer_request_id=not behind_serve_proxy)
    return app


def _state(request: Request) -> InferenceState:
    state: InferenceState = request.app.state.platform
    return state


async def _caller_may_predict(request: Request) -> None:
    principal = await authenticate(request)
    request.state.principal = principal
    if not can(principal.role, Action.INFERENCE_RUN):  # every role today; the check stays
        raise PermissionDenied(f"role {principal.role} may not run predictions")


async def predict(
    request: Request,
    model_id: str,
    top_k: int = Query(5, ge=1, le=1000, description="labels per image (classification)"),
    confidence: float = Query(0.25, ge=0, le=1, description="least box score (detection)"),
    iou: float = Query(0.7, ge=0, le=1, description="NMS overlap threshold (detection)"),
) -> JSONResponse:
    """Predict with a ready model: multipart ``files``, JSON ``{"images": [base64]}``, or .npy."""
    started = time.perf_counter()
    state = _state(request)
    known_model: str | None = None
    try:
        await _caller_may_predict(request)
        found = state.read_model(model_id)
        if found is None or found.status != "ready":
            state.models.forget(model_id)  # deleted or no longer ready: not served from memory
        record = check_servable(found, model_id)
        known_model = model_id
        payload = await read_payload(request, record, state)
        loop = asyncio.get_running_loop()
        async with state.admission.worker() as waited_s, state.models.using(record) as model:
            prepared = await loop.run_in_executor(state.runner, prepare, payload, model, state)
            inference_started = time.perf_counter()
            outputs, batched_with = await infer(model, prepared.batch, state)
            inference_ms = elapsed_ms(inference_started)
        options = Options(top_k, confidence, iou)
        predictions = answer_predictions(model, outputs, prepared, options)
    except CvpError as error:
        _count_error(state, known_model, error.code)
        raise
    timings = {
        "queue_wait": milliseconds(waited_s),
        "inference": inference_ms,
        "total": elapsed_ms(started),
    }
    _count_success(state, model_id, timings, len(prepared.names))
    answer = PredictionOut(
        request_id=request.scope["state"]["request_id"],
        model_id=model_id,
        task_type=model.task_type,
        engine=model.engine,
        images=len(prepared.names),
        batched_with=batched_with,
        predictions=[ImagePrediction.model_validate(one) for one in predictions],
        timings_ms=PredictionTimings.model_validate(timings),
    )
    return JSONResponse(answer.model_dump(mode="json", exclude_none=True))


def _count_success(
    state: InferenceState, model_id: str, timings: dict[str, float], images: int
) -> None:
    sinks: list[Counts] = [state.stats]
    if state.metrics is not None:
        sinks.append(state.metrics)
    for sink in sinks:
        sink.record_success(
            model_id,
            queue_wait_ms=timings["queue_wait"],
            inference_ms=timings["inference"],
            total_ms=timings["total"],
            images=images,
        )


def _count_error(state: InferenceState, model_id: str | None, code: str) -> None:
    state.stats.record_error(model_id, code)
    if state.metrics is not None:
        state.metrics.record_error(model_id, code)


def pool_view(state: InferenceState) -> dict[str, Any]:
    """Every live replica's state (this one's as of now), summed up."""
    others = [
        published
        for published in read_live(state.replica_state_dir)
        if published.replica != state.replica
    ]
    return pool_summary([*others, state.replica_state()])


async def pool_health(request: Request) -> JSONResponse:
    """The pool for a load balancer: no credentials, nothing about users or inputs."""
    state = _state(request)
    pool = await asyncio.to_thread(pool_view, state)
    full = pool["queued"] >= pool["queue_max"]
    return JSONResponse(
        {
            "status": "saturated" if full else "ok",
            "pool": {key: pool[key] for key in _POOL_FIELDS},
            "models_loaded": pool["models_loaded"],
            "gpu": await asyncio.to_thread(gpu_now, state.gpu),
            "cpu_percent": psutil.cpu_percent(interval=None),
        }
    )


_POOL_FIELDS = ("replicas", "workers", "busy", "free", "queued", "queue_max")


async def model_health(request: Request, model_id: str) -> JSONResponse:
    """One model as the pool sees it: its status, which replicas hold it, its figures."""
    state = _state(request)
    await _caller_may_predict(request)
    record = state.read_model(model_id)
    if record is None:
        raise NotFound(f"no model {model_id}")
    pool = await asyncio.to_thread(pool_view, state)
    holders = [
        {"replica": replica["replica"], **held}
        for replica in pool["by_replica"]
        for held in replica["models"]
        if held["model_id"] == model_id
    ]
    return JSONResponse(
        {
            "model_id": model_id,
            "status": record.status,
            "servable": record.status == "ready" and record.onnx is not None,
            "loaded_on": holders,
            "stats": pool["stats"]["models"].get(model_id),
        }
    )
