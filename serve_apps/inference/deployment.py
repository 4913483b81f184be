"""The inference pool on Ray Serve: one application, ``cvp-inference``, whose replicas serve the
prediction app (``app.py``) on Serve's HTTP port and load models by id on demand.

A thin Ray shell: the bounds, the model cache, the counting and the request handling are plain
code built around one ``InferenceState`` per replica. What is Serve's here: the replicas, their
restart, and the proxy's own bound on waiting requests (the dynamic batching is
``cvplatform.inference.batching``: see there why not ``serve.batch``).

Bounds (see docs/architecture.md, "Predictions"): each of the ``CVP_INFERENCE_REPLICAS``
replicas lets its share of ``CVP_INFERENCE_WORKERS`` requests infer at once and its share of
``CVP_INFERENCE_QUEUE_MAX`` wait, and answers the rest 503 with ``Retry-After`` itself, in the
platform's error shape. Serve's ``max_ongoing_requests`` lets those reach a replica and
``REFUSAL_ROOM`` more, so that overflow reaches the replica and gets that answer at once; Serve's
own bound (the proxy's ``max_queued_requests``, whose 503 is plain text without
``Retry-After``) is a backstop only a burst of more than that many at once would reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from ray import serve

from cvplatform.clock import to_iso, utc_now
from cvplatform.config import Settings
from cvplatform.gpu import probe_gpu
from cvplatform.inference.layout import available_cpus, pool_layout
from cvplatform.inference.replica_state import publish, remove
from cvplatform.jsonlog import configure_logging
from serve_apps.auth.tokens import load_or_create_secret
from serve_apps.inference.app import create_inference_app
from serve_apps.inference.metrics import PrometheusMetrics
from serve_apps.inference.pool_view import InferencePoolView, warm_in_process
from serve_apps.inference.state import InferenceState, replica_share
from store.actor import StoreClient

POOL_APP = "cvp-inference"
POOL_DEPLOYMENT = "InferencePool"
PUBLISH_INTERVAL_S = 1.0
# Requests beyond the bounds that a replica takes in only to refuse them (a refusal is quick), and
# that the proxy holds while it assigns a burst to replicas.
REFUSAL_ROOM = 100
log = logging.getLogger("cvp.inference")


@serve.deployment(name=POOL_DEPLOYMENT)
@serve.ingress()
class InferencePool:
    def __init__(self, settings: Settings) -> None:
        # Each request's line goes to inference.log; on stderr, Serve's capture of a replica's
        # output walks the stack for every line it writes (a tenth of the event loop's time
        # under load, measured with py-spy), so only warnings and errors go there.
        configure_logging(settings, "inference", stderr_level="WARN")
        replica = serve.get_replica_context().replica_id.unique_id
        self._state = InferenceState(
            settings=settings,
            store=StoreClient(),
            jwt_secret=load_or_create_secret(settings.jwt_secret_path),
            clock=utc_now,
            gpu=probe_gpu(),
            replica=replica,
            metrics=PrometheusMetrics(replica),
            started_at=to_iso(utc_now()),
        )

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_inference_app(self._state, self._lifespan, behind_serve_proxy=True)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        """While the replica serves: publish its state every second; at its end, take the state
        file away and close the models."""
        publisher = asyncio.get_running_loop().create_task(self._publish_forever())
        try:
            yield
        finally:
            publisher.cancel()
            with contextlib.suppress(OSError):
                remove(self._state.replica_state_dir, self._state.replica)
            self._state.models.close_all()

    async def warm(self, model_id: str) -> dict[str, Any]:
        """Load a ready model on this replica now: this replica and the model as loaded."""
        warmed = await warm_in_process(self._state)(model_id)
        self._publish()
        return warmed

    async def _publish_forever(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed update shows as a stale updated_at
                self._publish()
            await asyncio.sleep(PUBLISH_INTERVAL_S)

    def _publish(self) -> None:
        state = self._state
        published = state.replica_state()
        publish(state.replica_state_dir, published)
        if state.metrics is not None:
            state.metrics.set_pool(
                busy=published.busy, queued=published.queued, models_loaded=len(published.models)
            )


def deploy_inference_pool(settings: Settings) -> None:
    """Deploy (or redeploy) the pool with the configured bounds; returns once its replicas run.

    The replicas get ``settings`` with their number and threads resolved here (see
    ``cvplatform.inference.layout``), so that every replica splits the bounds alike."""
    layout = pool_layout(
        settings.inference_replicas,
        settings.inference_threads,
        available_cpus(),
        probe_gpu().available,
    )
    settings = settings.model_copy(
        update={"inference_replicas": layout.replicas, "inference_threads": layout.threads}
    )
    replicas = layout.replicas
    per_replica = replica_share(settings.inference_workers, replicas) + replica_share(
        settings.inference_queue_max, replicas
    )
    pool = InferencePool.options(  # type: ignore[attr-defined]
        num_replicas=replicas,
        max_ongoing_requests=per_replica + REFUSAL_ROOM,
        # Serve counts a request as queued until it is assigned to a replica, even for a moment:
        # a burst is held there briefly before the replica's own queue takes it.
        max_queued_requests=settings.inference_queue_max + REFUSAL_ROOM,
        ray_actor_options={"num_cpus": 0},
    ).bind(settings)
    serve.run(pool, name=POOL_APP, route_prefix="/", blocking=False)
    log.info("inference pool deployed", extra={"replicas": replicas, "threads": layout.threads})


def pool_handle() -> Any:
    return serve.get_deployment_handle(POOL_DEPLOYMENT, app_name=POOL_APP)


async def warm_through_serve(model_id: str) -> dict[str, Any]:
    """Warm a model on the replica the pool's handle picks (the management API's warming)."""
    answer: dict[str, Any] = await pool_handle().warm.remote(model_id)
    return answer


def serve_pool_view(settings: Settings) -> InferencePoolView:
    return InferencePoolView(settings.run_dir / "inference", warm_through_serve)
