"""GA hyperparameter searches: the request, the trials' lineage and the results."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from cvplatform.schemas.base import Page, WireModel
from cvplatform.schemas.jobs import AugmentationConfig, JobStatus, Optimizer, TrainingRequest


class NumericBounds(WireModel):
    low: float
    high: float


class GeneBounds(WireModel):
    """Narrower bounds for the genes (each inside its default range; the search never widens)."""

    learning_rate: NumericBounds | None = Field(None, description="default 1e-5 to 1e-1, log")
    batch_size: NumericBounds | None = Field(None, description="default 8 to 128, powers of 2")
    optimizer: list[Optimizer] | None = Field(None, description="default all four")
    weight_decay: NumericBounds | None = Field(None, description="default 1e-6 to 1e-2, log")
    dropout: NumericBounds | None = Field(None, description="default 0 to 0.9")


class OptimizationRequest(WireModel):
    """A GA search over learning rate, batch size, optimizer, weight decay and dropout; every
    trial is a training of ``epochs_per_trial`` epochs on a GPU slot."""

    model_id: str = Field(min_length=1, max_length=64)
    dataset_id: str = Field(min_length=1, max_length=64)
    population_size: int = Field(8, ge=2, le=64)
    generations: int = Field(5, ge=1, le=50)
    mutation_rate: float = Field(0.2, ge=0, le=1, description="per gene")
    crossover_rate: float = Field(0.7, ge=0, le=1)
    elite_count: int = Field(1, ge=0, description="kept unchanged (not trained again)")
    seed: int = Field(0, ge=0)
    epochs_per_trial: int = Field(3, ge=1, le=100)
    image_size: tuple[int, int] | None = Field(
        None, description="height, width; default as for a training"
    )
    gene_bounds: GeneBounds = GeneBounds()
    augmentation: AugmentationConfig = Field(
        AugmentationConfig(), description="for every trial and for train-best, as for a training"
    )

    @model_validator(mode="after")
    def _check(self) -> OptimizationRequest:
        if self.elite_count >= self.population_size:
            raise ValueError(
                f"elite_count ({self.elite_count}) must be smaller than population_size "
                f"({self.population_size}): a generation needs at least one new individual"
            )
        return self

    def trials_total(self) -> int:
        """Trainings the search runs: the first generation, then the new ones of each next."""
        return self.population_size + (self.generations - 1) * (
            self.population_size - self.elite_count
        )


class TrialRequest(TrainingRequest):
    """One GA trial: a training whose result is its fitness, registering no model."""

    optimization_id: str
    trial_index: int = Field(ge=0)


class TrialOut(WireModel):
    index: int
    generation: int
    operation: str = Field(description="random, elite, crossover, mutation, crossover+mutation")
    parents: list[int]
    genes: dict[str, Any]
    status: Literal["pending", "running", "completed", "failed"]
    fitness: float | None = Field(description="validation accuracy (mAP50 for detection)")
    job_id: str | None = Field(description="the training that evaluated it (an elite: none)")
    duration_s: float | None
    error: str | None = None


class GenerationOut(WireModel):
    generation: int
    best: float | None
    mean: float | None
    worst: float | None
    completed: int
    failed: int


class OptimizationOut(WireModel):
    id: str
    name: str
    status: JobStatus
    request: OptimizationRequest
    trials_total: int
    trials_done: int
    best_fitness: float | None
    best_hyperparameters: dict[str, Any] | None
    best_trial: int | None
    generations: list[GenerationOut]
    trials: list[TrialOut]
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    duration_s: float | None


OptimizationPage = Page[OptimizationOut]
