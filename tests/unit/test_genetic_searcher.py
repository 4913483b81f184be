"""The GA and its Tune searcher driven directly: ``next_individual``/``record`` and ``suggest``/
``on_trial_complete`` with a seeded algorithm, as Tune would call them but with no Ray running."""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ray.tune.search import Searcher

from cvplatform.errors import InvalidInput
from tune_space.genetic import GAConfig, GeneticAlgorithm, Individual
from tune_space.searcher import FITNESS, TRIAL_INDEX, GeneticSearcher
from tune_space.space import DEFAULT_SPACE, SearchSpace, search_space

Fitness = Callable[[dict[str, Any]], float | None]


def config(**changes: Any) -> GAConfig:
    values: dict[str, Any] = {
        "population_size": 6,
        "generations": 4,
        "mutation_rate": 0.2,
        "crossover_rate": 0.7,
        "elite_count": 2,
        "seed": 7,
    }
    return GAConfig(**{**values, **changes})


def peak(genes: dict[str, Any]) -> float:
    """A synthetic fitness with its optimum at learning rate 1e-3, dropout 0.3, adam."""
    return float(
        -abs(math.log10(genes["learning_rate"]) + 3)
        - abs(genes["dropout"] - 0.3)
        - (genes["optimizer"] != "adam")
    )


def run(algorithm: GeneticAlgorithm, fitness: Fitness = peak) -> GeneticAlgorithm:
    while (individual := algorithm.next_individual()) is not None:
        algorithm.record(individual.index, fitness(individual.genes))
    return algorithm


def trained(algorithm: GeneticAlgorithm) -> list[Individual]:
    return [i for i in algorithm.individuals if i.operation != "elite"]


def lineage(algorithm: GeneticAlgorithm) -> list[dict[str, Any]]:
    return [individual.to_json() for individual in algorithm.individuals]


# --- the algorithm --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"population_size": 1, "elite_count": 0},
        {"generations": 0},
        {"mutation_rate": 1.5},
        {"crossover_rate": -0.1},
        {"elite_count": 6},
        {"tournament_size": 0},
    ],
)
def test_a_bad_configuration_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        config(**changes)


def test_a_run_trains_trials_total_individuals_generation_by_generation() -> None:
    algorithm = run(GeneticAlgorithm(DEFAULT_SPACE, config()))
    assert algorithm.finished and not algorithm.exhausted
    assert algorithm.trials_total() == 6 + 3 * 4 == len(trained(algorithm))
    assert [len(algorithm.members(g)) for g in range(4)] == [6, 6, 6, 6]
    first = algorithm.members(0)
    assert all(i.operation == "random" and i.parents == [] for i in first)
    bred = [i for i in algorithm.individuals if i.generation > 0 and i.operation != "elite"]
    assert {i.operation for i in bred} <= {"crossover", "mutation", "crossover+mutation", "clone"}
    for child in bred:  # parents come from the generation before
        assert {algorithm.individuals[p].generation for p in child.parents} == {
            child.generation - 1
        }
    assert [i.index for i in algorithm.individuals] == list(range(len(algorithm.individuals)))
    assert algorithm.next_individual() is None


def test_a_generation_is_bred_only_when_the_last_one_is_all_recorded() -> None:
    algorithm = GeneticAlgorithm(DEFAULT_SPACE, config())
    handed = [algorithm.next_individual() for _ in range(6)]
    assert all(isinstance(i, Individual) and i.status == "running" for i in handed)
    assert algorithm.next_individual() is None  # wait: the generation is out, unrecorded
    for individual in handed[:-1]:
        assert isinstance(individual, Individual)
        algorithm.record(individual.index, 0.5)
    assert algorithm.next_individual() is None and algorithm.generation == 0
    last = handed[-1]
    assert isinstance(last, Individual)
    algorithm.record(last.index, 0.1)
    assert algorithm.generation == 1
    following = algorithm.next_individual()
    assert following is not None and following.generation == 1


def test_elites_are_the_fittest_carried_unchanged_and_never_trained_again() -> None:
    algorithm = GeneticAlgorithm(DEFAULT_SPACE, config(elite_count=2))
    suggested: list[Individual] = []
    while (individual := algorithm.next_individual()) is not None:
        suggested.append(individual)
        algorithm.record(individual.index, peak(individual.genes))
    assert all(i.operation != "elite" for i in suggested)
    for generation in range(1, 4):
        previous = [i for i in algorithm.members(generation - 1) if i.status == "completed"]
        fittest = sorted(previous, key=lambda i: -(i.fitness or 0))[:2]
        elites = [i for i in algorithm.members(generation) if i.operation == "elite"]
        assert [e.parents for e in elites] == [[i.index] for i in fittest]
        for elite, parent in zip(elites, fittest, strict=True):
            assert (elite.genes, elite.fitness, elite.status) == (
                parent.genes,
                parent.fitness,
                "completed",
            )
        assert elites == algorithm.members(generation)[:2]  # elites first
    summary = algorithm.generation_summary()
    assert [row["best"] for row in summary] == sorted(row["best"] for row in summary)


@pytest.mark.parametrize("failure", [None, math.nan, math.inf, -math.inf])
def test_a_failed_trial_is_recorded_failed_and_ranked_worst(failure: float | None) -> None:
    algorithm = GeneticAlgorithm(DEFAULT_SPACE, config(population_size=3, elite_count=2))
    first, second, third = (algorithm.next_individual() for _ in range(3))
    assert first is not None and second is not None and third is not None
    algorithm.record(first.index, failure)
    algorithm.record(second.index, -5.0)
    algorithm.record(third.index, -7.0)
    assert (first.status, first.fitness) == ("failed", None)
    elites = [i for i in algorithm.members(1) if i.operation == "elite"]
    assert [e.parents for e in elites] == [[second.index], [third.index]]
    assert algorithm.generation_summary()[0] == {
        "generation": 0,
        "best": -5.0,
        "mean": -6.0,
        "worst": -7.0,
        "completed": 2,
        "failed": 1,
    }
    best = algorithm.best()
    assert best is not None and best.index == second.index


def test_an_all_failed_generation_keeps_no_elite_and_still_breeds() -> None:
    algorithm = GeneticAlgorithm(DEFAULT_SPACE, config(population_size=4, elite_count=1))
    run(algorithm, lambda genes: None)
    assert algorithm.finished and algorithm.best() is None
    assert all(i.operation != "elite" and i.status == "failed" for i in algorithm.individuals)
    assert [len(algorithm.members(g)) for g in range(4)] == [4, 3, 3, 3]
    assert algorithm.generation_summary()[1]["best"] is None


def test_recording_what_was_not_handed_out_is_refused() -> None:
    algorithm = GeneticAlgorithm(DEFAULT_SPACE, config())
    with pytest.raises(ValueError, match="not running"):
        algorithm.record(0, 0.5)
    individual = algorithm.next_individual()
    assert individual is not None
    algorithm.record(individual.index, 0.5)
    with pytest.raises(ValueError, match="completed, not running"):
        algorithm.record(individual.index, 0.5)
    with pytest.raises(ValueError, match="no individual 99"):
        algorithm.record(99, 0.5)


def test_the_operators_fire_at_their_rates() -> None:
    never = run(GeneticAlgorithm(DEFAULT_SPACE, config(crossover_rate=0.0, mutation_rate=0.0)))
    bred = [i for i in trained(never) if i.generation > 0]
    assert {i.operation for i in bred} == {"clone"}  # a copy, then made new
    assert all(len(i.parents) == 1 for i in bred)
    key = DEFAULT_SPACE.key
    assert all(key(i.genes) != key(never.individuals[i.parents[0]].genes) for i in bred)
    always = run(GeneticAlgorithm(DEFAULT_SPACE, config(crossover_rate=1.0, mutation_rate=0.0)))
    bred = [i for i in trained(always) if i.generation > 0]
    assert {i.operation for i in bred} <= {"crossover", "crossover+mutation"}
    assert all(len(i.parents) == 2 and i.parents[0] != i.parents[1] for i in bred)
    mutating = run(GeneticAlgorithm(DEFAULT_SPACE, config(crossover_rate=0.0, mutation_rate=1.0)))
    assert {i.operation for i in trained(mutating) if i.generation > 0} == {"mutation"}


@pytest.mark.parametrize("space", [DEFAULT_SPACE, search_space({"optimizer": ["adam"]})])
def test_no_individual_is_trained_twice(space: SearchSpace) -> None:
    # Low rates and a strong selection make copies of the best individuals likely.
    stressed = config(population_size=10, generations=8, mutation_rate=0.05, crossover_rate=0.2)
    algorithm = run(GeneticAlgorithm(space, stressed))
    keys = [space.key(i.genes) for i in trained(algorithm)]
    assert len(keys) == len(set(keys)) == stressed.trials_total()


def test_an_exhausted_space_ends_the_search_early() -> None:
    # Four individuals exist here; the GA plans 3 + 2 * 3 = 9 trials.
    tiny = search_space(
        {
            "learning_rate": {"low": 1e-3, "high": 1e-3},
            "weight_decay": {"low": 1e-4, "high": 1e-4},
            "dropout": {"low": 0.2, "high": 0.2},
            "batch_size": {"low": 8, "high": 16},
            "optimizer": ["adam", "sgd"],
        }
    )
    algorithm = run(GeneticAlgorithm(tiny, config(population_size=3, generations=3, elite_count=0)))
    keys = [tiny.key(i.genes) for i in trained(algorithm)]
    assert len(keys) == len(set(keys)) == 4
    assert [len(algorithm.members(g)) for g in range(3)] == [3, 1, 0]  # cut short, then none
    assert algorithm.finished and algorithm.exhausted and algorithm.generation == 1
    assert algorithm.trials_total() == 9  # the plan, not what the space allowed
    searcher = GeneticSearcher(algorithm)
    assert searcher.suggest("after") == Searcher.FINISHED


def test_the_same_seed_gives_the_same_run_and_another_seed_another() -> None:
    assert lineage(run(GeneticAlgorithm(DEFAULT_SPACE, config()))) == lineage(
        run(GeneticAlgorithm(DEFAULT_SPACE, config()))
    )
    first = [i.genes for i in run(GeneticAlgorithm(DEFAULT_SPACE, config())).individuals]
    other = [i.genes for i in run(GeneticAlgorithm(DEFAULT_SPACE, config(seed=8))).individuals]
    assert first[0] != other[0]


def test_a_restored_state_continues_the_same_sequence() -> None:
    whole = run(GeneticAlgorithm(DEFAULT_SPACE, config()))
    interrupted = GeneticAlgorithm(DEFAULT_SPACE, config())
    for _ in range(9):  # into generation 1, with two of its trials running
        individual = interrupted.next_individual()
        assert individual is not None
        if individual.generation == 0:
            interrupted.record(individual.index, peak(individual.genes))
    assert [i.status for i in interrupted.members(1)].count("running") >= 1
    state = json.loads(json.dumps(interrupted.state()))  # plain JSON, no pickle
    resumed = GeneticAlgorithm.from_state(state)
    for individual in resumed.individuals:
        if individual.status == "running":
            resumed.record(individual.index, peak(individual.genes))
    assert lineage(run(resumed)) == lineage(whole)


# --- the searcher ---------------------------------------------------------------------------


class Tune:
    """Calls a searcher as Tune does: ids it never reuses, at most ``concurrency`` live trials,
    each completed (oldest first) with the fitness of its config."""

    def __init__(self, searcher: GeneticSearcher, concurrency: int = 2) -> None:
        self.searcher, self.concurrency = searcher, concurrency
        self.live: list[tuple[str, dict[str, Any]]] = []
        self.suggested: list[dict[str, Any]] = []
        self.asked = 0

    def step(self, fitness: Callable[[dict[str, Any]], Any] = peak) -> bool:
        """One round: fill the free places, then complete the oldest live trial. False when done."""
        while len(self.live) < self.concurrency:
            self.asked += 1
            trial_id = f"trial_{self.asked}"
            suggestion = self.searcher.suggest(trial_id)
            if suggestion == Searcher.FINISHED:
                return bool(self.live) and self._complete(fitness)
            if suggestion is None:
                break
            assert isinstance(suggestion, dict)
            self.suggested.append(suggestion)
            self.live.append((trial_id, suggestion))
        return self._complete(fitness)

    def _complete(self, fitness: Callable[[dict[str, Any]], Any]) -> bool:
        if not self.live:
            return False
        trial_id, suggestion = self.live.pop(0)
        self.searcher.on_trial_complete(trial_id, {FITNESS: fitness(suggestion)})
        return True

    def run(self, fitness: Callable[[dict[str, Any]], Any] = peak) -> list[dict[str, Any]]:
        while self.step(fitness):
            pass
        return self.suggested


def searcher(
    seed: int = 7, events: list[tuple[str, dict[str, Any]]] | None = None
) -> GeneticSearcher:
    handler = None if events is None else lambda kind, row: events.append((kind, row))
    return GeneticSearcher(GeneticAlgorithm(DEFAULT_SPACE, config(seed=seed)), handler)


def test_suggest_hands_out_genes_with_their_index_waits_then_finishes() -> None:
    ga_searcher = searcher()
    assert (ga_searcher.metric, ga_searcher.mode) == (FITNESS, "max")
    first = ga_searcher.suggest("a")
    assert isinstance(first, dict)
    assert first == {**ga_searcher.algorithm.individuals[0].genes, TRIAL_INDEX: 0}
    for trial in "bcdef":
        assert isinstance(ga_searcher.suggest(trial), dict)
    assert ga_searcher.suggest("g") is None  # generation 0 is out: wait for its results
    for trial in "abcdef":
        ga_searcher.on_trial_complete(trial, {FITNESS: 0.5})
    following = ga_searcher.suggest("h")
    assert isinstance(following, dict) and following[TRIAL_INDEX] == 8  # after 2 elites
    tune = Tune(ga_searcher)
    tune.live.append(("h", following))
    tune.run()
    assert ga_searcher.algorithm.finished
    assert ga_searcher.suggest("z") == Searcher.FINISHED


def test_an_errored_or_metricless_trial_is_a_failed_individual() -> None:
    ga_searcher = searcher()
    for trial in "abcd":
        ga_searcher.suggest(trial)
    ga_searcher.on_trial_complete("a", {FITNESS: 0.9}, error=True)
    ga_searcher.on_trial_complete("b", None, error=True)
    ga_searcher.on_trial_complete("c", {"loss": 0.1})
    ga_searcher.on_trial_complete("d", {FITNESS: "high"})
    ga_searcher.on_trial_complete("unknown", {FITNESS: 1.0})  # not one of ours: ignored
    statuses = [(i.status, i.fitness) for i in ga_searcher.algorithm.individuals[:4]]
    assert statuses == [("failed", None)] * 4


def test_events_follow_trials_and_generations() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    ga_searcher = searcher(events=events)
    Tune(ga_searcher).run()
    kinds = [kind for kind, _ in events]
    assert kinds.count("trial_started") == kinds.count("trial_completed") == 18
    rows = [row for kind, row in events if kind == "generation_completed"]
    assert rows == ga_searcher.algorithm.generation_summary()
    completed = [row for kind, row in events if kind == "trial_completed"]
    assert all(row["status"] == "completed" and row["fitness"] is not None for row in completed)
    assert kinds[: kinds.index("generation_completed")].count("trial_completed") == 6


def test_the_same_seed_suggests_the_same_sequence_twice() -> None:
    assert Tune(searcher()).run() == Tune(searcher()).run()
    assert Tune(searcher()).run()[0] != Tune(searcher(seed=8)).run()[0]


def test_save_and_restore_resume_the_same_sequence(tmp_path: Path) -> None:
    whole = Tune(searcher()).run()
    first = Tune(searcher())
    for _ in range(5):
        first.step()
    assert first.live  # trials are running as it is saved
    checkpoint = tmp_path / "searcher.json"
    first.searcher.save(str(checkpoint))
    json.loads(checkpoint.read_text())  # JSON, readable without the code

    restored = GeneticSearcher(GeneticAlgorithm(DEFAULT_SPACE, config(seed=99)))
    restored.restore(str(checkpoint))
    second = Tune(restored)
    second.live, second.suggested, second.asked = first.live, first.suggested, first.asked
    assert second.run() == whole


def test_tune_saves_and_restores_it_through_its_folder(tmp_path: Path) -> None:
    ga_searcher = searcher()
    tune = Tune(ga_searcher)
    for _ in range(3):
        tune.step()
    ga_searcher.save_to_dir(str(tmp_path), session_str="now")
    assert [path.name for path in tmp_path.iterdir()] == ["searcher-state-now.json"]
    restored = GeneticSearcher(GeneticAlgorithm(DEFAULT_SPACE, config(seed=99)))
    restored.restore_from_dir(str(tmp_path))
    assert restored.get_state() == ga_searcher.get_state()


def test_it_pickles_without_its_event_handler() -> None:
    # Tune pickles the searcher into its experiment folder; a handler may not pickle.
    events: list[tuple[str, dict[str, Any]]] = []
    ga_searcher = searcher(events=events)
    copy = pickle.loads(pickle.dumps(ga_searcher))  # noqa: S301  # bytes made just above
    assert copy.on_event is None and ga_searcher.on_event is not None
    assert copy.get_state() == ga_searcher.get_state()


def test_it_takes_only_its_own_metric_and_mode() -> None:
    ga_searcher = searcher()
    assert ga_searcher.set_search_properties(FITNESS, "max", {"epochs": 1})
    assert ga_searcher.set_search_properties(None, None, {})
    with pytest.raises(ValueError, match="maximises 'fitness'"):
        ga_searcher.set_search_properties("loss", "min", {})
