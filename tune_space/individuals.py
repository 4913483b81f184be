"""What a GA search is made of: its configuration and its individuals, as JSON-able values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cvplatform.errors import InvalidInput
from tune_space.space import Genes

# How an individual came to be: drawn at random (generation 0, or where breeding found nothing
# new), carried over as an elite, or bred; a "clone" is a parent copied because neither operator
# fired, then mutated one gene at a time until it differs from every individual before it.
OPERATIONS = ("random", "elite", "crossover", "mutation", "crossover+mutation", "clone")


@dataclass
class Individual:
    index: int  # 0.. in order of creation, unique over the whole run
    generation: int
    genes: Genes
    parents: list[int]  # indices; [] for a random one
    operation: str
    status: str = "pending"  # "pending" | "running" | "completed" | "failed"
    fitness: float | None = None  # None unless completed

    @property
    def recorded(self) -> bool:
        return self.status in ("completed", "failed")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "genes": dict(self.genes), "parents": list(self.parents)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Individual:
        return cls(
            index=int(data["index"]),
            generation=int(data["generation"]),
            genes=dict(data["genes"]),
            parents=[int(parent) for parent in data["parents"]],
            operation=str(data["operation"]),
            status=str(data["status"]),
            fitness=None if data["fitness"] is None else float(data["fitness"]),
        )


@dataclass(frozen=True)
class GAConfig:
    population_size: int
    generations: int
    mutation_rate: float  # per gene
    crossover_rate: float
    elite_count: int
    seed: int
    tournament_size: int = 3

    def __post_init__(self) -> None:
        problems = [
            f"{name} {rule}"
            for name, ok, rule in [
                ("population_size", self.population_size >= 2, "must be at least 2"),
                ("generations", self.generations >= 1, "must be at least 1"),
                ("mutation_rate", 0 <= self.mutation_rate <= 1, "must lie in [0, 1]"),
                ("crossover_rate", 0 <= self.crossover_rate <= 1, "must lie in [0, 1]"),
                (
                    "elite_count",
                    0 <= self.elite_count < self.population_size,
                    "must lie in [0, population_size - 1]",
                ),
                ("tournament_size", self.tournament_size >= 1, "must be at least 1"),
            ]
            if not ok
        ]
        if problems:
            raise InvalidInput("; ".join(problems))

    def trials_total(self) -> int:
        return self.population_size + (self.generations - 1) * (
            self.population_size - self.elite_count
        )
