"""The genetic algorithm, generation by generation: pure, seeded, and resumable from JSON.

Generation 0 is drawn at random. Each next one is bred when the last individual of the current
one is recorded: its ``elite_count`` fittest completed individuals are carried over unchanged
("elite": not trained again, their fitness carried), then offspring fill the population, each
from tournament selection, crossover at the crossover rate and mutation at the mutation rate.

No individual is trained twice. A child equal to one already created in this run is mutated one
gene at a time until it is new (a child that neither operator changed, a "clone" of its parent,
always is); when that fails, a fresh random individual takes its place. When the space holds
nothing new any more (a tiny, narrowed space), the generation is cut short at what is new, and a
generation with nothing new ends the search early: ``finished`` turns true and ``trials_total()``
(the planned number) is then more than was trained.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from tune_space.individuals import OPERATIONS, GAConfig, Individual
from tune_space.operators import (
    crossover,
    mutate,
    mutate_gene,
    mutate_one,
    ranking_fitness,
    tournament,
)
from tune_space.space import GeneKey, Genes, SearchSpace

__all__ = [
    "OPERATIONS",
    "GAConfig",
    "GeneticAlgorithm",
    "Individual",
    "crossover",
    "mutate",
    "mutate_gene",
    "mutate_one",
    "tournament",
]

STATE_FORMAT = 1
# Single-gene mutations tried to make a duplicate child new, then random draws tried, before the
# space counts as exhausted (a space with few members is enumerated instead of drawn from).
REPAIR_ATTEMPTS = 50
SAMPLE_ATTEMPTS = 50


@dataclass
class _Child:
    genes: Genes
    parents: list[int] = field(default_factory=list)
    operation: str = "random"


class GeneticAlgorithm:
    """The search's state and its steps: hand out individuals, record their fitness, breed."""

    def __init__(self, space: SearchSpace, config: GAConfig) -> None:
        self._space = space
        self._config = config
        self._rng = np.random.default_rng(config.seed)
        self._individuals: list[Individual] = []
        self._keys: set[GeneKey] = set()
        self._generation = 0
        self._exhausted = False
        self._add_generation(0, [], self._random_children(config.population_size))

    @property
    def space(self) -> SearchSpace:
        return self._space

    @property
    def config(self) -> GAConfig:
        return self._config

    @property
    def generation(self) -> int:
        """The generation being evaluated now (the last one, once finished)."""
        return self._generation

    @property
    def individuals(self) -> list[Individual]:
        """Every individual created in this run, by index."""
        return list(self._individuals)

    @property
    def exhausted(self) -> bool:
        """True when the search ended early because the space held nothing new."""
        return self._exhausted

    @property
    def finished(self) -> bool:
        last = self._generation == self._config.generations - 1
        current = self.members(self._generation)
        return self._exhausted or (last and all(member.recorded for member in current))

    def members(self, generation: int) -> list[Individual]:
        return [member for member in self._individuals if member.generation == generation]

    def trials_total(self) -> int:
        """The trainings planned: the first generation, then the new ones of each next."""
        return self._config.trials_total()

    def next_individual(self) -> Individual | None:
        """The next individual to train (now "running"), or None: every individual of the current
        generation is handed out and some are unrecorded (wait), or the search is finished."""
        if self.finished:
            return None
        for member in self.members(self._generation):
            if member.status == "pending":
                member.status = "running"
                return member
        return None

    def record(self, index: int, fitness: float | None) -> None:
        """A trial's result. None, NaN or infinity means it failed: recorded as "failed" with no
        fitness, and ranked below every completed individual. The last result of a generation
        breeds the next at once.

        Raises:
            ValueError: no individual has this index, or it is not running.
        """
        if not 0 <= index < len(self._individuals):
            raise ValueError(f"no individual {index} in this search")
        individual = self._individuals[index]
        if individual.status != "running":
            raise ValueError(f"individual {index} is {individual.status}, not running")
        value = None if fitness is None else float(fitness)
        if value is None or not math.isfinite(value):
            individual.status, individual.fitness = "failed", None
        else:
            individual.status, individual.fitness = "completed", value
        if not self.finished and all(m.recorded for m in self.members(self._generation)):
            self._breed_next()

    def generation_complete(self, generation: int) -> bool:
        members = self.members(generation)
        return bool(members) and all(member.recorded for member in members)

    def best(self) -> Individual | None:
        """The fittest completed individual (the earliest among equals: not its elite copies)."""
        completed = [member for member in self._individuals if member.status == "completed"]
        return max(completed, key=lambda m: (ranking_fitness(m), -m.index), default=None)

    def generation_summary(self) -> list[dict[str, Any]]:
        """Per generation so far: best, mean and worst fitness of its completed individuals (elites
        included; None when none completed), and how many completed and failed."""
        return [self._summary_row(generation) for generation in range(self._generation + 1)]

    def _summary_row(self, generation: int) -> dict[str, Any]:
        members = self.members(generation)
        fitness = [m.fitness for m in members if m.status == "completed" and m.fitness is not None]
        return {
            "generation": generation,
            "best": max(fitness, default=None),
            "mean": sum(fitness) / len(fitness) if fitness else None,
            "worst": min(fitness, default=None),
            "completed": len(fitness),
            "failed": sum(1 for member in members if member.status == "failed"),
        }

    def state(self) -> dict[str, Any]:
        """Everything needed to continue the same sequence, as JSON-able values."""
        return {
            "format": STATE_FORMAT,
            "config": asdict(self._config),
            "space": self._space.to_json(),
            "generation": self._generation,
            "exhausted": self._exhausted,
            "rng": self._rng.bit_generator.state,
            "individuals": [individual.to_json() for individual in self._individuals],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> GeneticAlgorithm:
        """The algorithm as ``state()`` saw it: it goes on with the same sequence."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"unknown GA state format {state.get('format')!r}")
        algorithm = cls.__new__(cls)
        algorithm._space = SearchSpace.from_json(state["space"])
        algorithm._config = GAConfig(**state["config"])
        algorithm._rng = np.random.default_rng()
        algorithm._rng.bit_generator.state = dict(state["rng"])
        algorithm._individuals = [Individual.from_json(data) for data in state["individuals"]]
        algorithm._keys = {algorithm._space.key(m.genes) for m in algorithm._individuals}
        algorithm._generation = int(state["generation"])
        algorithm._exhausted = bool(state["exhausted"])
        return algorithm

    # --- breeding --------------------------------------------------------------------------

    def _breed_next(self) -> None:
        previous = self.members(self._generation)
        completed = sorted(
            (member for member in previous if member.status == "completed"),
            key=lambda member: (-ranking_fitness(member), member.index),
        )
        elites = completed[: self._config.elite_count]
        wanted = self._config.population_size - self._config.elite_count
        children = self._children(wanted, lambda: self._offspring(previous))
        if not children:
            self._exhausted = True
            return
        self._generation += 1
        self._add_generation(self._generation, elites, children)

    def _add_generation(
        self, generation: int, elites: Sequence[Individual], children: Sequence[_Child]
    ) -> None:
        for elite in elites:
            self._individuals.append(
                Individual(
                    len(self._individuals),
                    generation,
                    dict(elite.genes),
                    [elite.index],
                    "elite",
                    status="completed",
                    fitness=elite.fitness,
                )
            )
        for child in children:
            self._individuals.append(
                Individual(
                    len(self._individuals), generation, child.genes, child.parents, child.operation
                )
            )

    def _random_children(self, wanted: int) -> list[_Child]:
        return self._children(wanted, lambda: None)

    def _children(self, wanted: int, breed: Callable[[], _Child | None]) -> list[_Child]:
        """Up to ``wanted`` new children; fewer when the space runs out of new individuals."""
        children: list[_Child] = []
        for _ in range(wanted):
            child = breed() or self._fresh_child()
            if child is None:
                break
            self._keys.add(self._space.key(child.genes))
            children.append(child)
        return children

    def _is_new(self, genes: Genes) -> bool:
        return self._space.key(genes) not in self._keys

    def _offspring(self, population: Sequence[Individual]) -> _Child | None:
        """A child by selection, crossover and mutation, made new if it is a duplicate; None when
        no new child could be made from it (a fresh random one is tried next)."""
        config, rng = self._config, self._rng
        first = tournament(population, rng, config.tournament_size)
        crossed = rng.random() < config.crossover_rate
        genes, parents = dict(first.genes), [first.index]
        if crossed:
            rivals = [member for member in population if member is not first] or [first]
            second = tournament(rivals, rng, config.tournament_size)
            genes = crossover(first.genes, second.genes, self._space, rng)
            parents.append(second.index)
        mutated = mutate(genes, self._space, rng, config.mutation_rate)
        mutated_by_rate = self._space.key(mutated) != self._space.key(genes)
        if self._is_new(mutated):
            return _Child(mutated, parents, _operation(crossed, mutated_by_rate, repaired=False))
        repaired = self._repaired(mutated)
        if repaired is None:
            return None
        return _Child(repaired, parents, _operation(crossed, mutated_by_rate, repaired=True))

    def _repaired(self, genes: Genes) -> Genes | None:
        """The first new individual of a few single-gene mutations in a row, or None."""
        for _ in range(REPAIR_ATTEMPTS):
            genes = mutate_one(genes, self._space, self._rng)
            if self._is_new(genes):
                return genes
        return None

    def _fresh_child(self) -> _Child | None:
        """A random individual not created before, or None when the space holds none."""
        for _ in range(SAMPLE_ATTEMPTS):
            genes = self._space.sample(self._rng)
            if self._is_new(genes):
                return _Child(genes)
        members = self._space.finite_members()
        unseen = [genes for genes in members or [] if self._is_new(genes)]
        return _Child(unseen[int(self._rng.integers(len(unseen)))]) if unseen else None


def _operation(crossed: bool, mutated_by_rate: bool, repaired: bool) -> str:
    """What made a child. A child neither operator changed is a "clone" of its parent: always a
    duplicate, it is then mutated until new, but keeps the name that says no operator fired."""
    if crossed:
        return "crossover+mutation" if mutated_by_rate or repaired else "crossover"
    return "mutation" if mutated_by_rate else "clone"
