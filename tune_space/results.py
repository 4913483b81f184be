"""A GA search's results as the API shows them: built from its job (the GA's state, which the
driver writes with every event) and its trials' trainings. Pure: records in, wire models out."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cvplatform.schemas.optimizations import (
    GenerationOut,
    OptimizationOut,
    OptimizationRequest,
    TrialOut,
)
from store.records import JobRecord
from tune_space.genetic import GeneticAlgorithm, Individual
from tune_space.space import GENE_NAMES

STATE_KEY = "ga"  # where the driver keeps the GA's state in the job's progress

LINEAGE_COLUMNS = (
    "index",
    "generation",
    "operation",
    "parents",
    *GENE_NAMES,
    "status",
    "fitness",
    "duration_s",
    "job_id",
    "error",
)


def seconds_between(started: str | None, finished: str | None) -> float | None:
    if not started or not finished:
        return None
    return round(
        (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds(), 3
    )


def algorithm_of(job: JobRecord) -> GeneticAlgorithm | None:
    """The GA as its driver last wrote it; None before the driver started."""
    state = (job.result or {}).get(STATE_KEY) or job.progress.get(STATE_KEY)
    return GeneticAlgorithm.from_state(state) if state else None


def trial_jobs(children: Sequence[JobRecord]) -> dict[int, JobRecord]:
    """The trainings of a search by trial index (the latest, should one index appear twice)."""
    by_index: dict[int, JobRecord] = {}
    for child in children:
        index = child.request.get("trial_index")
        if isinstance(index, int):
            by_index[index] = child
    return by_index


def _status(individual: Individual, training: JobRecord | None) -> str:
    # A trial handed out but never recorded (its search was cancelled, or stopped) whose
    # training has ended did not produce a fitness: it failed, whatever the GA last wrote.
    ended = training is not None and training.status in ("completed", "failed", "cancelled")
    if individual.status in ("pending", "running") and ended:
        return "failed"
    return individual.status


def _trial(individual: Individual, training: JobRecord | None) -> TrialOut:
    return TrialOut(
        index=individual.index,
        generation=individual.generation,
        operation=individual.operation,
        parents=list(individual.parents),
        genes=dict(individual.genes),
        status=_status(individual, training),
        fitness=individual.fitness,
        job_id=training.id if training else None,
        duration_s=seconds_between(training.started_at, training.finished_at) if training else None,
        error=training.error if training else None,
    )


def optimization_out(job: JobRecord, children: Sequence[JobRecord]) -> OptimizationOut:
    """The search's page: best config, fitness per generation, every trial with its lineage."""
    request = OptimizationRequest.model_validate(job.request)
    algorithm = algorithm_of(job)
    trainings = trial_jobs(children)
    trials = [
        _trial(individual, trainings.get(individual.index))
        for individual in (algorithm.individuals if algorithm else [])
    ]
    best = algorithm.best() if algorithm else None
    generations = [
        GenerationOut.model_validate(row)
        for row in (algorithm.generation_summary() if algorithm else [])
    ]
    return OptimizationOut(
        id=job.id,
        name=job.name,
        status=job.status,
        request=request,
        trials_total=request.trials_total(),
        trials_done=sum(
            1 for trial in trials if trial.status in ("completed", "failed") and trial.job_id
        ),
        best_fitness=best.fitness if best else None,
        best_hyperparameters=dict(best.genes) if best else None,
        best_trial=best.index if best else None,
        generations=generations,
        trials=trials,
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        duration_s=seconds_between(job.started_at, job.finished_at),
    )


def lineage_csv(optimization: OptimizationOut) -> str:
    """One row per trial: genes, parents (space-separated indices), the operation, the outcome."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LINEAGE_COLUMNS)
    for trial in optimization.trials:
        row: Mapping[str, Any] = {
            **trial.genes,
            "index": trial.index,
            "generation": trial.generation,
            "operation": trial.operation,
            "parents": " ".join(str(parent) for parent in trial.parents),
            "status": trial.status,
            "fitness": "" if trial.fitness is None else trial.fitness,
            "duration_s": "" if trial.duration_s is None else trial.duration_s,
            "job_id": trial.job_id or "",
            "error": trial.error or "",
        }
        writer.writerow([row.get(column, "") for column in LINEAGE_COLUMNS])
    return buffer.getvalue()
