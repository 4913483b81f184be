"""Readiness: the store, Ray and Serve are required; the GPU is reported, not required (the same
jobs run on the CPU where there is none), and so are the start-up registrations of the presets
and sample datasets (they take a while on a first start; the platform serves meanwhile)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection

from cvplatform.errors import CvpError
from cvplatform.schemas import ComponentStatus, Readiness
from serve_apps.api.state import StoreGateway

Probe = Callable[[], Awaitable[ComponentStatus]]
# A monitor asks often and waits little: a component slower than this is not ready.
PROBE_TIMEOUT_S = 3.0


async def probe_store(store: StoreGateway) -> ComponentStatus:
    answer = await store.ping()
    return ComponentStatus(ok=True, detail=f"writable, schema version {answer['schema_version']}")


async def _bounded(name: str, probe: Probe) -> ComponentStatus:
    try:
        return await asyncio.wait_for(probe(), PROBE_TIMEOUT_S)
    except TimeoutError:
        return ComponentStatus(ok=False, detail=f"{name} did not answer within {PROBE_TIMEOUT_S}s")
    except CvpError as error:
        return ComponentStatus(ok=False, detail=error.message)
    except Exception as error:
        return ComponentStatus(ok=False, detail=f"{name} check failed: {error}")


def startup_status(
    presets: Collection[str],
    samples: Collection[str],
    registered_presets: Collection[str],
    registered_samples: Collection[str],
) -> ComponentStatus:
    """Whether the configured presets and sample datasets are listed yet, and which are not."""
    parts, waiting = [], False
    for noun, configured, registered in (
        ("presets", presets, registered_presets),
        ("sample datasets", samples, registered_samples),
    ):
        missing = [name for name in configured if name not in registered]
        waiting = waiting or bool(missing)
        part = f"{noun} {len(configured) - len(missing)} of {len(configured)} registered"
        parts.append(f"{part} (not yet: {', '.join(missing)})" if missing else part)
    return ComponentStatus(ok=not waiting, detail="; ".join(parts))


async def gather_readiness(
    store: StoreGateway,
    ray_probe: Probe,
    serve_probe: Probe,
    gpu_probe: Probe,
    startup_probe: Probe,
) -> Readiness:
    store_status, ray_status, serve_status, gpu_status, startup = await asyncio.gather(
        _bounded("the store", lambda: probe_store(store)),
        _bounded("Ray", ray_probe),
        _bounded("Serve", serve_probe),
        _bounded("the GPU probe", gpu_probe),
        _bounded("the start-up registrations", startup_probe),
    )
    ready = store_status.ok and ray_status.ok and serve_status.ok
    return Readiness(
        status="ready" if ready else "unavailable",
        store=store_status,
        ray=ray_status,
        serve=serve_status,
        gpu=gpu_status,
        startup=startup,
    )
