"""The API server actor: uvicorn serving the management API from inside a named Ray actor.

Uploads stream through uvicorn straight to disk; the prediction traffic goes to Ray Serve's proxy
instead (see docs/architecture.md for why the two are apart).
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial
from typing import Any

import ray
import uvicorn
from ray import serve
from starlette.concurrency import run_in_threadpool

from actors.background import RayBackgroundWork
from cvplatform import RAY_NAMESPACE
from cvplatform.clock import utc_now
from cvplatform.config import Settings
from cvplatform.gpu import probe_gpu
from cvplatform.jsonlog import configure_logging
from cvplatform.schemas import ComponentStatus, Readiness
from serve_apps.api.app import create_app
from serve_apps.api.state import PlatformState
from serve_apps.auth.tokens import load_or_create_secret
from serve_apps.health import gather_readiness, startup_status
from serve_apps.inference.deployment import serve_pool_view
from store import queries
from store.actor import StoreClient
from store.connections import reading

API_ACTOR_NAME = "cvp-api"
log = logging.getLogger("cvp.api")


def _ray_status() -> ComponentStatus:
    if not ray.is_initialized():
        return ComponentStatus(ok=False, detail="Ray is not initialized in the API process")
    resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
    shown = ", ".join(
        f"{name} {amount:g}"
        for name, amount in sorted(resources.items())
        if name in ("CPU", "GPU", "gpu_slot")
    )
    return ComponentStatus(ok=True, detail=f"up: {shown}")


def _serve_status() -> ComponentStatus:
    try:
        proxies = serve.status().proxies
    except Exception as error:
        return ComponentStatus(ok=False, detail=f"Ray Serve is not reachable: {error}")
    if not proxies:
        return ComponentStatus(ok=False, detail="Ray Serve is not running (no HTTP proxy)")
    unhealthy = {node: str(state) for node, state in proxies.items() if state != "HEALTHY"}
    if unhealthy:
        return ComponentStatus(ok=False, detail=f"Serve proxies not healthy: {unhealthy}")
    return ComponentStatus(ok=True, detail=f"running, {len(proxies)} healthy HTTP proxy")


def _gpu_status() -> ComponentStatus:
    report = probe_gpu()
    # "ok" means "nothing is wrong": a machine without a GPU is a supported configuration.
    return ComponentStatus(ok=True, detail=report.detail)


def _startup_status(settings: Settings) -> ComponentStatus:
    with reading(settings.db_path) as reader:
        presets, samples = queries.registered_presets(reader), queries.registered_samples(reader)
    return startup_status(settings.preset_names, settings.sample_names, presets, samples)


async def platform_readiness(settings: Settings, store: StoreClient) -> Readiness:
    # The probes block on Ray, NVML and SQLite calls: keep them off the event loop.
    return await gather_readiness(
        store,
        partial(run_in_threadpool, _ray_status),
        partial(run_in_threadpool, _serve_status),
        partial(run_in_threadpool, _gpu_status),
        partial(run_in_threadpool, _startup_status, settings),
    )


class ApiServer:
    def __init__(self, settings: Settings) -> None:
        configure_logging(settings, "api")
        store = StoreClient()
        state = PlatformState(
            settings=settings,
            store=store,
            jwt_secret=load_or_create_secret(settings.jwt_secret_path),
            clock=utc_now,
            readiness=partial(platform_readiness, settings, store),
            background=RayBackgroundWork(settings),
            inference=serve_pool_view(settings),
        )
        config = uvicorn.Config(
            create_app(state),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            ssl_certfile=str(settings.tls_certfile) if settings.tls_certfile else None,
            ssl_keyfile=str(settings.tls_keyfile) if settings.tls_keyfile else None,
            timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout_s: float = 30.0) -> bool:
        """Block until uvicorn listens; raises if it could not (the port is taken, say)."""
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(
                    f"the API server could not start on {self._server.config.host}:"
                    f"{self._server.config.port} (is the port in use?); see logs/api.log"
                )
            if time.monotonic() > deadline:
                raise TimeoutError("the API server did not start in time")
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        """Finish the requests in flight (up to the shutdown timeout) and stop listening."""
        self._server.should_exit = True
        self._thread.join(timeout=self._server.config.timeout_graceful_shutdown or 30)


def start_api_actor(settings: Settings) -> Any:
    actor: Any = (
        ray.remote(ApiServer)
        .options(
            name=API_ACTOR_NAME,
            namespace=RAY_NAMESPACE,
            max_restarts=-1,
            num_cpus=0,
        )
        .remote(settings)
    )
    ray.get(actor.wait_ready.remote())
    return actor
