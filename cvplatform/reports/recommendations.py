"""Recommendations: what to change when nothing passes, when a GPU would help, when batching pays,
when INT8 costs too much accuracy, and which verdicts rest on noise.

Each is said only where this benchmark's numbers support it, with those numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cvplatform.reports import formatting as fmt
from cvplatform.reports.deltas import Delta, batch_deltas, engine_deltas, join_clauses
from cvplatform.reports.facts import ReportFacts

INT8_ENGINE = "onnxruntime_cpu_int8"
# Batching "pays" from this much more throughput than the smallest batch: less than that is
# rarely worth the wait for a batch to fill and the longer time per batch.
BATCHING_PAYS_PERCENT = 20.0
# The accuracy drop INT8 may cost when no accuracy_drop_pp constraint says otherwise.
DEFAULT_ACCEPTABLE_DROP_PP = 1.0


def recommendations(facts: ReportFacts) -> tuple[str, ...]:
    """Every recommendation that applies, most urgent first; never empty."""
    int8, gpu = _int8_accuracy(facts), _gpu(facts)
    found = [
        *_when_nothing_passes(facts, covered_int8=bool(int8), covered_gpu=bool(gpu)),
        *_noisy_verdicts(facts),
        *_batching(facts),
        *int8,
        *gpu,
    ]
    return tuple(found) or ("Nothing to change: the selection stands on clear margins.",)


def _when_nothing_passes(facts: ReportFacts, *, covered_int8: bool, covered_gpu: bool) -> list[str]:
    """How the closest candidate could pass, then the selection's own suggestions (less those
    the INT8 and GPU recommendations below already make, with their numbers)."""
    if facts.selected is not None or facts.closest is None:
        return []
    found = []
    for verdict in facts.verdicts.get(facts.closest, ()):
        if verdict.get("passed") is False and verdict.get("measured") is not None:
            found.append(_loosen(facts, facts.closest, verdict))
    for suggestion in facts.suggestions:
        if (covered_gpu and "GPU" in suggestion) or (
            covered_int8 and suggestion.startswith("FP32 keeps")
        ):
            continue
        text = facts.readable(suggestion)
        found.append(f"{text[:1].upper()}{text[1:]}.")
    return found


def _loosen(facts: ReportFacts, key: str, verdict: Mapping[str, Any]) -> str:
    metric, op = str(verdict["metric"]), str(verdict["op"])
    limit = fmt.constraint_text(metric, op, float(verdict["threshold"]))
    measured = fmt.metric_text(metric, float(verdict["measured"]))
    side = "above" if op in ("<", "<=") else "below"
    return (
        f"Nothing passes. The closest, {facts.candidate_text(key)}, fails "
        f"'{limit}' with {measured}: a limit {side} {measured} would let it pass, if the "
        "application can accept it."
    )


def _noisy_verdicts(facts: ReportFacts) -> list[str]:
    key = facts.selected or facts.closest
    if key is None:
        return []
    iterations = facts.report.benchmark.request.get("iterations")
    more = f" (this run measured {iterations} iterations)" if iterations else ""
    return [
        f"{facts.candidate_text(key)} {'passes' if v.get('passed') else 'fails'} "
        f"'{fmt.constraint_text(str(v['metric']), str(v['op']), float(v['threshold']))}' only "
        f"within measurement noise: rerun with more iterations{more} before relying on it."
        for v in facts.verdicts.get(key, ())
        if v.get("within_noise") is True
    ]


def _batching(facts: ReportFacts) -> list[str]:
    found = []
    deltas = batch_deltas(facts)
    for engine in facts.engines:
        best = _best_throughput_gain([d for d in deltas if d.engine == engine])
        if best is None:
            continue
        gain = best.change("throughput_fps")
        latency = best.change("latency_p95_ms")
        assert gain is not None and gain.change is not None
        per_batch = ""
        if latency is not None:
            times = f"{fmt.ms(latency.value)} ms instead of {fmt.ms(latency.base)} ms"
            per_batch = f", at p95 {times} per batch"
        name, base = facts.label(engine), best.base_batch_size
        if gain.change >= BATCHING_PAYS_PERCENT and not gain.within_noise:
            found.append(
                f"Batching pays on {name}: batch {best.batch_size} gives "
                f"{fmt.percent(gain.change)}% more throughput than batch {base} "
                f"({fmt.fps(gain.value)} vs {fmt.fps(gain.base)} samples/s){per_batch}. "
                "Use it where requests can wait to be grouped."
            )
        else:
            found.append(
                f"Batching does not pay on {name}: its best, batch {best.batch_size}, gives "
                f"{fmt.signed_percent(gain.change)} throughput against batch {base}{per_batch}. "
                "Serve it one batch at a time, as small as the traffic allows."
            )
    return found


def _best_throughput_gain(deltas: list[Delta]) -> Delta | None:
    gains = [(d.change("throughput_fps"), d) for d in deltas]
    known = [
        (c.change, d.batch_size, d) for c, d in gains if c is not None and c.change is not None
    ]
    return max(known, key=lambda item: (item[0], -item[1]))[2] if known else None


def _int8_accuracy(facts: ReportFacts) -> list[str]:
    rows = [r for r in facts.measured() if r.engine == INT8_ENGINE]
    if not rows:
        return []
    if not facts.has_accuracy():
        source = facts.accuracy_not_measured_because()
        why = f" ({source})" if source else ""
        return [
            f"Accuracy was not measured{why}, so what INT8 costs in accuracy is unknown: "
            "benchmark a model trained here on a labelled dataset to see it."
        ]
    row = rows[0]
    drop, accuracy = row.metrics.get("accuracy_drop_pp"), row.metrics.get("accuracy_percent")
    if drop is None or accuracy is None:
        return []
    limit, source = _acceptable_drop(facts)
    speed = _int8_speed(facts)
    allowed = f"{fmt.fixed(limit, 2)} pp {source}"
    if fmt.fixed(drop, 2) in ("0.00", "-0.00"):
        return [
            f"INT8 costs no measurable accuracy here ({fmt.percent(accuracy)}%, as FP32){speed}."
        ]
    values = f"{fmt.percent(accuracy)}% vs {fmt.percent(accuracy + drop)}% for FP32"
    if drop > limit:
        return [
            f"INT8 costs too much accuracy: {fmt.fixed(drop, 2)} pp ({values}), more than the "
            f"{allowed}{speed}. Keep FP32 for this model."
        ]
    return [
        f"INT8 costs {fmt.fixed(drop, 2)} pp of accuracy ({values}), within the {allowed}{speed}."
    ]


def _acceptable_drop(facts: ReportFacts) -> tuple[float, str]:
    limits = [
        c.value for c in facts.constraints if c.metric == "accuracy_drop_pp" and c.op in ("<", "<=")
    ]
    if limits:
        return min(limits), "the constraints allow"
    return DEFAULT_ACCEPTABLE_DROP_PP, "taken as acceptable when no constraint says"


def _int8_speed(facts: ReportFacts) -> str:
    """How INT8's p95 latency compares with FP32's at each batch size both have."""
    parts = []
    for delta in engine_deltas(facts):
        latency = delta.change("latency_p95_ms")
        if delta.engine != INT8_ENGINE or latency is None or latency.change is None:
            continue
        if latency.within_noise:
            parts.append(f"about the same (within noise) at batch {delta.batch_size}")
        else:
            lower = "lower" if latency.change < 0 else "higher"
            parts.append(f"{fmt.percent(abs(latency.change))}% {lower} at batch {delta.batch_size}")
    return f", for a p95 latency {join_clauses(parts)}" if parts else ""


def _gpu(facts: ReportFacts) -> list[str]:
    missing = facts.unavailable_gpu_engines()
    if not missing:
        return []
    names = " and ".join(facts.label(engine) for engine, _ in missing)
    reason = missing[0][1]
    return [
        f"{names} could not run here ({reason}). Rerun this benchmark on a machine with an "
        "NVIDIA GPU to compare them with the CPU engines."
    ]
