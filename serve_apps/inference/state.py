"""What one inference replica keeps between requests: its bounds, the models it holds, its counts,
and what checking credentials needs (the same checks as the management API's).

The Serve deployment builds one ``InferenceState`` per replica; the in-process tests build one
over a temporary store, with no Ray.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from cvplatform.clock import Clock, to_iso
from cvplatform.config import Settings
from cvplatform.engines import EngineContext
from cvplatform.gpu import GpuReport
from cvplatform.inference.admission import Admission
from cvplatform.inference.batching import MicroBatcher
from cvplatform.inference.layout import PoolLayout, available_cpus, pool_layout
from cvplatform.inference.loaded import LoadedModels
from cvplatform.inference.recent import RecentServingInputs
from cvplatform.inference.replica_state import LoadedModel, ReplicaState
from cvplatform.inference.served import (
    ServedModel,
    ServingInput,
    open_served_model,
    run_together,
    runs_alone,
)
from cvplatform.inference.stats import InferenceStats
from serve_apps.api.state import StoreGateway, auth_context_parts
from serve_apps.auth.credential_cache import CredentialCache, KeyUseThrottle
from store.connections import ReaderPool
from store.inference_inputs import serving_input
from store.operations import AsyncStoreOperations


class Counts(Protocol):
    """What a replica counts (``InferenceStats`` for the JSON views, Prometheus beside it)."""

    def record_success(
        self,
        model_id: str,
        *,
        queue_wait_ms: float,
        inference_ms: float,
        total_ms: float,
        images: int,
    ) -> None: ...

    def record_error(self, model_id: str | None, code: str) -> None: ...


class MetricsSink(Counts, Protocol):
    """Where a replica's counts also go (Ray's Prometheus metrics in the platform)."""

    def set_pool(self, *, busy: int, queued: int, models_loaded: int) -> None: ...


def replica_share(total: int, replicas: int) -> int:
    """One replica's part of a pool-wide bound (rounded up: the pool never holds less)."""
    return max(1, -(-total // replicas))


@dataclass(frozen=True)
class InferenceState:
    settings: Settings
    store: StoreGateway
    jwt_secret: bytes
    clock: Clock
    gpu: GpuReport
    replica: str
    metrics: MetricsSink | None = None
    started_at: str = ""
    # Built from the fields above.
    layout: PoolLayout = field(init=False)
    ops: AsyncStoreOperations = field(init=False)
    readers: ReaderPool = field(init=False)
    credentials: CredentialCache = field(init=False)
    key_use: KeyUseThrottle = field(init=False)
    admission: Admission = field(init=False)
    models: LoadedModels = field(init=False)
    stats: InferenceStats = field(init=False)
    runner: ThreadPoolExecutor = field(init=False)
    batchers: dict[str, tuple[ServedModel, MicroBatcher]] = field(init=False)
    recent: RecentServingInputs = field(init=False)

    def __post_init__(self) -> None:
        settings = self.settings
        layout = pool_layout(
            settings.inference_replicas,
            settings.inference_threads,
            available_cpus(),
            self.gpu.available,
        )
        replicas = layout.replicas
        built: Mapping[str, Any] = {
            "layout": layout,
            **auth_context_parts(settings, self.store, self.clock),
            "admission": Admission(
                replica_share(settings.inference_workers, replicas),
                replica_share(settings.inference_queue_max, replicas),
                settings.queue_timeout_s,
            ),
            "models": LoadedModels(settings.inference_models_per_replica, self.open_model),
            "stats": InferenceStats(),
            "runner": ThreadPoolExecutor(
                max_workers=replica_share(settings.inference_workers, replicas),
                thread_name_prefix="inference",
            ),
            "batchers": {},
            "recent": RecentServingInputs(timedelta(seconds=settings.auth_cache_s), self.clock),
            "started_at": self.started_at or to_iso(self.clock()),
        }
        for name, value in built.items():
            object.__setattr__(self, name, value)

    @property
    def replica_state_dir(self) -> Path:
        return self.settings.run_dir / "inference"

    def engine_context(self, threads: int | None = None) -> EngineContext:
        return EngineContext(
            cache_dir=self.settings.artifacts_dir / "engines",
            gpu=self.gpu,
            threads=threads or self.layout.threads,
            gpu_memory_limit_mb=self.settings.gpu_memory_limit_mb,
            spin_wait=not self.layout.shares_cores,
        )

    def open_model(self, record: ServingInput) -> ServedModel:
        """The model on its engine; on a CPU pool whose runs share the cores, with a second
        session on every core for a lone request (``runs_alone``)."""
        layout = self.layout
        alone = None
        if layout.shares_cores and not self.gpu.available:
            alone = self.engine_context(threads=layout.cores)
        return open_served_model(
            record, self.engine_context(), self.settings.inference_max_batch, alone_context=alone
        )

    def read_model(self, model_id: str) -> ServingInput | None:
        """The model's serving record: a ready one as read within ``CVP_AUTH_CACHE_S``."""
        return self.recent.read(model_id, self._read_store)

    def _read_store(self, model_id: str) -> ServingInput | None:
        with self.readers.borrow() as db:
            return serving_input(db, self.settings.artifacts_dir, model_id)

    def batcher(self, model: ServedModel) -> MicroBatcher:
        """The batching queue of ``model`` (made on first use, and again when it was reopened)."""
        made = self.batchers.get(model.model_id)
        if made is None or made[0] is not model:
            settings = self.settings

            async def run_many(tensors: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
                loop = asyncio.get_running_loop()
                alone = runs_alone(tensors, self.admission.busy)
                return await loop.run_in_executor(
                    self.runner, run_together, model, tensors, settings.inference_max_batch, alone
                )

            batcher = MicroBatcher(
                run_many, settings.inference_batch_size, settings.inference_batch_wait_ms / 1000
            )
            made = (model, batcher)
            self.batchers[model.model_id] = made
        return made[1]

    def replica_state(self) -> ReplicaState:
        return ReplicaState(
            replica=self.replica,
            pid=os.getpid(),
            started_at=self.started_at,
            updated_at=to_iso(self.clock()),
            workers=self.admission.workers,
            busy=self.admission.busy,
            queued=self.admission.waiting,
            queue_max=self.admission.queue_max,
            models=tuple(
                LoadedModel(
                    model_id=model.model_id,
                    engine=model.engine,
                    loaded_at=model.loaded_at,
                    last_used_at=model.last_used_at or model.loaded_at,
                    load_seconds=model.load_seconds,
                )
                for model in self.models.held()
            ),
            stats=self.stats.snapshot(),
        )
