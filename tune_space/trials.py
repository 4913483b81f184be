"""One GA trial: a training queued for a GPU slot like any other, waited on to its end.

The trial itself holds no slot: it queues the training (oldest first, so a training a user
submitted while the search runs starts before the search's next trial), wakes the scheduler, and
waits. If the search is cancelled, it cancels its training. Plain code: the store, the reader,
the clock and the scheduler's wake-up are passed in.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from cvplatform.errors import QueueFull
from cvplatform.schemas import Hyperparameters
from cvplatform.schemas.optimizations import OptimizationRequest, TrialRequest
from store import queries
from store.operations import StoreOperations
from store.records import JobRecord
from tune_space.space import GENE_NAMES

FINAL = ("completed", "failed", "cancelled")
POLL_S = 0.5
QUEUE_FULL_RETRY_S = 5.0


@dataclass(frozen=True)
class Search:
    """What every trial of one search shares."""

    job_id: str
    name: str
    owner_id: int | None
    request: OptimizationRequest
    gpu_queue_max: int


@dataclass(frozen=True)
class TrialEnd:
    fitness: float  # NaN when the training failed or was cancelled
    job_id: str | None
    status: str
    error: str | None


def trial_request(search: Search, genes: Mapping[str, Any], index: int) -> TrialRequest:
    """The training that evaluates one individual: its genes over the search's settings."""
    base = search.request
    hyperparameters = Hyperparameters.model_validate(
        {
            **{name: genes[name] for name in GENE_NAMES},
            "max_epochs": base.epochs_per_trial,
            "image_size": base.image_size,
            "seed": base.seed,
            "augmentation": base.augmentation,
        }
    )
    return TrialRequest(
        model_id=base.model_id,
        dataset_id=base.dataset_id,
        hyperparameters=hyperparameters,
        optimization_id=search.job_id,
        trial_index=index,
    )


def queue_trial(
    ops: StoreOperations,
    search: Search,
    request: TrialRequest,
    cancelled: Callable[[], bool],
    sleep: Callable[[float], None] = time.sleep,
) -> JobRecord | None:
    """Queue the trial's training; while the GPU queue is full, try again every few seconds.
    None when the search was cancelled first."""
    while not cancelled():
        try:
            return ops.enqueue_job(
                job={
                    "id": uuid.uuid4().hex,
                    "kind": "training",
                    "name": f"{search.name} · trial {request.trial_index}",
                    "owner_id": search.owner_id,
                    "model_id": request.model_id,
                    "dataset_id": request.dataset_id,
                    "request": request.model_dump(mode="json"),
                    "parent_id": search.job_id,
                },
                max_queued=search.gpu_queue_max,
            )
        except QueueFull:
            sleep(QUEUE_FULL_RETRY_S)
    return None


def wait_for_training(
    ops: StoreOperations,
    reader: sqlite_utils.Database,
    search: Search,
    training_id: str,
    sleep: Callable[[float], None] = time.sleep,
) -> JobRecord:
    """Wait for the training to end; cancel it if the search is cancelled meanwhile."""
    cancel_sent = False
    while True:
        training = queries.required(queries.job_by_id, reader, training_id, "job")
        if training.status in FINAL:
            return training
        if not cancel_sent and queries.cancel_requested(reader, search.job_id):
            ops.request_cancel(job_id=training_id)
            cancel_sent = True
        sleep(POLL_S)


def run_trial(
    ops: StoreOperations,
    reader: sqlite_utils.Database,
    search: Search,
    genes: Mapping[str, Any],
    index: int,
    wake_scheduler: Callable[[], object],
    sleep: Callable[[float], None] = time.sleep,
) -> TrialEnd:
    """Queue, wait, and read the fitness (NaN for a failed or cancelled training)."""
    request = trial_request(search, genes, index)
    training = queue_trial(
        ops, search, request, lambda: queries.cancel_requested(reader, search.job_id), sleep
    )
    if training is None:
        return TrialEnd(math.nan, None, "cancelled", "the search was cancelled")
    wake_scheduler()
    ended = wait_for_training(ops, reader, search, training.id, sleep)
    fitness = (ended.result or {}).get("fitness") if ended.status == "completed" else None
    return TrialEnd(
        math.nan if fitness is None else float(fitness), ended.id, ended.status, ended.error
    )
