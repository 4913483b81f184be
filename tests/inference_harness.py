"""An inference replica in-process: the real prediction app over httpx's ASGI transport, on the
same store and credentials as the in-process management API (``tests/api_harness.py``), with
real ONNX Runtime sessions and no Ray (so no Serve batching: each request runs on its own)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from actors.models.onnx_inspect import inspect_onnx
from serve_apps.api.app import create_app
from serve_apps.inference.app import create_inference_app
from serve_apps.inference.pool_view import InferencePoolView, warm_in_process
from serve_apps.inference.state import InferenceState
from tests.api_harness import NO_GPU, Caller, InProcessApi, close_replica
from tests.helpers import unique


@dataclass(frozen=True)
class InProcessPool:
    state: InferenceState
    http: httpx.AsyncClient  # the prediction app (Serve's port in the platform)
    api: httpx.AsyncClient  # the management API, with this pool as its inference pool


@asynccontextmanager
async def in_process_pool(api: InProcessApi, **settings: Any) -> AsyncIterator[InProcessPool]:
    """A replica over ``api``'s store; ``settings`` override the API's (bounds, timeouts)."""
    state = InferenceState(
        settings=api.settings.model_copy(update=settings),
        store=api.store,
        jwt_secret=api.state.jwt_secret,
        clock=api.clock,
        gpu=NO_GPU,
        replica="replica-under-test",
    )
    view = InferencePoolView(state.replica_state_dir, warm_in_process(state))
    managed = dataclasses.replace(api.state, inference=view)
    serve_transport = httpx.ASGITransport(app=create_inference_app(state))
    api_transport = httpx.ASGITransport(app=create_app(managed))
    try:
        async with (
            httpx.AsyncClient(transport=serve_transport, base_url="http://serve.test") as http,
            httpx.AsyncClient(transport=api_transport, base_url="http://cvp.test") as managing,
        ):
            yield InProcessPool(state, http, managing)
    finally:
        close_replica(state)
        managed.readers.close()


async def ready_onnx_model(
    api: InProcessApi, caller: Caller, path: Path, task_type: str = "classification", **details: Any
) -> str:
    """Upload an ONNX file and make it ready as its conversion would (its summary recorded)."""
    answer = await api.upload_model(caller.headers, path, path.name, unique("served"), task_type)
    assert answer.status_code == 202, answer.text
    model_id = str(answer.json()["id"])
    api.store.run_sync(
        "finish_conversion",
        model_id=model_id,
        onnx=None,
        details={"summary": inspect_onnx(path), **details},
    )
    return model_id
