"""The GA's operators: tournament selection, crossover and mutation, pure functions of their
inputs and a seeded ``numpy.random.Generator``.

Every operator returns genes clamped into the space, so a child is always a valid individual.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from tune_space.space import GENE_NAMES, LOG_GENES, Genes, SearchSpace

# BLX-alpha: a blended gene is drawn from the parents' interval widened by alpha of its width on
# each side, so a population can still reach past its parents instead of only shrinking inward.
BLEND_ALPHA = 0.5
# A mutation step's standard deviation, as a share of the gene's range (its log range for the
# log-scale genes: 0.15 of the default learning-rate range is a factor of about 4).
MUTATION_SCALE = 0.15
CATEGORICAL_GENES = ("batch_size", "optimizer")


class Contender(Protocol):
    @property
    def status(self) -> str: ...

    @property
    def fitness(self) -> float | None: ...


C = TypeVar("C", bound=Contender)


def ranking_fitness(individual: Contender) -> float:
    """The fitness selection compares: a failed or unevaluated individual ranks below any other."""
    if individual.status != "completed" or individual.fitness is None:
        return -math.inf
    return individual.fitness


def tournament(population: Sequence[C], rng: np.random.Generator, size: int) -> C:
    """The fittest of ``size`` individuals drawn without replacement (all of them when fewer);
    among equally fit ones, the first drawn."""
    if not population:
        raise ValueError("a tournament needs at least one individual")
    drawn = rng.choice(len(population), size=min(size, len(population)), replace=False)
    return max((population[int(position)] for position in drawn), key=ranking_fitness)


def crossover(
    a: Mapping[str, Any], b: Mapping[str, Any], space: SearchSpace, rng: np.random.Generator
) -> Genes:
    """A child of ``a`` and ``b``: batch size and optimizer from either parent at even odds;
    learning rate and weight decay blended in log space, dropout blended linearly (BLX-alpha)."""
    child: dict[str, Any] = {}
    for gene in GENE_NAMES:
        if gene in CATEGORICAL_GENES:
            child[gene] = a[gene] if rng.random() < 0.5 else b[gene]
            continue
        to_axis, from_axis = _axis(gene)
        low, high = sorted((to_axis(float(a[gene])), to_axis(float(b[gene]))))
        spread = high - low
        child[gene] = from_axis(
            rng.uniform(low - BLEND_ALPHA * spread, high + BLEND_ALPHA * spread)
        )
    return space.clamp(child)


def mutate(
    genes: Mapping[str, Any], space: SearchSpace, rng: np.random.Generator, rate: float
) -> Genes:
    """Each gene mutated with probability ``rate`` (0: none, 1: every one that can change)."""
    mutated = dict(genes)
    for gene in GENE_NAMES:
        if rng.random() < rate:
            mutated[gene] = mutate_gene(gene, genes[gene], space, rng)
    return space.clamp(mutated)


def mutate_one(genes: Mapping[str, Any], space: SearchSpace, rng: np.random.Generator) -> Genes:
    """One gene, picked at random among those the space lets change, mutated: the smallest step
    that makes a duplicate child new."""
    changeable = [gene for gene in GENE_NAMES if _can_change(gene, space)]
    mutated = dict(genes)
    if changeable:
        gene = changeable[int(rng.integers(len(changeable)))]
        mutated[gene] = mutate_gene(gene, genes[gene], space, rng)
    return space.clamp(mutated)


def mutate_gene(gene: str, value: Any, space: SearchSpace, rng: np.random.Generator) -> Any:
    """A new value for one gene: a log-normal step (learning rate, weight decay), a gaussian step
    (dropout), the next power of two up or down (batch size), another choice (optimizer).

    A step that leaves the bounds is taken the other way, so at a bound the gene still moves.
    """
    if gene == "optimizer":
        others = [choice for choice in space.optimizer if choice != value]
        return others[int(rng.integers(len(others)))] if others else value
    if gene == "batch_size":
        sizes = space.batch_sizes
        position = sizes.index(space.nearest_batch_size(float(value)))
        neighbours = [p for p in (position - 1, position + 1) if 0 <= p < len(sizes)]
        return sizes[neighbours[int(rng.integers(len(neighbours)))]] if neighbours else value
    to_axis, from_axis = _axis(gene)
    low, high = (to_axis(bound) for bound in space.bounds(gene))
    start = to_axis(float(value))
    step = rng.normal(0.0, MUTATION_SCALE * (high - low)) if high > low else 0.0
    moved = start + step if low <= start + step <= high else start - step
    return from_axis(min(high, max(low, moved)))


def _can_change(gene: str, space: SearchSpace) -> bool:
    if gene == "optimizer":
        return len(space.optimizer) > 1
    if gene == "batch_size":
        return len(space.batch_sizes) > 1
    low, high = space.bounds(gene)
    return high > low


def _axis(gene: str) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """To and from the axis on which a gene is blended and stepped."""
    if gene in LOG_GENES:
        return math.log, math.exp
    return float, float
