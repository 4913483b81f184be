"""The GA search as a job on the kernel: a Ray Tune experiment whose searcher is the GA and whose
trials queue trainings for the GPU slots (tune_space.trials).

The driver holds no slot and reserves no CPU; each trial reserves a sliver of one (Tune needs a
resource to place it) while its training holds the slot. At most ``CVP_GPU_SLOTS`` trials run at
once, so the search never queues more trainings than the slots can take, and a training a user
submits meanwhile starts when the first running trial ends. The GA's state is written into the
job's progress with every event (a trial started or ended, a generation bred), so the results page
and a cancelled search keep everything evaluated so far.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

from ray import tune

from actors.background import RayBackgroundWork
from actors.jobs.registry import Job, Outcome
from actors.jobs.reporter import JobReporter
from cvplatform.config import Settings
from cvplatform.errors import InvalidInput
from cvplatform.schemas.optimizations import OptimizationRequest
from store import queries
from store.actor import StoreClient
from store.connections import open_reader, reading
from store.operations import StoreOperations
from tune_space.genetic import GAConfig, GeneticAlgorithm
from tune_space.results import STATE_KEY
from tune_space.searcher import FITNESS, TRIAL_INDEX, GeneticSearcher
from tune_space.space import GENE_NAMES, SearchSpace, search_space
from tune_space.trials import Search, run_trial

log = logging.getLogger("cvp.ga")

CANCEL_CHECK_EVERY_S = 0.5
TRIAL_RESOURCES = {"cpu": 0.01}  # a placement for Tune; the trial's training holds the slot


def evaluate(config: dict[str, Any], settings: Settings, search: Search) -> None:
    """Tune's trainable: one trial, run in a Tune actor."""
    reader = open_reader(settings.db_path)
    try:
        end = run_trial(
            StoreOperations(StoreClient()),
            reader,
            search,
            {name: config[name] for name in GENE_NAMES},
            int(config[TRIAL_INDEX]),
            RayBackgroundWork(settings).wake_scheduler,
        )
    finally:
        reader.conn.close()
    tune.report({FITNESS: end.fitness, "training_status": end.status})


class CancelledSearch(tune.Stopper):
    """Stops the experiment once an admin cancels the search. Tune pickles its stopper with the
    experiment, so this holds the database's path, not a connection."""

    def __init__(self, db_path: Path, search_id: str) -> None:
        self._db_path, self._search_id = db_path, search_id
        self._checked_at, self._cancelled = float("-inf"), False

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        if not self._cancelled and time.monotonic() - self._checked_at >= CANCEL_CHECK_EVERY_S:
            self._checked_at = time.monotonic()
            with reading(self._db_path) as reader:
                self._cancelled = queries.cancel_requested(reader, self._search_id)
        return self._cancelled


def fitted_space(request: OptimizationRequest, training_images: int) -> SearchSpace:
    """The request's space, its batch sizes capped at the training split.

    Raises:
        InvalidInput: even the smallest batch size is larger than the training split.
    """
    space = search_space(request.gene_bounds.model_dump(mode="json", exclude_none=True))
    fitting = [size for size in space.batch_sizes if size <= training_images]
    if not fitting:
        raise InvalidInput(
            f"the smallest batch size searched ({space.batch_sizes[0]}) is larger than the "
            f"training split ({training_images} images); lower gene_bounds.batch_size.low"
        )
    return SearchSpace.from_json({**space.to_json(), "batch_size": [fitting[0], fitting[-1]]})


def experiment_name(job: Job) -> str:
    """The job's name as a folder name, for Tune's results and the dashboard."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", job.name).strip("-")[:80]


def run_optimization(job: Job, reporter: JobReporter) -> Outcome:
    """Run the search to its last generation (or a cancellation)."""
    settings = reporter.settings
    request = OptimizationRequest.model_validate(job.request)
    dataset = reporter.read(queries.dataset_by_id, request.dataset_id, "dataset")
    training_images = int((dataset.num_samples or 0) * 0.9)  # the default validation split
    algorithm = GeneticAlgorithm(
        fitted_space(request, training_images),
        GAConfig(
            population_size=request.population_size,
            generations=request.generations,
            mutation_rate=request.mutation_rate,
            crossover_rate=request.crossover_rate,
            elite_count=request.elite_count,
            seed=request.seed,
        ),
    )

    def publish(kind: str, payload: dict[str, Any]) -> None:
        reporter.event(f"ga_{kind}", payload, **{STATE_KEY: algorithm.state()})

    publish("started", {"trials_total": algorithm.trials_total()})
    search = Search(job.subject_id, job.name, job.owner_id, request, settings.gpu_queue_max)
    tuner = tune.Tuner(
        tune.with_resources(
            tune.with_parameters(evaluate, settings=settings, search=search), TRIAL_RESOURCES
        ),
        tune_config=tune.TuneConfig(
            search_alg=GeneticSearcher(algorithm, on_event=publish),
            num_samples=algorithm.trials_total(),
            max_concurrent_trials=settings.gpu_slots,
        ),
        run_config=tune.RunConfig(
            name=experiment_name(job),
            storage_path=str(settings.artifacts_dir / "optimizations" / job.subject_id),
            stop=CancelledSearch(settings.db_path, job.subject_id),
            verbose=0,
        ),
    )
    tuner.fit()
    cancel_leftover_trials(reporter, job.subject_id)
    cancelled = reporter.should_stop()
    best = algorithm.best()
    publish("ended", {"cancelled": cancelled, "best_fitness": best.fitness if best else None})
    return outcome_of(algorithm, cancelled)


def cancel_leftover_trials(reporter: JobReporter, search_id: str) -> None:
    """Trainings still queued or running when the experiment stopped (Tune ends its trials'
    actors on a cancellation, before they could cancel their trainings)."""
    page = queries.list_jobs(reporter.reader, {"parent_id": search_id}, 10_000, 0)
    for training in page.items:
        if training.status in ("queued", "running"):
            reporter.ops.request_cancel(job_id=training.id)


def outcome_of(algorithm: GeneticAlgorithm, cancelled: bool) -> Outcome:
    state = {STATE_KEY: algorithm.state()}
    if cancelled:
        return Outcome("cancelled", "cancelled on request; the trials evaluated are kept", state)
    best = algorithm.best()
    if best is None:
        return Outcome("failed", "every trial failed: see the trials' trainings for why", state)
    return Outcome(
        "completed",
        result={
            **state,
            "best_fitness": best.fitness,
            "best_hyperparameters": dict(best.genes),
            "best_trial": best.index,
            "generations": algorithm.generation_summary(),
        },
    )
