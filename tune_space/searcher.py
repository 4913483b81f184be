"""``GeneticSearcher``: the GA as a Ray Tune searcher. The algorithm is ``tune_space.genetic``;
this adapter only maps Tune's trial ids to individuals and passes results through.

Tune asks ``suggest`` for a trial whenever it has room. While a generation's last trials still
run, the next generation cannot be bred, so ``suggest`` answers None (Tune asks again later);
after the last generation it answers ``Searcher.FINISHED``. Run it with ``num_samples`` set to
``algorithm.trials_total()``.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from tune_space.genetic import GeneticAlgorithm, Individual

FITNESS = "fitness"  # the metric every trial reports
TRIAL_INDEX = "ga_index"  # added to each suggested config: the individual it trains
STATE_FORMAT = 1

EventHandler = Callable[[str, dict[str, Any]], None]


class GeneticSearcher(Searcher):
    """Suggests the GA's individuals to Tune, generation by generation, and maximises ``fitness``.

    Args:
        algorithm: the GA, fresh or restored (``GeneticAlgorithm.from_state``).
        on_event: called with ("trial_started", individual), ("trial_completed", individual) and
            ("generation_completed", summary row), the individuals as ``to_json()``. It is not
            saved with the searcher (Tune pickles the searcher into its experiment folder): after
            ``Tuner.restore`` set it again through the ``on_event`` attribute.
    """

    CKPT_FILE_TMPL = "searcher-state-{}.json"

    def __init__(self, algorithm: GeneticAlgorithm, on_event: EventHandler | None = None) -> None:
        super().__init__(metric=FITNESS, mode="max")
        self._algorithm = algorithm
        self.on_event = on_event
        self._index_by_trial: dict[str, int] = {}

    @property
    def algorithm(self) -> GeneticAlgorithm:
        return self._algorithm

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Accepts Tune's metric and mode when they are this searcher's (or unset); the rest of the
        config (fixed values such as epochs) is merged into every trial's config by Tune.

        Raises:
            ValueError: another metric or mode: this searcher maximises ``fitness``.
        """
        if metric not in (None, FITNESS) or mode not in (None, "max"):
            raise ValueError(
                f"GeneticSearcher maximises {FITNESS!r}: leave TuneConfig's metric and mode unset "
                f"or set metric={FITNESS!r}, mode='max' (got metric={metric!r}, mode={mode!r})"
            )
        return True

    # Ray annotates suggest as returning a dict or None, though it also takes Searcher.FINISHED.
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        if self._algorithm.finished:
            return Searcher.FINISHED
        individual = self._algorithm.next_individual()
        if individual is None:
            return None
        self._index_by_trial[trial_id] = individual.index
        self._emit("trial_started", individual.to_json())
        return {**individual.genes, TRIAL_INDEX: individual.index}

    def on_trial_complete(
        self, trial_id: str, result: Mapping[str, Any] | None = None, error: bool = False
    ) -> None:
        """Records the trial's ``fitness``. An error, or a result without a finite fitness, is a
        failed individual: ranked worst, never counted as zero."""
        index = self._index_by_trial.pop(trial_id, None)
        if index is None:
            return  # not one of ours, or already recorded
        self._algorithm.record(index, None if error else _fitness(result))
        individual = self._algorithm.individuals[index]
        self._emit("trial_completed", individual.to_json())
        if self._algorithm.generation_complete(individual.generation):
            self._emit(
                "generation_completed",
                self._algorithm.generation_summary()[individual.generation],
            )

    def get_state(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "algorithm": self._algorithm.state(),
            "index_by_trial": dict(self._index_by_trial),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"unknown GeneticSearcher state format {state.get('format')!r}")
        self._algorithm = GeneticAlgorithm.from_state(state["algorithm"])
        self._index_by_trial = {
            str(trial): int(index) for trial, index in state["index_by_trial"].items()
        }

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps(self.get_state()))

    def restore(self, checkpoint_path: str) -> None:
        self.set_state(json.loads(Path(checkpoint_path).read_text()))

    def individual_of(self, trial_id: str) -> Individual | None:
        """The individual a running trial trains, if the trial is one of this searcher's."""
        index = self._index_by_trial.get(trial_id)
        return None if index is None else self._algorithm.individuals[index]

    def __getstate__(self) -> dict[str, Any]:
        # The event handler may hold what cannot be pickled (locks, connections).
        return {**self.__dict__, "on_event": None}

    def _emit(self, kind: str, payload: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(kind, payload)


def _fitness(result: Mapping[str, Any] | None) -> float | None:
    value = (result or {}).get(FITNESS)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value) if math.isfinite(value) else None
