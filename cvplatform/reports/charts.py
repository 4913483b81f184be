"""The charts of a report, as data: latency, throughput, accuracy against speed, constraint margins.

Latency bars are the p95 (what the selection ranks by and what latency limits usually bound), with
a whisker from the median (p50) to the p99, so one bar shows the typical batch, the tail, and the
spread between them. Throughput bars carry their 95% confidence interval. Limits on a charted
metric are drawn as lines. Bars keep the engine's label so a renderer can colour by engine.
"""

from __future__ import annotations

from collections.abc import Callable

from cvplatform.reports import formatting as fmt
from cvplatform.reports.document import (
    Bar,
    BarChart,
    BarGroup,
    Point,
    ScatterChart,
    Threshold,
    Tone,
)
from cvplatform.reports.facts import ReportFacts, key_rank, split_key
from cvplatform.reports.inputs import ResultRow

MARGIN_CAP = 100.0  # % of the limit; wider margins would flatten every other bar

# Limits drawn on the latency axis: those in ms per batch (not the standard deviation).
_LATENCY_LIMITS = (
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_max_ms",
)

BarOf = Callable[[ResultRow], Bar | None]


def latency_chart(facts: ReportFacts) -> BarChart | None:
    def bar(row: ResultRow) -> Bar | None:
        p95 = row.metrics.get("latency_p95_ms")
        if p95 is None:
            return None
        low, high = row.metrics.get("latency_p50_ms"), row.metrics.get("latency_p99_ms")
        return Bar(facts.label(row.engine), p95, low, high, _tone(facts, row))

    return _bar_chart(
        facts,
        bar,
        title="Latency per batch, by batch size and engine",
        value_label="latency per batch (ms)",
        thresholds=_thresholds(facts, lambda metric: metric in _LATENCY_LIMITS),
        note="Bar: p95 latency. Whisker: from p50 (median) to p99. Lines: latency limits.",
    )


def throughput_chart(facts: ReportFacts) -> BarChart | None:
    def bar(row: ResultRow) -> Bar | None:
        value = row.metrics.get("throughput_fps")
        if value is None:
            return None
        interval = row.intervals.get("throughput_fps")
        low, high = interval if interval is not None else (None, None)
        return Bar(facts.label(row.engine), value, low, high, _tone(facts, row))

    return _bar_chart(
        facts,
        bar,
        title="Throughput by batch size and engine",
        value_label="throughput (samples/s)",
        thresholds=_thresholds(facts, lambda metric: metric == "throughput_fps"),
        note="Bar: throughput. Whisker: its 95% confidence interval. Lines: throughput limits.",
    )


def accuracy_speed_chart(facts: ReportFacts) -> ScatterChart | None:
    """Accuracy against p95 latency, one point per engine and batch size; None without accuracy."""
    points = []
    for row in facts.measured():
        accuracy, latency = row.metrics.get("accuracy_percent"), row.metrics.get("latency_p95_ms")
        if accuracy is not None and latency is not None:
            label = f"{facts.short(row.engine)}, batch {row.batch_size}"
            points.append(Point(label, latency, accuracy, _tone(facts, row)))
    if not points:
        return None
    return ScatterChart(
        title="Accuracy against speed",
        x_label="p95 latency per batch (ms)",
        y_label="accuracy (%)",
        points=tuple(points),
        note="Up and to the left is better: more accurate and faster.",
    )


def margin_chart(facts: ReportFacts) -> BarChart | None:
    """Per candidate, each constraint's margin in % of its limit: above 0 passes."""
    groups = []
    for key in sorted(facts.verdicts, key=key_rank):
        bars = []
        for verdict in facts.verdicts[key]:
            margin = verdict.get("margin_percent")
            if margin is None:
                continue
            label = fmt.constraint_text(
                str(verdict["metric"]), str(verdict["op"]), float(verdict["threshold"])
            )
            value = max(-MARGIN_CAP, min(MARGIN_CAP, float(margin)))
            bars.append(Bar(label, value, tone="good" if verdict.get("passed") is True else "bad"))
        if bars:
            engine, batch_size = split_key(key)
            groups.append(BarGroup(f"{facts.short(engine)}, batch {batch_size}", tuple(bars)))
    if not groups:
        return None
    return BarChart(
        title="Constraint margins by candidate",
        value_label="margin (% of the limit)",
        groups=tuple(groups),
        thresholds=(Threshold("limit", 0.0),),
        note=(
            "Above 0: the constraint passes with that much room; below 0: it fails by that much. "
            f"Margins beyond {fmt.fixed(MARGIN_CAP, 0)}% are drawn at {fmt.fixed(MARGIN_CAP, 0)}%; "
            "the constraint table has the exact values."
        ),
    )


def _bar_chart(
    facts: ReportFacts,
    bar_of: BarOf,
    *,
    title: str,
    value_label: str,
    thresholds: tuple[Threshold, ...],
    note: str,
) -> BarChart | None:
    groups = []
    for batch_size in facts.batch_sizes:
        bars = [
            bar
            for row in facts.measured()
            if row.batch_size == batch_size and (bar := bar_of(row)) is not None
        ]
        if bars:
            groups.append(BarGroup(f"batch {batch_size}", tuple(bars)))
    if not groups:
        return None
    return BarChart(title, value_label, tuple(groups), thresholds, note)


def _thresholds(facts: ReportFacts, charted: Callable[[str], bool]) -> tuple[Threshold, ...]:
    return tuple(
        Threshold(f"limit: {fmt.constraint_text(c.metric, c.op, c.value)}", c.value)
        for c in facts.constraints
        if charted(c.metric)
    )


def _tone(facts: ReportFacts, row: ResultRow) -> Tone:
    """Good for the selected candidate, bad for one that fails a constraint, else neutral."""
    key = f"{row.engine}@{row.batch_size}"
    if key == facts.selected:
        return "good"
    if any(v.get("passed") is False for v in facts.verdicts.get(key, ())):
        return "bad"
    return "neutral"
