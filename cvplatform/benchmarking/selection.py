"""Engine selection (FR5.4) as a pure function: which engine x batch size to deploy, and why.

The order is the requirements': keep the candidates that satisfy every constraint, rank them by the
objective (lowest p95 latency, or highest throughput), and among those within measurement noise of
the best (their confidence intervals overlap) prefer the lower memory, then the key, so that the
same numbers always give the same answer. When nothing passes, the closest candidate is named by
its total relative violation, with what would change the verdict. Every step is kept as data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from cvplatform.benchmarking.constraints import (
    Constraint,
    Verdict,
    check_constraint,
    evaluate,
    format_number,
    metric_label,
    with_unit,
)
from cvplatform.benchmarking.stats import Interval
from cvplatform.benchmarking.suggestions import suggestions as advise

Objective = Literal["latency", "throughput"]
_OBJECTIVE_METRIC: Mapping[str, str] = {"latency": "latency_p95_ms", "throughput": "throughput_fps"}
_BEST_WORD: Mapping[str, str] = {"latency": "lowest", "throughput": "highest"}
_NO_UNAVAILABLE: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Candidate:
    engine: str
    batch_size: int
    metrics: Mapping[str, float | None]
    intervals: Mapping[str, Interval]

    @property
    def key(self) -> str:
        return f"{self.engine}@{self.batch_size}"


@dataclass(frozen=True)
class Step:
    rule: str  # "constraints" | "objective" | "noise_tie_break" | "closest"
    kept: tuple[str, ...]  # in rank order where the step ranks
    removed: Mapping[str, str]  # candidate key -> why, in words
    note: str

    def as_dict(self) -> dict[str, Any]:
        removed = {key: self.removed[key] for key in sorted(self.removed)}
        return {"kept": list(self.kept), "note": self.note, "removed": removed, "rule": self.rule}


@dataclass(frozen=True)
class Selection:
    objective: str
    selected: str | None  # candidate key; None when nothing satisfies every constraint
    verdicts: Mapping[str, tuple[Verdict, ...]]
    steps: tuple[Step, ...]
    closest: str | None  # when nothing passes: the least total relative violation
    suggestions: tuple[str, ...]  # what would change the verdict; empty when one is selected
    summary: str

    def as_dict(self) -> dict[str, Any]:
        verdicts = {
            key: [verdict.as_dict() for verdict in self.verdicts[key]]
            for key in sorted(self.verdicts)
        }
        return {
            "closest": self.closest,
            "objective": self.objective,
            "selected": self.selected,
            "steps": [step.as_dict() for step in self.steps],
            "suggestions": list(self.suggestions),
            "summary": self.summary,
            "verdicts": verdicts,
        }


def select(
    candidates: Sequence[Candidate],
    constraints: Sequence[Constraint],
    objective: Objective = "latency",
    engines_unavailable: Mapping[str, str] = _NO_UNAVAILABLE,
) -> Selection:
    """Choose the engine x batch size to deploy.

    Args:
        candidates: the measured combinations, in any order (the result does not depend on it).
        constraints: checked constraints; every one must pass for a candidate to be kept.
        objective: "latency" ranks by lowest ``latency_p95_ms``, "throughput" by highest
            ``throughput_fps``.
        engines_unavailable: engine name -> why it could not run here, for the suggestions.

    Returns:
        The selection with each step of its reasoning.

    Raises:
        ValueError: an unknown objective, a malformed constraint, or two candidates with one key.
    """
    if objective not in _OBJECTIVE_METRIC:
        raise ValueError(f"unknown objective {objective!r}: use 'latency' or 'throughput'")
    for constraint in constraints:
        check_constraint(constraint)
    ordered = sorted(candidates, key=lambda candidate: candidate.key)
    keys = [candidate.key for candidate in ordered]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"two candidates share a key: {', '.join(repeated)}")
    verdicts = {
        candidate.key: tuple(
            evaluate(constraint, candidate.metrics, candidate.intervals)
            for constraint in constraints
        )
        for candidate in ordered
    }
    if not ordered:
        return _nothing_measured(objective, engines_unavailable)
    passing = [c for c in ordered if all(v.passed is True for v in verdicts[c.key])]
    first = _constraints_step(ordered, passing, verdicts, len(constraints))
    if not passing:
        return _nothing_passes(
            ordered, verdicts, first, objective, engines_unavailable, len(constraints)
        )
    return _rank_passing(passing, verdicts, first, objective, len(constraints))


def _constraints_step(
    ordered: Sequence[Candidate],
    passing: Sequence[Candidate],
    verdicts: Mapping[str, tuple[Verdict, ...]],
    constraint_count: int,
) -> Step:
    kept = tuple(c.key for c in passing)
    removed = {
        c.key: "; ".join(v.note for v in verdicts[c.key] if v.passed is not True)
        for c in ordered
        if c.key not in kept
    }
    if constraint_count == 0:
        note = f"no constraints given: all {len(ordered)} candidates are kept"
    else:
        note = (
            f"{len(passing)} of {len(ordered)} candidates meet {_all_constraints(constraint_count)}"
        )
    return Step("constraints", kept, removed, note)


def _rank_passing(
    passing: Sequence[Candidate],
    verdicts: Mapping[str, tuple[Verdict, ...]],
    first: Step,
    objective: str,
    constraint_count: int,
) -> Selection:
    metric = _OBJECTIVE_METRIC[objective]
    sign = 1.0 if objective == "latency" else -1.0
    ranked = sorted(
        (c for c in passing if c.metrics.get(metric) is not None),
        key=lambda c: (sign * _value(c, metric), c.key),
    )
    unranked = {
        c.key: f"not measured: {metric} is needed to rank by {objective}"
        for c in passing
        if c.metrics.get(metric) is None
    }
    if not ranked:
        note = f"none of the candidates kept has {metric} to rank by: nothing is selected"
        steps = (first, Step("objective", (), unranked, note))
        return Selection(
            objective, None, verdicts, steps, None, (), f"Nothing is selected: {note}."
        )
    best = ranked[0]
    best_text = with_unit(_value(best, metric), metric)
    ranking = f"{_BEST_WORD[objective]} {metric_label(metric)}"
    note = f"ranked by {ranking}: {best.key} is best at {best_text}"
    ranking_steps = [first, Step("objective", tuple(c.key for c in ranked), unranked, note)]
    tied = [c for c in ranked if _overlaps(_interval(c, metric), _interval(best, metric))]
    winner, summary = best, _selected_summary(best, best, objective, len(ranked), constraint_count)
    if len(tied) >= 2:
        tie_break, winner, why = _noise_tie_break(tied, metric)
        ranking_steps.append(tie_break)
        summary = _selected_summary(winner, best, objective, len(ranked), constraint_count)
        summary += f" Tied with it within measurement noise: {_names(tied, winner)}; {why}."
    return Selection(objective, winner.key, verdicts, tuple(ranking_steps), None, (), summary)


def _noise_tie_break(tied: Sequence[Candidate], metric: str) -> tuple[Step, Candidate, str]:
    """Among candidates within noise of the best, the one using the least memory (VRAM when
    every one of them has it, else host memory), then the first key."""
    has_vram = all(c.metrics.get("vram_mb") is not None for c in tied)
    memory = "vram_mb" if has_vram else "host_memory_mb"
    by_memory = sorted(tied, key=lambda c: (_memory(c, memory), c.key))
    winner, label = by_memory[0], metric_label(memory)
    least = _memory_text(winner, memory)
    removed = {}
    for loser in by_memory[1:]:
        if _memory(loser, memory) == _memory(winner, memory):
            removed[loser.key] = f"same {label} as {winner.key} ({least}); the key breaks the tie"
        else:
            removed[loser.key] = f"{label} {_memory_text(loser, memory)}, more than {least}"
    if any(_memory(c, memory) == _memory(winner, memory) for c in by_memory[1:]):
        why = f"{winner.key} comes first by key among those with the least {label} ({least})"
    else:
        why = f"{winner.key} uses the least {label} of them ({least})"
    note = (
        f"{', '.join(c.key for c in tied)} are within measurement noise of the best on "
        f"{metric_label(metric)} (their 95% CIs overlap the best's); {why}"
    )
    return Step("noise_tie_break", (winner.key,), removed, note), winner, why


def _nothing_passes(
    ordered: Sequence[Candidate],
    verdicts: Mapping[str, tuple[Verdict, ...]],
    first: Step,
    objective: str,
    engines_unavailable: Mapping[str, str],
    constraint_count: int,
) -> Selection:
    violation = {c.key: total_violation(verdicts[c.key]) for c in ordered}
    closest = min(ordered, key=lambda c: (violation[c.key], c.key))
    least = format_number(violation[closest.key])
    removed = {
        c.key: f"total relative violation {format_number(violation[c.key])}, more than {least}"
        for c in ordered
        if c is not closest
    }
    failures = "; ".join(v.note for v in verdicts[closest.key] if v.passed is not True)
    note = f"the closest is {closest.key}, with a total relative violation of {least} ({failures})"
    steps = (first, Step("closest", (closest.key,), removed, note))
    suggestions = advise(ordered, verdicts, engines_unavailable)
    advice = f" What could change the verdict: {'; '.join(suggestions)}." if suggestions else ""
    summary = (
        f"No candidate is selected: none of the {len(ordered)} meets "
        f"{_all_constraints(constraint_count)}; {note}.{advice}"
    )
    return Selection(objective, None, verdicts, steps, closest.key, suggestions, summary)


def _nothing_measured(objective: str, engines_unavailable: Mapping[str, str]) -> Selection:
    unavailable = "; ".join(
        f"{name}: {engines_unavailable[name]}" for name in sorted(engines_unavailable)
    )
    why = f" (unavailable here: {unavailable})" if unavailable else ""
    summary = f"No candidate is selected: no engine x batch size was measured{why}."
    return Selection(objective, None, {}, (), None, (), summary)


def total_violation(verdicts: Sequence[Verdict]) -> float:
    """The sum over failed constraints of |margin| / |threshold| (|margin| when the threshold is
    0); a constraint whose metric was not measured counts 1."""
    total = 0.0
    for verdict in verdicts:
        if verdict.passed is None or verdict.margin is None:
            total += 1.0
        elif not verdict.passed:
            total += abs(verdict.margin) / (abs(verdict.threshold) or 1.0)
    return total


def _selected_summary(
    winner: Candidate, best: Candidate, objective: str, ranked_count: int, constraint_count: int
) -> str:
    metric = _OBJECTIVE_METRIC[objective]
    label, best_word = metric_label(metric), _BEST_WORD[objective]
    if constraint_count == 0:
        head = f"{winner.engine} at batch {winner.batch_size} is selected: no constraints were "
        head, pool = head + "given, and it", f"of the {ranked_count} candidates"
    else:
        head = f"{winner.engine} at batch {winner.batch_size} is selected: it meets "
        head += f"{_all_constraints(constraint_count)} and"
        pool = f"of the {ranked_count} candidates that do"
    if ranked_count == 1:
        return f"{head} is the only candidate{' that does' if constraint_count else ''}."
    value = with_unit(_value(winner, metric), metric)
    if winner is best:
        return f"{head} has the {best_word} {label} ({value}) {pool}."
    best_value = with_unit(_value(best, metric), metric)
    return (
        f"{head} its {label} ({value}) is within measurement noise of the {best_word} {pool} "
        f"({best.key} at {best_value})."
    )


def _names(tied: Sequence[Candidate], winner: Candidate) -> str:
    return ", ".join(c.key for c in tied if c is not winner)


def _all_constraints(count: int) -> str:
    return "the 1 constraint" if count == 1 else f"all {count} constraints"


def _value(candidate: Candidate, metric: str) -> float:
    value = candidate.metrics.get(metric)
    assert value is not None  # callers filter the unmeasured out first
    return value


def _interval(candidate: Candidate, metric: str) -> Interval:
    # Without an interval the point estimate stands alone: only an equal value ties with it.
    value = _value(candidate, metric)
    return candidate.intervals.get(metric, Interval(value, value))


def _overlaps(first: Interval, second: Interval) -> bool:
    return first.low <= second.high and second.low <= first.high


def _memory(candidate: Candidate, metric: str) -> float:
    value = candidate.metrics.get(metric)
    return float("inf") if value is None else value  # unmeasured memory never wins a tie


def _memory_text(candidate: Candidate, metric: str) -> str:
    value = candidate.metrics.get(metric)
    return "not measured" if value is None else with_unit(value, metric)
