"""The inference pool, managed: warm a model so its first prediction is not a cold load, see
which replicas hold it, and the pool's counts. Predictions themselves go to Ray Serve's port."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from cvplatform.errors import InferencePoolUnavailable
from cvplatform.schemas.inference import (
    InferenceMetricsOut,
    LoadedModelOut,
    ModelServingOut,
    WarmedOut,
)
from serve_apps.api.guard import GuardedRoute, requires
from serve_apps.api.state import InferencePool, ReadDb, platform
from serve_apps.auth.policy import Action
from store import queries

router = APIRouter(route_class=GuardedRoute, tags=["inference"])


def _pool(request: Request) -> InferencePool:
    pool = platform(request).inference
    if pool is None:
        # Not a 404: the route exists, the pool it reports on is not running in this process.
        raise InferencePoolUnavailable("the inference pool is not running on this platform")
    return pool


@router.post(
    "/api/v1/models/{model_id}/serving", **requires(Action.INFERENCE_MANAGE), status_code=200
)
async def warm_model(request: Request, model_id: str, db: ReadDb) -> WarmedOut:
    """Load a ready model on a replica of the pool now, so that its first prediction is warm."""
    queries.required(queries.model_by_id, db, model_id, "model")
    warmed = await _pool(request).warm(model_id)
    loaded: dict[str, Any] = dict(warmed["model"])
    reason = str(loaded.pop("engine_reason", ""))
    return WarmedOut(
        replica=warmed["replica"], model=LoadedModelOut(**loaded), engine_reason=reason
    )


@router.get("/api/v1/models/{model_id}/serving", **requires(Action.RESOURCES_READ))
async def model_serving(request: Request, model_id: str, db: ReadDb) -> ModelServingOut:
    """Which replicas hold the model now, and its counts since they started."""
    queries.required(queries.model_by_id, db, model_id, "model")
    summary = await run_in_threadpool(_pool(request).summary)
    holders = [
        replica["replica"]
        for replica in summary["by_replica"]
        if any(held["model_id"] == model_id for held in replica["models"])
    ]
    return ModelServingOut(
        model_id=model_id, loaded_on=holders, stats=summary["stats"]["models"].get(model_id)
    )


@router.get("/api/v1/inference/metrics", **requires(Action.SYSTEM_MONITOR))
async def inference_metrics(request: Request) -> InferenceMetricsOut:
    """The pool: workers busy and free, queue depth, models loaded per replica, and its counts."""
    summary = await run_in_threadpool(_pool(request).summary)
    return InferenceMetricsOut.model_validate(summary)
