"""A report input read once into ordered, typed facts the views share.

Stored JSON may come back with its keys in any order (a JSONB column sorts them its own way), so
every sequence here has a fixed order: engines in the platform's order, batch sizes ascending,
constraints as requested, candidates by engine then batch size.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from cvplatform.benchmarking.constraints import format_number
from cvplatform.reports.formatting import constraint_text
from cvplatform.reports.inputs import ReportInput, ResultRow
from cvplatform.schemas.benchmarks import EngineName

ENGINE_ORDER: tuple[str, ...] = get_args(EngineName)
REFERENCE_ENGINE = "onnxruntime_cpu"  # FP32 on the CPU: what the other engines are compared with
GPU_ENGINES = ("onnxruntime_cuda", "tensorrt_fp16")
MEASURED_STATUSES = ("completed", "cancelled")

# Shown when the stored result lacks an engine's label (an older or an interrupted benchmark).
_FALLBACK_LABELS: Mapping[str, str] = {
    "onnxruntime_cpu": "ONNX Runtime CPU FP32",
    "onnxruntime_cpu_int8": "ONNX Runtime CPU INT8",
    "onnxruntime_cuda": "ONNX Runtime CUDA",
    "tensorrt_fp16": "TensorRT FP16",
}
_SHORT_NAMES: Mapping[str, str] = {
    "onnxruntime_cpu": "FP32 CPU",
    "onnxruntime_cpu_int8": "INT8 CPU",
    "onnxruntime_cuda": "CUDA",
    "tensorrt_fp16": "TensorRT FP16",
}


@dataclass(frozen=True)
class ConstraintSpec:
    metric: str
    op: str
    value: float


@dataclass(frozen=True)
class Step:
    rule: str
    kept: tuple[str, ...]
    removed: tuple[tuple[str, str], ...]  # (candidate key, why), by key
    note: str


@dataclass(frozen=True)
class ReportFacts:
    """What every section reads: rows in order, labels, constraints and the stored decision."""

    report: ReportInput
    engines: tuple[str, ...]  # those in the results, in the platform's order
    batch_sizes: tuple[int, ...]
    rows: tuple[ResultRow, ...]  # by engine, then batch size
    constraints: tuple[ConstraintSpec, ...]
    objective: str
    selected: str | None  # "engine@batch"
    closest: str | None
    summary: str
    steps: tuple[Step, ...]
    suggestions: tuple[str, ...]
    verdicts: Mapping[str, tuple[Mapping[str, Any], ...]]

    def label(self, engine: str) -> str:
        """The engine's name as people read it: "ONNX Runtime CPU INT8"."""
        stored = self.engine_info(engine).get("label")
        return str(stored) if stored else _FALLBACK_LABELS.get(engine, engine)

    def short(self, engine: str) -> str:
        return _SHORT_NAMES.get(engine, engine)

    def engine_info(self, engine: str) -> Mapping[str, Any]:
        engines = self.report.benchmark.result.get("engines") or {}
        info = engines.get(engine)
        return info if isinstance(info, Mapping) else {}

    def row(self, engine: str, batch_size: int) -> ResultRow | None:
        for row in self.rows:
            if row.engine == engine and row.batch_size == batch_size:
                return row
        return None

    def measured(self) -> tuple[ResultRow, ...]:
        """Rows with measurements (completed, or cancelled after some runs)."""
        return tuple(r for r in self.rows if r.status in MEASURED_STATUSES and r.metrics)

    def completed(self, engine: str, batch_size: int) -> ResultRow | None:
        row = self.row(engine, batch_size)
        return row if row is not None and row.status == "completed" else None

    def candidate(self, key: str | None) -> ResultRow | None:
        if key is None:
            return None
        engine, batch_size = split_key(key)
        return self.row(engine, batch_size)

    def candidate_text(self, key: str) -> str:
        """ "ONNX Runtime CPU INT8 at batch 8"."""
        engine, batch_size = split_key(key)
        return f"{self.label(engine)} at batch {batch_size}"

    def not_measured(self) -> tuple[ResultRow, ...]:
        return tuple(r for r in self.rows if r not in self.measured())

    def unavailable_gpu_engines(self) -> tuple[tuple[str, str], ...]:
        """(engine, reason) for each GPU engine this machine could not run."""
        found = []
        for engine in GPU_ENGINES:
            info = self.engine_info(engine)
            rows = [r for r in self.rows if r.engine == engine]
            if info.get("available") is False or any(r.status == "unavailable" for r in rows):
                reason = info.get("reason") or next((r.error for r in rows if r.error), None)
                found.append((engine, str(reason or "unavailable")))
        return tuple(found)

    def readable(self, text: str) -> str:
        """A stored note with engine names and candidate keys as people read them, and
        constraints with their units: "onnxruntime_cpu@8" -> "ONNX Runtime CPU FP32 at batch 8"."""
        names = sorted(set(ENGINE_ORDER) | set(self.engines), key=len, reverse=True)
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")(?:@(\d+))?\b")

        def replace(match: re.Match[str]) -> str:
            label = self.label(match.group(1))
            return f"{label} at batch {match.group(2)}" if match.group(2) else label

        for constraint in self.constraints:
            stored = f"{constraint.metric} {constraint.op} {format_number(constraint.value)}"
            text = text.replace(stored, constraint_words(constraint))
        return pattern.sub(replace, text)

    def has_accuracy(self) -> bool:
        return any(r.metrics.get("accuracy_percent") is not None for r in self.measured())

    def accuracy_not_measured_because(self) -> str:
        """Why accuracy is missing, as the benchmark stored it, without its own "not measured"
        lead (the sentence around it says that)."""
        source = str(self.report.benchmark.result.get("accuracy_source") or "")
        lead = "not measured: "
        return source[len(lead) :] if source.startswith(lead) else source


def constraint_words(constraint: ConstraintSpec) -> str:
    """ "p95 latency < 50 ms": the constraint with the metric's label and unit."""
    return constraint_text(constraint.metric, constraint.op, constraint.value)


def split_key(key: str) -> tuple[str, int]:
    """ "onnxruntime_cpu@8" -> ("onnxruntime_cpu", 8)."""
    engine, _, batch = key.rpartition("@")
    return engine, int(batch)


def engine_rank(engine: str) -> tuple[int, str]:
    return (
        (ENGINE_ORDER.index(engine), "") if engine in ENGINE_ORDER else (len(ENGINE_ORDER), engine)
    )


def key_rank(key: str) -> tuple[tuple[int, str], int]:
    engine, batch_size = split_key(key)
    return engine_rank(engine), batch_size


def read_facts(report: ReportInput) -> ReportFacts:
    """Order and type what ``report`` holds; tolerant of a result without a selection."""
    rows = tuple(
        sorted(report.benchmark.results, key=lambda r: (engine_rank(r.engine), r.batch_size))
    )
    engines = tuple(dict.fromkeys(r.engine for r in rows))
    selection = report.benchmark.result.get("selection") or {}
    return ReportFacts(
        report=report,
        engines=engines,
        batch_sizes=tuple(sorted({r.batch_size for r in rows})),
        rows=rows,
        constraints=_constraints(report.benchmark.request),
        objective=str(report.benchmark.result.get("objective") or _objective(report)),
        selected=selection.get("selected"),
        closest=selection.get("closest"),
        summary=str(selection.get("summary") or "The benchmark stored no selection."),
        steps=tuple(_step(step) for step in selection.get("steps") or ()),
        suggestions=tuple(str(s) for s in selection.get("suggestions") or ()),
        verdicts=_verdicts(selection.get("verdicts") or {}),
    )


def _objective(report: ReportInput) -> str:
    return str(report.benchmark.request.get("objective") or "latency")


def _constraints(request: Mapping[str, Any]) -> tuple[ConstraintSpec, ...]:
    return tuple(
        ConstraintSpec(str(c["metric"]), str(c["op"]), float(c["value"]))
        for c in request.get("constraints") or ()
    )


def _step(step: Mapping[str, Any]) -> Step:
    removed = step.get("removed") or {}
    return Step(
        rule=str(step.get("rule", "")),
        kept=tuple(str(key) for key in step.get("kept") or ()),
        removed=tuple((key, str(removed[key])) for key in sorted(removed, key=key_rank)),
        note=str(step.get("note", "")),
    )


def _verdicts(
    verdicts: Mapping[str, Sequence[Mapping[str, Any]]],
) -> Mapping[str, tuple[Mapping[str, Any], ...]]:
    return {key: tuple(verdicts[key]) for key in sorted(verdicts, key=key_rank)}
