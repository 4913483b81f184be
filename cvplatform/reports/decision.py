"""The decision in words and its key figures, shared by the technical summary and the simple view.

The decision is the one the benchmark stored (its selection); nothing here re-selects. When
nothing met every constraint the figures are those of the closest candidate, said as such.
"""

from __future__ import annotations

from dataclasses import dataclass

from cvplatform.reports import formatting as fmt
from cvplatform.reports.deltas import Change, Delta, comparison_clauses, engine_deltas, join_clauses
from cvplatform.reports.document import Tone
from cvplatform.reports.facts import ReportFacts, split_key
from cvplatform.reports.inputs import ResultRow

_OBJECTIVE_METRIC = {"latency": "p95 latency", "throughput": "throughput"}
_OBJECTIVE_WORDS = {"latency": "the lowest p95 latency", "throughput": "the highest throughput"}


@dataclass(frozen=True)
class KeyFigure:
    key: str  # a metric name, or "speed_vs_reference"
    label: str
    value: float | None
    unit: str
    text: str


def decision_key(facts: ReportFacts) -> str | None:
    """The candidate the figures describe: the selected one, else the closest."""
    return facts.selected or facts.closest


def headline(facts: ReportFacts) -> tuple[str, Tone]:
    """One sentence: what to deploy, or that nothing qualifies."""
    if facts.selected is not None:
        engine, batch_size = split_key(facts.selected)
        return f"Deploy {facts.label(engine)} at batch size {batch_size}.", "good"
    if facts.closest is not None:
        return "No engine and batch size met every constraint.", "bad"
    if not facts.measured():
        return "No engine could be measured, so nothing is selected.", "bad"
    return "Nothing is selected.", "bad"


def why_text(facts: ReportFacts) -> str:
    """A short paragraph on why this engine (or why none), with its numbers."""
    if facts.selected is not None:
        return _why_selected(facts, facts.selected)
    if facts.closest is not None:
        notes = [
            str(v["note"])
            for v in facts.verdicts.get(facts.closest, ())
            if v.get("passed") is not True
        ]
        failing = "; ".join(facts.readable(note) for note in notes) or "it fails a constraint"
        return f"The closest is {facts.candidate_text(facts.closest)}, and it misses: {failing}."
    return facts.readable(facts.summary)


def _why_selected(facts: ReportFacts, key: str) -> str:
    row = facts.candidate(key)
    count = len(facts.constraints)
    ranking = [s for s in facts.steps if s.rule == "objective"]
    ranked = len(ranking[0].kept) if ranking else 1
    best = _OBJECTIVE_WORDS.get(facts.objective, "the best score")
    listed = ", ".join(fmt.constraint_text(c.metric, c.op, c.value) for c in facts.constraints)
    if count:
        meets = "the constraint" if count == 1 else f"all {count} constraints"
        head = f"It meets {meets} ({listed})"
        pool = f"of the {ranked} candidates that do"
    else:
        head, pool = "No constraints were given", f"of the {ranked} measured candidates"
    tie = next((s for s in facts.steps if s.rule == "noise_tie_break"), None)
    if ranked == 1:
        text = (
            f"{head} and is the only candidate that does."
            if count
            else f"{head}; it is the only one measured."
        )
    elif tie is not None and ranking and ranking[0].kept[0] != key:
        fastest = facts.candidate_text(ranking[0].kept[0])
        text = (
            f"{head}. Its {_OBJECTIVE_METRIC.get(facts.objective, 'score')} is within measurement "
            f"noise of the best {pool}, {fastest}, and it uses less memory."
        )
    else:
        text = f"{head}{' and has' if count else '; it has'} {best} {pool}."
    return f"{text}{_against_reference(facts, row)}"


def _against_reference(facts: ReportFacts, row: ResultRow | None) -> str:
    delta = None if row is None else _delta_of(facts, row)
    if row is None or delta is None:
        return ""
    clauses = comparison_clauses(facts, row, delta.changes)
    return f" At batch {row.batch_size} it {join_clauses(clauses)}." if clauses else ""


def _delta_of(facts: ReportFacts, row: ResultRow) -> Delta | None:
    return next(
        (
            d
            for d in engine_deltas(facts)
            if (d.engine, d.batch_size) == (row.engine, row.batch_size)
        ),
        None,
    )


def candidate_row(facts: ReportFacts) -> tuple[str, str] | None:
    """The key figures' first line: which candidate they describe."""
    key = decision_key(facts)
    if key is None:
        return None
    engine, batch_size = split_key(key)
    label = "Selected" if facts.selected is not None else "Closest (fails a constraint)"
    return label, f"{facts.label(engine)}, batch size {batch_size}"


def key_figures(facts: ReportFacts) -> tuple[KeyFigure, ...]:
    """Three to five figures of the decided candidate; none when nothing was measured."""
    row = facts.candidate(decision_key(facts))
    if row is None or not row.metrics:
        return ()
    figures = [
        _metric_figure(row, "latency_p95_ms", f"p95 latency per batch of {row.batch_size}"),
        _metric_figure(row, "throughput_fps", "Throughput"),
    ]
    if row.metrics.get("accuracy_percent") is not None:
        figures.append(_accuracy_figure(row))
    memory = "vram_mb" if row.metrics.get("vram_mb") is not None else "host_memory_mb"
    figures.append(
        _metric_figure(
            row, memory, "Peak VRAM" if memory == "vram_mb" else "Engine host memory (peak)"
        )
    )
    delta = _delta_of(facts, row)
    latency = None if delta is None else delta.change("latency_p95_ms")
    if latency is not None and latency.change is not None:
        figures.append(_speed_figure(latency))
    return tuple(f for f in figures if f.value is not None)[:5]


def _metric_figure(row: ResultRow, metric: str, label: str) -> KeyFigure:
    value = row.metrics.get(metric)
    text = fmt.metric_text(metric, value)
    interval = row.intervals.get(metric)
    if interval is not None and value is not None:
        text += f" (95% CI {fmt.interval_text(metric, *interval)})"
    return KeyFigure(metric, label, value, fmt.unit_of(metric), text)


def _accuracy_figure(row: ResultRow) -> KeyFigure:
    value = row.metrics.get("accuracy_percent")
    drop = row.metrics.get("accuracy_drop_pp")
    text = fmt.metric_text("accuracy_percent", value)
    if drop is not None and row.engine != "onnxruntime_cpu":
        text += f" ({fmt.signed_pp(-drop)} vs FP32 CPU)"
    return KeyFigure("accuracy_percent", "Accuracy (validation split)", value, "%", text)


def _speed_figure(latency: Change) -> KeyFigure:
    assert latency.change is not None
    pair = f"p95 {fmt.ms(latency.value)} ms vs {fmt.ms(latency.base)} ms"
    if latency.within_noise:
        text = f"about as fast, within noise ({pair})"
    else:
        faster = "faster" if latency.change < 0 else "slower"
        text = f"{fmt.percent(abs(latency.change))}% {faster} ({pair})"
    return KeyFigure(
        "speed_vs_reference", "Against FP32 CPU, same batch", latency.change, "%", text
    )
