"""The genes a GA search tunes, their bounds, and how an individual is drawn, clamped and named.

Two genes are log scale (learning rate, weight decay): they are sampled, blended and mutated in
log space, where a step from 1e-4 to 1e-3 weighs as much as one from 1e-3 to 1e-2. Batch size
takes only powers of two; optimizer is categorical; dropout is linear.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cvplatform.errors import GeneBoundsError

GENE_NAMES = ("learning_rate", "batch_size", "optimizer", "weight_decay", "dropout")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
LOG_GENES = ("learning_rate", "weight_decay")
FLOAT_GENES = ("learning_rate", "weight_decay", "dropout")
NUMERIC_GENES = ("learning_rate", "batch_size", "weight_decay", "dropout")

Genes = dict[str, float | int | str]
GeneKey = tuple[float, int, str, float, float]

# Two individuals whose floats agree to this many significant digits are the same individual.
KEY_DIGITS = 6


def rounded(value: float) -> float:
    return float(f"{value:.{KEY_DIGITS}g}")


def powers_of_two(low: float, high: float) -> tuple[int, ...]:
    """The powers of two in [low, high], smallest first."""
    if high < 1 or low > high:
        return ()
    first = max(0, math.ceil(math.log2(max(low, 1))))
    last = math.floor(math.log2(high))
    return tuple(2**exponent for exponent in range(first, last + 1))


@dataclass(frozen=True)
class SearchSpace:
    """The bounds of every gene (inclusive); build one with ``search_space`` to validate it."""

    learning_rate: tuple[float, float] = (1e-5, 1e-1)
    batch_size: tuple[int, int] = (8, 128)
    optimizer: tuple[str, ...] = OPTIMIZERS
    weight_decay: tuple[float, float] = (1e-6, 1e-2)
    dropout: tuple[float, float] = (0.0, 0.9)

    def bounds(self, gene: str) -> tuple[float, float]:
        """The (low, high) of a numeric gene."""
        low, high = getattr(self, gene)
        return float(low), float(high)

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        return powers_of_two(*self.batch_size)

    def sample(self, rng: np.random.Generator) -> Genes:
        """One individual drawn uniformly (in log space for the log-scale genes)."""
        genes: Genes = {}
        for gene in GENE_NAMES:
            if gene in LOG_GENES:
                low, high = self.bounds(gene)
                genes[gene] = math.exp(rng.uniform(math.log(low), math.log(high)))
            elif gene == "batch_size":
                genes[gene] = self.batch_sizes[int(rng.integers(len(self.batch_sizes)))]
            elif gene == "optimizer":
                genes[gene] = self.optimizer[int(rng.integers(len(self.optimizer)))]
            else:
                genes[gene] = float(rng.uniform(*self.bounds(gene)))
        return self.clamp(genes)

    def clamp(self, genes: Mapping[str, Any]) -> Genes:
        """The individual moved into bounds: floats clipped, batch size to the power of two in
        bounds nearest in log2 (a tie goes up), an unknown optimizer to the first choice."""
        clamped: Genes = {}
        for gene in FLOAT_GENES:
            low, high = self.bounds(gene)
            value = float(genes[gene])
            clamped[gene] = low if math.isnan(value) else min(high, max(low, value))
        clamped["batch_size"] = self.nearest_batch_size(float(genes["batch_size"]))
        optimizer = genes["optimizer"]
        clamped["optimizer"] = optimizer if optimizer in self.optimizer else self.optimizer[0]
        return {gene: clamped[gene] for gene in GENE_NAMES}

    def nearest_batch_size(self, value: float) -> int:
        """The power of two in bounds nearest to ``value`` in log2 (a tie goes up)."""
        exponent = math.log2(value) if value > 0 else -math.inf
        return min(self.batch_sizes, key=lambda size: (abs(math.log2(size) - exponent), -size))

    def key(self, genes: Mapping[str, Any]) -> GeneKey:
        """The individual's identity: two with the same key are one individual, trained once."""
        return (
            rounded(float(genes["learning_rate"])),
            int(genes["batch_size"]),
            str(genes["optimizer"]),
            rounded(float(genes["weight_decay"])),
            rounded(float(genes["dropout"])),
        )

    def finite_members(self) -> list[Genes] | None:
        """Every distinct individual, when there are few (each float gene's bounds are one value
        to ``KEY_DIGITS`` digits); None when the floats leave the space practically endless."""
        if any(rounded(self.bounds(g)[0]) != rounded(self.bounds(g)[1]) for g in FLOAT_GENES):
            return None
        floats = {gene: self.bounds(gene)[0] for gene in FLOAT_GENES}
        return [
            self.clamp({**floats, "batch_size": size, "optimizer": optimizer})
            for size, optimizer in itertools.product(self.batch_sizes, self.optimizer)
        ]

    def to_json(self) -> dict[str, Any]:
        return {gene: list(getattr(self, gene)) for gene in GENE_NAMES}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SearchSpace:
        return cls(
            learning_rate=(float(data["learning_rate"][0]), float(data["learning_rate"][1])),
            batch_size=(int(data["batch_size"][0]), int(data["batch_size"][1])),
            optimizer=tuple(str(choice) for choice in data["optimizer"]),
            weight_decay=(float(data["weight_decay"][0]), float(data["weight_decay"][1])),
            dropout=(float(data["dropout"][0]), float(data["dropout"][1])),
        )


DEFAULT_SPACE = SearchSpace()


def search_space(bounds: Mapping[str, Any] | None = None) -> SearchSpace:
    """The default space narrowed by a request's bounds.

    Args:
        bounds: any subset of ``{"learning_rate": {"low": .., "high": ..}, "batch_size": {..},
            "weight_decay": {..}, "dropout": {..}, "optimizer": ["adam", "sgd"]}``; a gene left
            out or given as None keeps its default bounds. A numeric gene may give only one of
            ``low`` and ``high``.

    Raises:
        GeneBoundsError: an unknown gene, ``low > high``, a bound outside the default range (a
            request may narrow, never widen), batch bounds holding no power of two, or optimizer
            choices that are empty or unknown.
    """
    given = {gene: value for gene, value in (bounds or {}).items() if value is not None}
    unknown = sorted(set(given) - set(GENE_NAMES))
    if unknown:
        raise GeneBoundsError(f"unknown gene(s) {unknown}: the genes are {list(GENE_NAMES)}")
    narrowed: dict[str, Any] = {
        gene: _narrowed(gene, given[gene]) for gene in NUMERIC_GENES if gene in given
    }
    if "batch_size" in narrowed:
        low, high = narrowed["batch_size"]
        if not powers_of_two(low, high):
            raise GeneBoundsError(
                f"batch_size bounds [{low}, {high}] hold no power of two: widen them to include "
                "one of 8, 16, 32, 64, 128"
            )
        narrowed["batch_size"] = (math.ceil(low), math.floor(high))
    if "optimizer" in given:
        narrowed["optimizer"] = _optimizers(given["optimizer"])
    return SearchSpace(**narrowed)


def _narrowed(gene: str, bound: Any) -> tuple[float, float]:
    default_low, default_high = DEFAULT_SPACE.bounds(gene)
    if not isinstance(bound, Mapping) or not set(bound) <= {"low", "high"}:
        raise GeneBoundsError(f'{gene} bounds must look like {{"low": .., "high": ..}}')
    low = _number(gene, "low", bound.get("low", default_low))
    high = _number(gene, "high", bound.get("high", default_high))
    if low > high:
        raise GeneBoundsError(f"{gene}: low ({low}) is above high ({high}); swap them")
    if low < default_low or high > default_high:
        raise GeneBoundsError(
            f"{gene} bounds [{low}, {high}] reach outside its default range "
            f"[{default_low}, {default_high}]: a request may only narrow it"
        )
    return low, high


def _number(gene: str, side: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GeneBoundsError(f"{gene} {side} must be a finite number, not {value!r}")
    return float(value)


def _optimizers(choices: Any) -> tuple[str, ...]:
    if isinstance(choices, str) or not choices:
        raise GeneBoundsError(f"optimizer choices must be a non-empty list of {list(OPTIMIZERS)}")
    unknown = [choice for choice in choices if choice not in OPTIMIZERS]
    if unknown:
        raise GeneBoundsError(f"unknown optimizer(s) {unknown}: choose among {list(OPTIMIZERS)}")
    return tuple(dict.fromkeys(choices))  # in the request's order, each once
