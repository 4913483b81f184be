"""The technical view's tables: raw metrics, deltas, constraint verdicts and selection steps."""

from __future__ import annotations

from collections.abc import Sequence

from cvplatform.reports import formatting as fmt
from cvplatform.reports.deltas import Change, Delta
from cvplatform.reports.document import Align, Table, Tone
from cvplatform.reports.facts import ReportFacts, key_rank, split_key
from cvplatform.reports.inputs import ResultRow

LATENCY_COLUMNS = (
    ("latency_mean_ms", "Mean"),
    ("latency_p50_ms", "p50"),
    ("latency_p95_ms", "p95"),
    ("latency_p99_ms", "p99"),
    ("latency_min_ms", "Min"),
    ("latency_max_ms", "Max"),
    ("latency_std_ms", "Std"),
)
RESOURCE_COLUMNS = (
    ("cpu_percent", "CPU (%)"),
    ("host_memory_mb", "Host memory (MB)"),
    ("gpu_percent", "GPU (%)"),
    ("vram_mb", "VRAM (MB)"),
    ("setup_s", "Setup (s)"),
    ("cold_ms", "Cold run (ms)"),
)
_STATUS_TONE: dict[str, Tone] = {"completed": "neutral", "cancelled": "warning"}


def latency_table(facts: ReportFacts) -> Table:
    rows: list[tuple[str, ...]] = []
    tones: list[tuple[Tone, ...]] = []
    for row in facts.measured():
        cells = [facts.label(row.engine), str(row.batch_size), row.status]
        cells += [
            fmt.metric_number(metric, row.metrics.get(metric)) for metric, _ in LATENCY_COLUMNS
        ]
        cells.insert(6, _interval(row, "latency_p95_ms"))
        cells.insert(8, _interval(row, "latency_p99_ms"))
        rows.append(tuple(cells))
        tones.append(_tones(12, {2: _STATUS_TONE.get(row.status, "neutral")}))
    columns = (
        "Engine",
        "Batch",
        "Status",
        "Mean",
        "p50",
        "p95",
        "p95 CI",
        "p99",
        "p99 CI",
        "Min",
        "Max",
        "Std",
    )
    return Table(
        columns,
        tuple(rows),
        align=("left", "right", "left") + ("right",) * 9,
        tones=tuple(tones),
        caption="Latency per batch, in ms (CI: 95% bootstrap confidence interval)",
    )


def throughput_table(facts: ReportFacts) -> Table:
    rows = []
    for row in facts.measured():
        cells = [facts.label(row.engine), str(row.batch_size)]
        cells += [
            fmt.metric_number("throughput_fps", row.metrics.get("throughput_fps")),
            _interval(row, "throughput_fps"),
        ]
        cells += [
            fmt.metric_number(metric, row.metrics.get(metric)) for metric, _ in RESOURCE_COLUMNS
        ]
        rows.append(tuple(cells))
    resources = (header for _, header in RESOURCE_COLUMNS)
    columns = ("Engine", "Batch", "Throughput (samples/s)", "Throughput CI", *resources)
    return Table(
        columns, tuple(rows), caption="Throughput and resources, sampled during the measured runs"
    )


def accuracy_table(facts: ReportFacts) -> Table | None:
    """One row per engine: accuracy is measured once per engine, whatever the batch size."""
    rows = []
    for engine in facts.engines:
        row = next((r for r in facts.measured() if r.engine == engine), None)
        if row is None or row.metrics.get("accuracy_percent") is None:
            continue
        cells = [
            fmt.metric_number(m, row.metrics.get(m))
            for m in ("accuracy_percent", "accuracy_drop_pp", "agreement_percent")
        ]
        rows.append((facts.label(engine), *cells))
    if not rows:
        return None
    columns = ("Engine", "Accuracy (%)", "Drop vs FP32 CPU (pp)", "Agreement with FP32 CPU (%)")
    return Table(columns, tuple(rows), caption="Accuracy on the validation split, once per engine")


def not_measured_table(facts: ReportFacts) -> Table | None:
    """Engines that could not run or failed, one row per engine and reason."""
    grouped: dict[tuple[str, str, str], list[int]] = {}
    for row in facts.not_measured():
        grouped.setdefault((row.engine, row.status, row.error or "no reason stored"), []).append(
            row.batch_size
        )
    if not grouped:
        return None
    rows = [
        (facts.label(engine), ", ".join(str(b) for b in sizes), status, reason)
        for (engine, status, reason), sizes in grouped.items()
    ]
    tones = [_tones(4, {2: "bad" if status == "failed" else "warning"}) for _, _, status, _ in rows]
    return Table(
        ("Engine", "Batch sizes", "Status", "Reason"),
        tuple(rows),
        align=("left", "left", "left", "left"),
        tones=tuple(tones),
        caption="Not measured",
    )


def delta_table(
    facts: ReportFacts, deltas: Sequence[Delta], *, by_engine: bool, caption: str
) -> Table:
    # Accuracy is measured once per engine: across batch sizes it only differs if stored so.
    accuracy = [d.change("accuracy_percent") for d in deltas]
    with_accuracy = (
        any(c is not None for c in accuracy) if by_engine else any(map(_nonzero, accuracy))
    )
    metrics = ["latency_p95_ms", "throughput_fps", "host_memory_mb"] + (
        ["accuracy_percent"] if with_accuracy else []
    )
    headers = {
        "latency_p95_ms": "p95 latency",
        "throughput_fps": "Throughput",
        "host_memory_mb": "Host memory",
        "accuracy_percent": "Accuracy",
    }
    rows: list[tuple[str, ...]] = []
    for delta in deltas:
        changes = [delta.change(metric) for metric in metrics]
        lead = (
            (facts.label(delta.engine), str(delta.batch_size))
            if by_engine
            else (facts.label(delta.engine), f"{delta.batch_size} vs {delta.base_batch_size}")
        )
        rows.append((*lead, *(_change_text(c) for c in changes), delta.words))
    align: tuple[Align, ...] = ("left", "right") + ("right",) * len(metrics) + ("left",)
    columns = (
        "Engine",
        "Batch" if by_engine else "Batches",
        *(headers[m] for m in metrics),
        "In words",
    )
    # No tones: better or worse is said by the sign and in words; a coloured badge would read
    # as a constraint's PASS or FAIL.
    return Table(columns, tuple(rows), align=align, caption=caption)


def constraint_table(facts: ReportFacts) -> Table:
    rows: list[tuple[str, ...]] = []
    tones: list[tuple[Tone, ...]] = []
    for key in sorted(facts.verdicts, key=key_rank):
        engine, batch_size = split_key(key)
        for verdict in facts.verdicts[key]:
            metric, passed = str(verdict["metric"]), verdict.get("passed")
            margin, share = verdict.get("margin"), verdict.get("margin_percent")
            limit = fmt.constraint_text(metric, str(verdict["op"]), float(verdict["threshold"]))
            state = "pass" if passed is True else "fail" if passed is False else "not measured"
            noise = "yes" if verdict.get("within_noise") else "no"
            margin_text = (
                fmt.NOT_MEASURED
                if margin is None
                else f"{fmt.signed(float(margin), 2)} {fmt.unit_of(metric)}"
            )
            share_text = fmt.NOT_MEASURED if share is None else fmt.signed_percent(float(share))
            measured = fmt.metric_text(metric, verdict.get("measured"))
            rows.append(
                (
                    facts.label(engine),
                    str(batch_size),
                    limit,
                    measured,
                    state,
                    margin_text,
                    share_text,
                    noise,
                )
            )
            tone: Tone = "good" if passed is True else "bad" if passed is False else "warning"
            tones.append(_tones(8, {4: tone, 7: "warning" if noise == "yes" else "neutral"}))
    return Table(
        (
            "Engine",
            "Batch",
            "Constraint",
            "Measured",
            "Verdict",
            "Margin",
            "Margin (% of limit)",
            "Within noise",
        ),
        tuple(rows),
        align=("left", "right", "left", "right", "left", "right", "right", "left"),
        tones=tuple(tones),
        caption="Margin: room to spare (positive) or shortfall (negative). Within noise: the limit "
        "lies inside the metric's 95% confidence interval, so a rerun could flip the verdict.",
    )


def removed_table(facts: ReportFacts) -> Table | None:
    rows = []
    for number, step in enumerate(facts.steps, start=1):
        for key, why in step.removed:
            rows.append((str(number), facts.candidate_text(key), facts.readable(why)))
    if not rows:
        return None
    return Table(
        ("Step", "Candidate removed", "Why"),
        tuple(rows),
        align=("right", "left", "left"),
        caption="What each step removed",
    )


def _tones(width: int, marked: dict[int, Tone]) -> tuple[Tone, ...]:
    """A row of tones: neutral but for the ``marked`` columns."""
    return tuple(marked.get(column, "neutral") for column in range(width))


def _interval(row: ResultRow, metric: str) -> str:
    interval = row.intervals.get(metric)
    return fmt.NOT_MEASURED if interval is None else fmt.interval_text(metric, *interval)


def _change_text(change: Change | None) -> str:
    if change is None or change.change is None:
        return fmt.NOT_MEASURED
    text = (
        fmt.signed_pp(change.change) if change.unit == "pp" else fmt.signed_percent(change.change)
    )
    return f"{text} (noise)" if change.within_noise else text


def _nonzero(change: Change | None) -> bool:
    return change is not None and change.change is not None and fmt.fixed(change.change, 1) != "0.0"
