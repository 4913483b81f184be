"""One tiny real Tune run with the GeneticSearcher: population 4, 2 generations, at most 2 trials at
once, on a cheap synthetic objective. One trial raises and one reports NaN: both are recorded as
failed, and the search still breeds its second generation and ends with FINISHED."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from ray import tune

from tune_space.genetic import GAConfig, GeneticAlgorithm
from tune_space.searcher import FITNESS, TRIAL_INDEX, GeneticSearcher
from tune_space.space import search_space

CONFIG = GAConfig(
    population_size=4, generations=2, mutation_rate=0.3, crossover_rate=0.7, elite_count=1, seed=5
)
RAISES, REPORTS_NAN = 1, 2  # the individuals whose trial fails, each its own way


def test_a_real_tune_run_trains_every_individual_and_finishes(
    ray_session: None, tmp_path: Path
) -> None:
    def objective(config: dict[str, Any]) -> None:
        started = time.time()
        time.sleep(1.0)  # long enough for two concurrent trials to overlap, as a rule
        if config[TRIAL_INDEX] == RAISES:
            raise RuntimeError("this trial fails on purpose")
        fitness = -abs(math.log10(config["learning_rate"]) + 3) - abs(config["dropout"] - 0.3)
        if config[TRIAL_INDEX] == REPORTS_NAN:
            fitness = math.nan
        tune.report({FITNESS: fitness, "started": started, "ended": time.time()})

    events: list[tuple[str, dict[str, Any]]] = []
    searcher = GeneticSearcher(
        GeneticAlgorithm(search_space(), CONFIG), lambda kind, row: events.append((kind, row))
    )
    tuner = tune.Tuner(
        tune.with_resources(objective, {"cpu": 0.01}),
        param_space={"epochs": 1},
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=searcher.algorithm.trials_total(),
            max_concurrent_trials=2,
            metric=FITNESS,
            mode="max",
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="ga", verbose=0),
    )
    grid = tuner.fit()
    results = [grid[position] for position in range(len(grid))]

    algorithm = searcher.algorithm
    assert algorithm.finished
    trained = [i for i in algorithm.individuals if i.operation != "elite"]
    assert len(results) == len(trained) == CONFIG.trials_total() == 7
    assert len(grid.errors) == 1
    assert {i.index for i in trained if i.status == "failed"} == {RAISES, REPORTS_NAN}
    assert all(i.fitness is None for i in trained if i.status == "failed")
    configs = [result.config or {} for result in results]
    assert {config[TRIAL_INDEX] for config in configs} == {i.index for i in trained}
    assert all(config["epochs"] == 1 for config in configs)

    kinds = [kind for kind, _ in events]
    assert kinds.count("trial_started") == kinds.count("trial_completed") == 7
    assert [row["generation"] for kind, row in events if kind == "generation_completed"] == [0, 1]
    # The second generation was bred only once the first was all recorded.
    first_of_generation_1 = min(i.index for i in trained if i.generation == 1)
    started_then = kinds[: [row.get("index") for _, row in events].index(first_of_generation_1)]
    assert started_then.count("trial_completed") == 4

    spans = sorted(
        (result.metrics["started"], result.metrics["ended"])
        for result in results
        if result.metrics and "started" in result.metrics
    )
    overlaps = [sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans]
    # Never more than the two allowed at once. (That two do run together depends on how fast
    # Tune starts a trial's process on a loaded machine; test_ga_search.py waits for it.)
    assert 1 <= max(overlaps) <= 2
