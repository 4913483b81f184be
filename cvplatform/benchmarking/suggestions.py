"""What would change a verdict when no candidate meets every constraint.

Each suggestion is made only where it applies to the failures at hand: a smaller batch for a
latency that fails, a larger one for a throughput that fails, INT8 or FP16 on a GPU when a speed or
memory constraint fails and they were not among the candidates (with the reason when this machine
cannot run them), and the accuracy a reduced precision costs when that is what fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from cvplatform.benchmarking.constraints import Verdict, format_number

if TYPE_CHECKING:  # selection imports this module; the type alone is needed here
    from cvplatform.benchmarking.selection import Candidate

MAX_BATCH_SIZE = 1024  # the largest batch size a benchmark accepts

GPU_ENGINES = ("tensorrt_fp16", "onnxruntime_cuda")
_REDUCED_PRECISION: Mapping[str, str] = {"onnxruntime_cpu_int8": "INT8", "tensorrt_fp16": "FP16"}


def suggestions(
    ordered: Sequence[Candidate],
    verdicts: Mapping[str, tuple[Verdict, ...]],
    engines_unavailable: Mapping[str, str],
) -> tuple[str, ...]:
    """What would change the verdict, each only where it applies to these failures."""
    failed = [(c, v) for c in ordered for v in verdicts[c.key] if v.passed is False]
    advice = _batch_advice(ordered, verdicts, failed)
    engines = {c.engine for c in ordered}
    performance_failed = any(
        not v.metric.startswith(("accuracy_", "agreement_")) for _, v in failed
    )
    if performance_failed and "onnxruntime_cpu_int8" not in engines:
        advice.append(
            "try INT8 (onnxruntime_cpu_int8)"
            + _unavailable(engines_unavailable, "onnxruntime_cpu_int8")
        )
    if performance_failed and not engines.intersection(GPU_ENGINES):
        reasons = [engines_unavailable[name] for name in GPU_ENGINES if name in engines_unavailable]
        where = f" — unavailable here: {reasons[0]}" if reasons else ""
        advice.append(f"{'' if reasons else 'try '}FP16 on a GPU (tensorrt_fp16){where}")
    for candidate, verdict in failed:
        precision = _REDUCED_PRECISION.get(candidate.engine)
        if precision and verdict.metric == "accuracy_drop_pp" and verdict.measured is not None:
            drop = format_number(verdict.measured)
            advice.append(f"FP32 keeps the accuracy; {precision} costs {drop} pp here")
    return tuple(dict.fromkeys(advice))  # each once, in the order found


def _unavailable(engines_unavailable: Mapping[str, str], engine: str) -> str:
    reason = engines_unavailable.get(engine)
    return "" if reason is None else f" — unavailable here: {reason}"


def _batch_advice(
    ordered: Sequence[Candidate],
    verdicts: Mapping[str, tuple[Verdict, ...]],
    failed: Sequence[tuple[Candidate, Verdict]],
) -> list[str]:
    """Per engine and failed latency (throughput) constraint: the batch size tried that does best
    on it when a larger (smaller) failing one exists, and a smaller (larger) batch size not tried
    yet when even that best one fails."""
    advice: list[str] = []
    topics = dict.fromkeys(
        (c.engine, v.constraint, v.metric)
        for c, v in failed
        if v.metric.startswith("latency_") or v.metric == "throughput_fps"
    )
    for engine, constraint, metric in topics:
        smaller = metric.startswith("latency_")  # latency falls with the batch, throughput grows
        sign = 1.0 if smaller else -1.0
        tried = [c for c in ordered if c.engine == engine and c.metrics.get(metric) is not None]
        best = min(tried, key=lambda c: (sign * _measured(c, metric), c.key))
        best_passes = _verdict(verdicts[best.key], constraint).passed is True
        beaten = [
            c
            for c, v in failed
            if c.engine == engine
            and v.constraint == constraint
            and (c.batch_size > best.batch_size) == smaller
            and c.batch_size != best.batch_size
        ]
        if beaten:
            reach = "meets" if best_passes else "comes closer to"
            advice.append(f"batch size {best.batch_size} of {engine} {reach} {constraint}")
        if best_passes:
            continue
        sizes = [c.batch_size for c in ordered if c.engine == engine]
        if smaller and best.batch_size > 1 and min(sizes) == best.batch_size:
            advice.append(
                f"try a batch size smaller than {best.batch_size} for {engine}: "
                f"{constraint} fails at batch {best.batch_size}"
            )
        elif not smaller and max(sizes) == best.batch_size < MAX_BATCH_SIZE:
            advice.append(
                f"try a larger batch size than {best.batch_size} for {engine}: "
                f"{constraint} fails at batch {best.batch_size}"
            )
    return advice


def _verdict(verdicts: Sequence[Verdict], constraint: str) -> Verdict:
    return next(verdict for verdict in verdicts if verdict.constraint == constraint)


def _measured(candidate: Candidate, metric: str) -> float:
    value = candidate.metrics.get(metric)
    assert value is not None  # only candidates measured on the metric can beat another
    return value
