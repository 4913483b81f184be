"""Readiness: the store, Ray and Serve are required; the GPU is reported, not required (the same
jobs run on the CPU where there is none)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cvplatform.errors import CvpError
from cvplatform.schemas import ComponentStatus, Readiness
from serve_apps.api.state import StoreGateway

Probe = Callable[[], Awaitable[ComponentStatus]]


async def probe_store(store: StoreGateway) -> ComponentStatus:
    try:
        answer = await store.ping()
    except CvpError as error:
        return ComponentStatus(ok=False, detail=error.message)
    return ComponentStatus(ok=True, detail=f"writable, schema version {answer['schema_version']}")


async def gather_readiness(
    store: StoreGateway, ray_probe: Probe, serve_probe: Probe, gpu_probe: Probe
) -> Readiness:
    store_status = await probe_store(store)
    ray_status, serve_status, gpu_status = (
        await ray_probe(),
        await serve_probe(),
        await gpu_probe(),
    )
    ready = store_status.ok and ray_status.ok and serve_status.ok
    return Readiness(
        status="ready" if ready else "unavailable",
        store=store_status,
        ray=ray_status,
        serve=serve_status,
        gpu=gpu_status,
    )
