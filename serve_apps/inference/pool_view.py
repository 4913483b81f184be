"""What the management API sees of the inference pool: warming a model on it, and what each
replica holds and has counted (the state files the replicas publish).

The platform warms through a Serve handle (``deployment.warm_through_serve``); the in-process
tests warm an in-process replica state. Neither is Ray here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvplatform.inference.replica_state import ReplicaState, pool_summary, read_live
from cvplatform.inference.served import check_servable
from serve_apps.inference.state import InferenceState


@dataclass(frozen=True)
class InferencePoolView:
    state_dir: Path  # <run dir>/inference: one file per live replica
    warm_model: Callable[[str], Awaitable[dict[str, Any]]]

    async def warm(self, model_id: str) -> dict[str, Any]:
        """Load a ready model on a replica now: that replica and the model as loaded."""
        return await self.warm_model(model_id)

    def replicas(self) -> list[ReplicaState]:
        return read_live(self.state_dir)

    def summary(self) -> dict[str, Any]:
        return pool_summary(self.replicas())


def warm_in_process(state: InferenceState) -> Callable[[str], Awaitable[dict[str, Any]]]:
    """Warming that loads the model on ``state``'s replica, in this process."""

    async def warm(model_id: str) -> dict[str, Any]:
        record = check_servable(state.read_model(model_id), model_id)
        model = await state.models.load(record)
        return {"replica": state.replica, "model": model.describe()}

    return warm
