"""Constraints on benchmark metrics (``latency_p95_ms < 50``) and the verdict on one candidate.

A verdict says pass or fail, by how much (the margin, signed so that a positive margin is room to
spare), and whether the verdict would flip somewhere inside the metric's 95% confidence interval:
a constraint that only just passes on a noisy measurement is flagged "within measurement noise".
A metric that was not measured (accuracy without a labelled dataset, VRAM without a GPU) gives no
verdict rather than a guessed one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cvplatform.benchmarking.stats import Interval


@dataclass(frozen=True)
class MetricInfo:
    unit: str
    better: Literal["lower", "higher"]
    description: str


METRICS: Mapping[str, MetricInfo] = {
    "latency_mean_ms": MetricInfo("ms", "lower", "mean latency of one batch"),
    "latency_p50_ms": MetricInfo("ms", "lower", "median (p50) latency of one batch"),
    "latency_p95_ms": MetricInfo("ms", "lower", "95th-percentile latency of one batch"),
    "latency_p99_ms": MetricInfo("ms", "lower", "99th-percentile latency of one batch"),
    "latency_min_ms": MetricInfo("ms", "lower", "fastest measured batch"),
    "latency_max_ms": MetricInfo("ms", "lower", "slowest measured batch"),
    "latency_std_ms": MetricInfo("ms", "lower", "sample standard deviation of batch latency"),
    "throughput_fps": MetricInfo("samples/s", "higher", "samples per second at this batch size"),
    "cpu_percent": MetricInfo("%", "lower", "this process's CPU use, % of the whole machine"),
    "machine_cpu_percent": MetricInfo("%", "lower", "the whole machine's CPU use"),
    "gpu_percent": MetricInfo("%", "lower", "GPU utilisation (NVML), mean over the window"),
    "host_memory_mb": MetricInfo(
        "MB", "lower", "peak resident host memory the engine added to the process"
    ),
    "vram_mb": MetricInfo("MB", "lower", "peak GPU memory used on the device (NVML)"),
    "setup_s": MetricInfo("s", "lower", "session creation or engine build time"),
    "cold_ms": MetricInfo("ms", "lower", "the first (cold) inference, apart from the rest"),
    "accuracy_percent": MetricInfo("%", "higher", "top-1 % or mAP50 x 100 on the validation split"),
    "accuracy_drop_pp": MetricInfo("pp", "lower", "accuracy lost against FP32 ONNX Runtime CPU"),
    "agreement_percent": MetricInfo("%", "higher", "% of samples whose top-1 matches FP32 CPU"),
}

OPERATORS: tuple[str, ...] = ("<", "<=", ">", ">=")

# Short names for notes a user reads; metrics without one are named as they are.
_LABELS: Mapping[str, str] = {
    "latency_mean_ms": "mean latency",
    "latency_p50_ms": "p50 latency",
    "latency_p95_ms": "p95 latency",
    "latency_p99_ms": "p99 latency",
    "latency_min_ms": "min latency",
    "latency_max_ms": "max latency",
    "latency_std_ms": "latency standard deviation",
    "throughput_fps": "throughput",
    "cpu_percent": "process CPU",
    "machine_cpu_percent": "machine CPU",
    "gpu_percent": "GPU utilisation",
    "host_memory_mb": "engine host memory",
    "vram_mb": "VRAM",
    "setup_s": "setup time",
    "cold_ms": "cold inference",
    "accuracy_percent": "accuracy",
    "accuracy_drop_pp": "accuracy drop",
    "agreement_percent": "agreement with FP32",
}

_NOT_MEASURED_WHY: Mapping[str, str] = {
    "accuracy_percent": "accuracy needs a labelled dataset, and the model has none",
    "accuracy_drop_pp": "accuracy needs a labelled dataset, and the model has none",
    "agreement_percent": "agreement needs the model's dataset and an FP32 CPU reference",
    "gpu_percent": "GPU utilisation needs NVML and a GPU",
    "vram_mb": "VRAM needs NVML and a GPU",
}

_CONSTRAINT_FORM = re.compile(r"^\s*([A-Za-z0-9_]+)\s*([<>=!]+)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {format_number(self.value)}"


def metric_label(metric: str) -> str:
    """The name a user reads for ``metric`` ("p95 latency" for ``latency_p95_ms``)."""
    return _LABELS.get(metric, metric)


def format_number(value: float) -> str:
    """A number as a note shows it: one decimal from 10 up, two from 1, three below; no
    trailing zeros ("50", "8.8", "0.125")."""
    if not math.isfinite(value):
        return str(value)
    text = f"{value:.{_decimals(value)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _decimals(value: float) -> int:
    magnitude = abs(value)
    return 1 if magnitude >= 10 else 2 if magnitude >= 1 else 3


def _range(interval: Interval, metric: str) -> str:
    # Both ends with the same decimals, so that "47.0-52.3 ms" reads as one range.
    decimals = _decimals(max(abs(interval.low), abs(interval.high)))
    low, high = f"{interval.low:.{decimals}f}", f"{interval.high:.{decimals}f}"
    unit = METRICS[metric].unit
    return f"{low}\N{EN DASH}{high}{unit}" if unit == "%" else f"{low}\N{EN DASH}{high} {unit}"


def with_unit(value: float, metric: str) -> str:
    unit = METRICS[metric].unit
    return f"{format_number(value)}{unit}" if unit == "%" else f"{format_number(value)} {unit}"


def check_constraint(constraint: Constraint) -> None:
    """Reject a constraint on an unknown metric, with an unknown operator or a non-finite value.

    Raises:
        ValueError: saying what is wrong and listing what is accepted.
    """
    if constraint.metric not in METRICS:
        known = ", ".join(sorted(METRICS))
        raise ValueError(f"unknown metric {constraint.metric!r}: known metrics are {known}")
    if constraint.op not in OPERATORS:
        raise ValueError(
            f"unknown operator {constraint.op!r} in {constraint.metric!r}: "
            f"use one of {', '.join(OPERATORS)}"
        )
    value = constraint.value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"the value of a constraint must be a finite number, not {value!r}")


def parse_constraint(text: str) -> Constraint:
    """Read ``"latency_p95_ms < 50"`` (spaces optional) into a checked constraint.

    Raises:
        ValueError: when the text is not ``<metric> <op> <number>``, the metric or operator is
            unknown, or the value is not a finite number.
    """
    match = _CONSTRAINT_FORM.match(text)
    if match is None or not match.group(3):
        raise ValueError(
            f"cannot read constraint {text!r}: write <metric> <op> <number>, "
            "e.g. 'latency_p95_ms < 50'"
        )
    metric, op, value_text = match.groups()
    check_constraint(Constraint(metric, op, 0.0))
    try:
        value = float(value_text)
    except ValueError:
        raise ValueError(
            f"the value in constraint {text!r} is not a number: {value_text!r}"
        ) from None
    constraint = Constraint(metric, op, value)
    check_constraint(constraint)
    return constraint


@dataclass(frozen=True)
class Verdict:
    constraint: str
    metric: str
    op: str
    threshold: float
    measured: float | None
    passed: bool | None  # None: the metric was not measured for this candidate (not a pass)
    margin: (
        float | None
    )  # signed, in the metric's unit: > 0 room to spare, < 0 by how much it fails
    margin_percent: float | None  # margin / |threshold| * 100; None when the threshold is 0
    within_noise: bool  # the threshold lies inside the metric's confidence interval
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "constraint": self.constraint,
            "margin": self.margin,
            "margin_percent": self.margin_percent,
            "measured": self.measured,
            "metric": self.metric,
            "note": self.note,
            "op": self.op,
            "passed": self.passed,
            "threshold": self.threshold,
            "within_noise": self.within_noise,
        }


def evaluate(
    constraint: Constraint, metrics: Mapping[str, float | None], intervals: Mapping[str, Interval]
) -> Verdict:
    """The verdict of ``constraint`` on one candidate's measured ``metrics``.

    Args:
        constraint: a checked constraint.
        metrics: the candidate's metrics by section-3 name; missing or None: not measured.
        intervals: 95% confidence intervals of the metrics that have one.
    """
    check_constraint(constraint)
    metric, op, threshold = constraint.metric, constraint.op, constraint.value
    measured = metrics.get(metric)
    if measured is None or not math.isfinite(measured):
        why = _NOT_MEASURED_WHY.get(metric, f"{metric} was not recorded for this candidate")
        note = f"not measured: {why}"
        return Verdict(
            str(constraint), metric, op, float(threshold), None, None, None, None, False, note
        )
    upper_bound = op in ("<", "<=")
    margin = float(threshold - measured if upper_bound else measured - threshold)
    passed = margin > 0 or (margin == 0 and op in ("<=", ">="))
    margin_percent = None if threshold == 0 else margin / abs(threshold) * 100
    interval = intervals.get(metric)
    within_noise = interval is not None and interval.low <= threshold <= interval.high
    note = _note(constraint, measured, margin, margin_percent)
    if within_noise and interval is not None:
        note += f" — within measurement noise (95% CI {_range(interval, metric)})"
    return Verdict(
        constraint=str(constraint),
        metric=metric,
        op=op,
        threshold=float(threshold),
        measured=float(measured),
        passed=passed,
        margin=margin,
        margin_percent=margin_percent,
        within_noise=within_noise,
        note=note,
    )


def _note(constraint: Constraint, measured: float, margin: float, percent: float | None) -> str:
    metric, op = constraint.metric, constraint.op
    head = f"{metric_label(metric)} {with_unit(measured, metric)}"
    threshold = with_unit(constraint.value, metric)
    if margin == 0:
        allows = "allows" if op in ("<=", ">=") else "does not allow"
        return f"{head} equals the limit of {threshold}, which {op!r} {allows}"
    relation = {(True, True): "under", (True, False): "over", (False, True): "above"}.get(
        (op in ("<", "<="), margin > 0), "below"
    )
    share = "" if percent is None else f" ({format_number(abs(percent))}%)"
    return f"{head} is {relation} {threshold} by {with_unit(abs(margin), constraint.metric)}{share}"
