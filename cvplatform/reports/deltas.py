"""Delta analysis: each engine against FP32 ONNX Runtime CPU at the same batch size, and each batch
size against the smallest one (batch 1 when measured) of the same engine.

Changes are relative (%) for latency, throughput and memory, and a difference in percentage points
for accuracy. A latency or throughput change whose 95% confidence intervals overlap is called
"within noise" rather than faster or slower: the measurement cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cvplatform.reports import formatting as fmt
from cvplatform.reports.facts import REFERENCE_ENGINE, ReportFacts
from cvplatform.reports.inputs import ResultRow

DeltaKind = Literal["engine_vs_reference", "batch_vs_smallest"]
COMPARED = ("latency_p95_ms", "throughput_fps", "host_memory_mb", "vram_mb", "accuracy_percent")


@dataclass(frozen=True)
class Change:
    metric: str
    base: float
    value: float
    change: float | None  # % for every metric but accuracy (pp); None: a zero base
    unit: Literal["%", "pp"]
    within_noise: bool  # the two 95% confidence intervals overlap


@dataclass(frozen=True)
class Delta:
    kind: DeltaKind
    engine: str
    batch_size: int
    base_engine: str
    base_batch_size: int
    changes: tuple[Change, ...]  # in COMPARED order, only metrics both rows have
    words: str

    def change(self, metric: str) -> Change | None:
        return next((c for c in self.changes if c.metric == metric), None)


def engine_deltas(facts: ReportFacts) -> tuple[Delta, ...]:
    """Every completed engine but the reference against the reference at the same batch size."""
    found = []
    for engine in facts.engines:
        if engine == REFERENCE_ENGINE:
            continue
        for batch_size in facts.batch_sizes:
            row, base = (
                facts.completed(engine, batch_size),
                facts.completed(REFERENCE_ENGINE, batch_size),
            )
            if row is not None and base is not None:
                changes = _changes(row, base)
                words = _engine_words(facts, row, changes)
                found.append(
                    Delta(
                        "engine_vs_reference",
                        engine,
                        batch_size,
                        REFERENCE_ENGINE,
                        batch_size,
                        changes,
                        words,
                    )
                )
    return tuple(found)


def batch_deltas(facts: ReportFacts) -> tuple[Delta, ...]:
    """Every completed batch size of an engine against its smallest completed one."""
    found = []
    for engine in facts.engines:
        completed = [b for b in facts.batch_sizes if facts.completed(engine, b) is not None]
        for batch_size in completed[1:]:
            row, base = facts.completed(engine, batch_size), facts.completed(engine, completed[0])
            assert row is not None and base is not None
            changes = _changes(row, base)
            found.append(
                Delta(
                    "batch_vs_smallest",
                    engine,
                    batch_size,
                    engine,
                    completed[0],
                    changes,
                    _batch_words(row, base, changes),
                )
            )
    return tuple(found)


def _changes(row: ResultRow, base: ResultRow) -> tuple[Change, ...]:
    changes = []
    for metric in COMPARED:
        value, base_value = row.metrics.get(metric), base.metrics.get(metric)
        if value is None or base_value is None:
            continue
        if metric == "accuracy_percent":
            changes.append(Change(metric, base_value, value, value - base_value, "pp", False))
        else:
            change = fmt.relative_change(value, base_value)
            changes.append(
                Change(metric, base_value, value, change, "%", _overlap(row, base, metric))
            )
    return tuple(changes)


def _overlap(row: ResultRow, base: ResultRow, metric: str) -> bool:
    first, second = row.intervals.get(metric), base.intervals.get(metric)
    if first is None or second is None:
        return False
    return first[0] <= second[1] and second[0] <= first[1]


def _engine_words(facts: ReportFacts, row: ResultRow, changes: Sequence[Change]) -> str:
    """ "INT8 CPU is 35.9% faster than FP32 CPU (p95 3.02 ms vs 4.71 ms), uses 7.5% less host
    memory and is 0.28 pp less accurate (96.9% vs 97.2%)"."""
    clauses = comparison_clauses(facts, row, changes)
    name = facts.short(row.engine)
    if not clauses:
        return f"{name} and {facts.short(REFERENCE_ENGINE)} share no measured metric"
    return f"{name} {join_clauses(clauses)}"


def comparison_clauses(facts: ReportFacts, row: ResultRow, changes: Sequence[Change]) -> list[str]:
    """What ``row`` does against the reference, each clause without its subject."""
    base = facts.short(REFERENCE_ENGINE)
    clauses = []
    latency = _find(changes, "latency_p95_ms")
    if latency is not None:
        clauses.append(f"is {_speed_words(latency, base)} ({_pair(latency)})")
    memory = _find(
        changes, "vram_mb" if row.metrics.get("vram_mb") is not None else "host_memory_mb"
    )
    if memory is not None and memory.change is not None and fmt.fixed(memory.change, 1) != "0.0":
        more = "more" if memory.change > 0 else "less"
        what = "VRAM" if memory.metric == "vram_mb" else "host memory"
        clauses.append(f"uses {fmt.percent(abs(memory.change))}% {more} {what}")
    accuracy = _find(changes, "accuracy_percent")
    if accuracy is not None and accuracy.change is not None:
        clauses.append(_accuracy_words(accuracy))
    return clauses


def join_clauses(clauses: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    if len(clauses) <= 1:
        return "".join(clauses)
    return f"{', '.join(clauses[:-1])} and {clauses[-1]}"


def _batch_words(row: ResultRow, base: ResultRow, changes: Sequence[Change]) -> str:
    """ "Batch 8 gives 212.0% more throughput than batch 1 (1052.3 vs 337.2 samples/s); each batch
    takes 157.4% longer (p95 7.62 ms vs 2.96 ms)"."""
    head = f"Batch {row.batch_size}"
    parts = []
    throughput = _find(changes, "throughput_fps")
    if throughput is not None and throughput.change is not None:
        values = f"{fmt.fps(throughput.value)} vs {fmt.fps(throughput.base)} samples/s"
        against = f"batch {base.batch_size}"
        if throughput.within_noise:
            gives = f"about the same throughput as {against}, within noise"
        else:
            more = "more" if throughput.change > 0 else "less"
            gives = f"{fmt.percent(abs(throughput.change))}% {more} throughput than {against}"
        parts.append(f"{head} gives {gives} ({values})")
    latency = _find(changes, "latency_p95_ms")
    if latency is not None and latency.change is not None:
        longer = "longer" if latency.change > 0 else "less time"
        parts.append(
            f"each batch takes {fmt.percent(abs(latency.change))}% {longer} ({_pair(latency)})"
        )
    return "; ".join(parts) if parts else f"{head}: nothing to compare with batch {base.batch_size}"


def _speed_words(latency: Change, base: str) -> str:
    if latency.within_noise or latency.change is None or abs(latency.change) < 0.05:
        return f"about as fast as {base}, within noise"
    faster = "faster" if latency.change < 0 else "slower"
    return f"{fmt.percent(abs(latency.change))}% {faster} than {base}"


def _pair(latency: Change) -> str:
    return f"p95 {fmt.ms(latency.value)} ms vs {fmt.ms(latency.base)} ms"


def _accuracy_words(accuracy: Change) -> str:
    assert accuracy.change is not None
    values = f"{fmt.percent(accuracy.value)}% vs {fmt.percent(accuracy.base)}%"
    if fmt.fixed(accuracy.change, 2) == "0.00":
        return f"is as accurate ({values})"
    more = "more" if accuracy.change > 0 else "less"
    return f"is {fmt.fixed(abs(accuracy.change), 2)} pp {more} accurate ({values})"


def _find(changes: Sequence[Change], metric: str) -> Change | None:
    return next((c for c in changes if c.metric == metric), None)
