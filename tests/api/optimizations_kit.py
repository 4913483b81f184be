"""What the in-process tests of GA searches share: a model and a dataset made ready, and a real
GA run through the store as the driver and its trials would write it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cvplatform.schemas.optimizations import OptimizationRequest
from tests.api_harness import (
    Caller,
    InProcessApi,
    InProcessStore,
    SteppedClock,
)
from tests.helpers import unique
from tune_space.genetic import GAConfig, GeneticAlgorithm
from tune_space.space import search_space
from tune_space.trials import Search, trial_request

OPTIMIZATIONS = "/api/v1/optimizations"
SAMPLES = 20  # the dataset's size: a training split of 18 at the default validation split 0.1
FAILED_TRIAL = 2  # the trial whose training fails
# Batch sizes as the driver caps them to the training split of 18 (tune_space.driver.fitted_space).
BOUNDS = {"learning_rate": {"low": 1e-4, "high": 1e-2}, "batch_size": {"low": 8, "high": 16}}
SEARCH = {
    "population_size": 4,
    "generations": 3,
    "elite_count": 1,
    "seed": 7,
    "gene_bounds": BOUNDS,
}
CSV_HEADER = [
    "index",
    "generation",
    "operation",
    "parents",
    "learning_rate",
    "batch_size",
    "optimizer",
    "weight_decay",
    "dropout",
    "status",
    "fitness",
    "duration_s",
    "job_id",
    "error",
]


def make_ready(store: InProcessStore, model_id: str | None, dataset_id: str | None) -> None:
    """What the model's conversion and the dataset's validation would record (neither runs
    here); None leaves that one as it is."""
    if model_id is not None:
        store.run_sync("set_model_status", model_id=model_id, status="ready")
    if dataset_id is not None:
        outcome = {
            "layout": "class_folders",
            "content_hash": "0" * 64,
            "num_samples": SAMPLES,
            "num_classes": 3,
            "class_names": ["a", "b", "c"],
            "total_bytes": 1000,
            "details": {},
        }
        store.run_sync("finish_validation", dataset_id=dataset_id, outcome=outcome)


def fitness_of(genes: dict[str, Any]) -> float:
    """A deterministic fitness that peaks at learning rate 1e-3, no dropout, adam."""
    fitness = 1 - abs(math.log10(float(genes["learning_rate"])) + 3) / 4
    fitness -= float(genes["dropout"]) / 10 + (0 if genes["optimizer"] == "adam" else 0.05)
    return round(fitness, 6)


@dataclass
class TrialRun:
    job_id: str
    duration_s: float
    fitness: float | None


def run_search(
    store: InProcessStore, clock: SteppedClock, search_job: dict[str, Any]
) -> tuple[GeneticAlgorithm, dict[int, TrialRun]]:
    """Drive a real, seeded GA as the driver does: each individual a training row (a child of the
    search) claimed and finished with its fitness, trial ``FAILED_TRIAL`` failed; then the GA's
    state written into the search's progress."""
    request = OptimizationRequest.model_validate(search_job["request"])
    store.run_sync("claim_job", job_id=search_job["id"])
    algorithm = GeneticAlgorithm(
        search_space(request.gene_bounds.model_dump(mode="json", exclude_none=True)),
        GAConfig(
            request.population_size,
            request.generations,
            request.mutation_rate,
            request.crossover_rate,
            request.elite_count,
            request.seed,
        ),
    )
    search = Search(search_job["id"], search_job["name"], search_job["owner_id"], request, 100)
    runs: dict[int, TrialRun] = {}
    while (individual := algorithm.next_individual()) is not None:
        trial = trial_request(search, individual.genes, individual.index)
        training = store.run_sync(
            "enqueue_job",
            job={
                "id": unique("trial"),
                "kind": "training",
                "name": f"{search.name} · trial {individual.index}",
                "owner_id": search.owner_id,
                "model_id": trial.model_id,
                "dataset_id": trial.dataset_id,
                "request": trial.model_dump(mode="json"),
                "parent_id": search.job_id,
            },
            max_queued=100,
        )
        store.run_sync("claim_job", job_id=training.id)
        duration_s = 1.0 + individual.index
        clock.advance(duration_s)
        fitness = None if individual.index == FAILED_TRIAL else fitness_of(individual.genes)
        if fitness is None:
            store.run_sync("finish_job", job_id=training.id, status="failed", error="diverged")
        else:
            result = {"fitness": fitness}
            store.run_sync("finish_job", job_id=training.id, status="completed", result=result)
        algorithm.record(individual.index, fitness)
        runs[individual.index] = TrialRun(training.id, duration_s, fitness)
    assert algorithm.finished
    store.run_sync("record_job_progress", job_id=search.job_id, progress={"ga": algorithm.state()})
    return algorithm, runs


async def start_search(api: InProcessApi, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    answer = await api.http.post(OPTIMIZATIONS, headers=caller.headers, json=body)
    assert answer.status_code == 202, answer.text
    job: dict[str, Any] = answer.json()
    return job
