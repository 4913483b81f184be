"""The search space and the GA's operators, called directly with a seeded generator."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from cvplatform.errors import GeneBoundsError
from tune_space.genetic import crossover, mutate, mutate_one, tournament
from tune_space.space import DEFAULT_SPACE, GENE_NAMES, OPTIMIZERS, SearchSpace, search_space

NARROW = search_space(
    {
        "learning_rate": {"low": 1e-4, "high": 1e-2},
        "batch_size": {"low": 10, "high": 100},
        "optimizer": ["adam", "sgd"],
        "dropout": {"low": 0.1, "high": 0.5},
    }
)


def assert_valid(genes: dict[str, Any], space: SearchSpace) -> None:
    assert list(genes) == list(GENE_NAMES)
    for gene in ("learning_rate", "weight_decay", "dropout"):
        low, high = space.bounds(gene)
        assert low <= genes[gene] <= high
    assert genes["batch_size"] in space.batch_sizes
    assert genes["optimizer"] in space.optimizer


# --- the space ------------------------------------------------------------------------------


def test_no_bounds_is_the_default_space() -> None:
    assert search_space() == search_space({}) == DEFAULT_SPACE
    assert search_space({"learning_rate": None, "optimizer": None}) == DEFAULT_SPACE
    assert DEFAULT_SPACE.batch_sizes == (8, 16, 32, 64, 128)
    assert DEFAULT_SPACE.optimizer == OPTIMIZERS


def test_bounds_narrow_the_space() -> None:
    assert NARROW.learning_rate == (1e-4, 1e-2)
    assert NARROW.batch_sizes == (16, 32, 64)
    assert NARROW.optimizer == ("adam", "sgd")
    assert NARROW.weight_decay == DEFAULT_SPACE.weight_decay
    assert search_space({"dropout": {"high": 0.2}}).dropout == (0.0, 0.2)


@pytest.mark.parametrize(
    ("bounds", "says"),
    [
        ({"learning_rate": {"low": 1e-2, "high": 1e-3}}, "above high"),
        ({"learning_rate": {"low": 1e-6, "high": 1e-3}}, "only narrow"),
        ({"dropout": {"low": 0.0, "high": 0.95}}, "only narrow"),
        ({"batch_size": {"low": 9, "high": 15}}, "no power of two"),
        ({"optimizer": []}, "non-empty"),
        ({"optimizer": ["adam", "lbfgs"]}, "lbfgs"),
        ({"momentum": {"low": 0.1, "high": 0.9}}, "momentum"),
        ({"dropout": {"low": "a", "high": 0.5}}, "finite number"),
        ({"dropout": {"low": math.nan, "high": 0.5}}, "finite number"),
        ({"dropout": [0.1, 0.5]}, '"low"'),
    ],
)
def test_bad_bounds_are_refused_with_a_reason(bounds: dict[str, Any], says: str) -> None:
    with pytest.raises(GeneBoundsError, match=says) as raised:
        search_space(bounds)
    assert (raised.value.status, raised.value.code) == (422, "invalid_gene_bounds")


def test_samples_lie_in_bounds_and_log_genes_are_uniform_in_log_space() -> None:
    rng = np.random.default_rng(0)
    samples: list[dict[str, Any]] = [DEFAULT_SPACE.sample(rng) for _ in range(400)]
    for genes in samples:
        assert_valid(genes, DEFAULT_SPACE)
        assert isinstance(genes["batch_size"], int)
    # 1e-3 is the middle of [1e-5, 1e-1] in log space (uniform sampling would put 1% below it).
    below = sum(genes["learning_rate"] < 1e-3 for genes in samples) / len(samples)
    assert 0.4 < below < 0.6
    assert {genes["batch_size"] for genes in samples} == set(DEFAULT_SPACE.batch_sizes)
    assert {genes["optimizer"] for genes in samples} == set(OPTIMIZERS)


def test_clamp_moves_genes_into_bounds() -> None:
    genes = {
        "learning_rate": 0.5,
        "batch_size": 48,
        "optimizer": "lbfgs",
        "weight_decay": math.nan,
        "dropout": -0.2,
    }
    assert NARROW.clamp(genes) == {
        "learning_rate": 1e-2,
        "batch_size": 64,  # log2(48) = 5.58 lies nearer 6 than 5
        "optimizer": "adam",
        "weight_decay": 1e-6,
        "dropout": 0.1,
    }
    assert [NARROW.nearest_batch_size(size) for size in (1, 24, 33, 1000)] == [16, 32, 32, 64]


def test_the_key_names_an_individual_to_six_significant_digits() -> None:
    genes = DEFAULT_SPACE.sample(np.random.default_rng(1))
    close = {**genes, "learning_rate": float(genes["learning_rate"]) * (1 + 1e-9)}
    apart = {**genes, "learning_rate": float(genes["learning_rate"]) * (1 + 1e-4)}
    assert DEFAULT_SPACE.key(close) == DEFAULT_SPACE.key(genes) != DEFAULT_SPACE.key(apart)


def test_the_space_round_trips_through_json() -> None:
    assert SearchSpace.from_json(json.loads(json.dumps(NARROW.to_json()))) == NARROW


def test_a_space_with_single_valued_floats_lists_its_members() -> None:
    tiny = search_space(
        {
            "learning_rate": {"low": 1e-3, "high": 1e-3},
            "weight_decay": {"low": 1e-4, "high": 1e-4},
            "dropout": {"low": 0.2, "high": 0.2},
            "batch_size": {"low": 8, "high": 16},
            "optimizer": ["adam", "sgd", "adamw"],
        }
    )
    members = tiny.finite_members()
    assert members is not None and len({tiny.key(m) for m in members}) == 6
    assert NARROW.finite_members() is None


# --- the operators --------------------------------------------------------------------------


@dataclass
class Contender:
    name: str
    fitness: float | None
    status: str = "completed"


def test_a_tournament_of_everyone_picks_the_fittest() -> None:
    population = [Contender("a", 0.2), Contender("b", 0.9), Contender("c", 0.5)]
    rng = np.random.default_rng(0)
    assert {tournament(population, rng, 3).name for _ in range(20)} == {"b"}
    assert {tournament(population, rng, 10).name for _ in range(20)} == {"b"}


def test_a_failed_individual_loses_to_any_completed_one() -> None:
    population = [Contender("failed", None, "failed"), Contender("poor", -1e9)]
    rng = np.random.default_rng(0)
    assert {tournament(population, rng, 2).name for _ in range(20)} == {"poor"}


def test_tournaments_favour_the_fitter_and_follow_the_seed() -> None:
    population = [Contender(str(rank), float(rank)) for rank in range(10)]
    winners = [float(tournament(population, np.random.default_rng(s), 3).name) for s in range(200)]
    assert np.mean(winners) > 6  # random picks average 4.5; the best of 3 averages 6.75
    assert set(winners) <= {float(rank) for rank in range(2, 10)}  # the two worst never win
    again = [float(tournament(population, np.random.default_rng(s), 3).name) for s in range(200)]
    assert again == winners
    assert {tournament(population, np.random.default_rng(s), 1).name for s in range(200)} == {
        c.name for c in population
    }


def test_crossover_takes_categories_from_a_parent_and_blends_scales_in_log_space() -> None:
    rng = np.random.default_rng(0)
    a = {"learning_rate": 1e-4, "batch_size": 16, "optimizer": "adam",
         "weight_decay": 1e-5, "dropout": 0.2}  # fmt: skip
    b = {"learning_rate": 1e-3, "batch_size": 64, "optimizer": "sgd",
         "weight_decay": 1e-5, "dropout": 0.4}  # fmt: skip
    children: list[dict[str, Any]] = [crossover(a, b, DEFAULT_SPACE, rng) for _ in range(300)]
    for child in children:
        assert_valid(child, DEFAULT_SPACE)
        assert child["batch_size"] in (16, 64) and child["optimizer"] in ("adam", "sgd")
        # BLX-0.5: within half the parents' distance beyond either parent, in log space for
        # the learning rate: 10^-4.5 to 10^-2.5.
        assert 10**-4.5 * (1 - 1e-9) <= child["learning_rate"] <= 10**-2.5 * (1 + 1e-9)
        assert 0.1 - 1e-12 <= child["dropout"] <= 0.5 + 1e-12
        assert child["weight_decay"] == pytest.approx(1e-5)  # equal parents: nothing to blend
    assert {c["optimizer"] for c in children} == {"adam", "sgd"}
    assert {c["batch_size"] for c in children} == {16, 64}
    below = sum(c["learning_rate"] < 10**-3.5 for c in children) / len(children)
    assert 0.4 < below < 0.6  # 10^-3.5 is the parents' middle in log space
    assert any(not 1e-4 <= c["learning_rate"] <= 1e-3 for c in children)  # reaches past them
    assert crossover(a, a, DEFAULT_SPACE, rng) == pytest.approx(DEFAULT_SPACE.clamp(a))


def test_mutation_at_rate_zero_changes_nothing() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        genes = NARROW.sample(rng)
        assert mutate(genes, NARROW, rng, 0.0) == genes


def test_mutation_at_rate_one_moves_every_gene_by_its_kind_of_step() -> None:
    rng = np.random.default_rng(0)
    for _ in range(100):
        genes: dict[str, Any] = NARROW.sample(rng)
        mutated: dict[str, Any] = mutate(genes, NARROW, rng, 1.0)
        assert_valid(mutated, NARROW)
        for gene in GENE_NAMES:
            assert NARROW.key({**genes, gene: mutated[gene]}) != NARROW.key(genes), gene
        assert mutated["batch_size"] / genes["batch_size"] in (0.5, 2.0)  # a neighbour
        assert mutated["optimizer"] != genes["optimizer"]


def test_mutation_at_a_bound_still_moves_inward() -> None:
    rng = np.random.default_rng(0)
    beyond = {"learning_rate": 1.0, "batch_size": 1000, "optimizer": "adam",
              "weight_decay": 1.0, "dropout": 1.0}  # fmt: skip
    top: dict[str, Any] = NARROW.clamp(beyond)
    for _ in range(50):
        mutated: dict[str, Any] = mutate(top, NARROW, rng, 1.0)
        assert mutated["learning_rate"] < top["learning_rate"]
        assert mutated["batch_size"] == 32
        assert mutated["dropout"] < top["dropout"]


def test_mutation_at_a_middle_rate_changes_about_that_share_of_genes() -> None:
    rng = np.random.default_rng(0)
    changed = 0
    for _ in range(400):
        genes = NARROW.sample(rng)
        mutated = mutate(genes, NARROW, rng, 0.3)
        changed += sum(mutated[gene] != genes[gene] for gene in GENE_NAMES)
    assert 0.25 < changed / (400 * len(GENE_NAMES)) < 0.35


def test_a_gene_with_a_single_value_never_mutates() -> None:
    fixed = search_space({"optimizer": ["adam"], "dropout": {"low": 0.3, "high": 0.3}})
    rng = np.random.default_rng(0)
    for _ in range(50):
        genes = fixed.sample(rng)
        mutated = mutate(genes, fixed, rng, 1.0)
        assert (mutated["optimizer"], mutated["dropout"]) == ("adam", 0.3)
        one = mutate_one(genes, fixed, rng)
        assert sum(one[gene] != genes[gene] for gene in GENE_NAMES) == 1
