"""Benchmark requests and results: engines, batch sizes, constraints, and what was measured."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator

from cvplatform.schemas.base import Page, WireModel
from cvplatform.schemas.jobs import JobOut

EngineName = Literal["onnxruntime_cpu", "onnxruntime_cpu_int8", "onnxruntime_cuda", "tensorrt_fp16"]
ConstraintOperator = Literal["<", "<=", ">", ">="]
Objective = Literal["latency", "throughput"]
ResultStatus = Literal["completed", "failed", "unavailable", "cancelled"]
MAX_BATCH_SIZE = 1024

# The metric names a constraint may use (cvplatform.benchmarking.constraints.METRICS describes each;
# a unit test keeps the two equal). Kept here as well so that the SDK needs no numpy to validate.
METRIC_NAMES = (
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_min_ms",
    "latency_max_ms",
    "latency_std_ms",
    "throughput_fps",
    "cpu_percent",
    "machine_cpu_percent",
    "host_memory_mb",
    "gpu_percent",
    "vram_mb",
    "setup_s",
    "cold_ms",
    "accuracy_percent",
    "accuracy_drop_pp",
    "agreement_percent",
)


class ConstraintIn(WireModel):
    """``{"metric": "latency_p95_ms", "op": "<", "value": 50}``."""

    metric: str = Field(description=f"one of: {', '.join(METRIC_NAMES)}")
    op: ConstraintOperator
    value: float

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in METRIC_NAMES:
            raise ValueError(
                f"unknown metric {metric!r}: known metrics are {', '.join(METRIC_NAMES)}"
            )
        return metric

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("the value must be a finite number")
        return value


class BenchmarkRequest(WireModel):
    """What to measure. Iteration counts and the seed fix the inputs and the aggregation."""

    model_id: str = Field(min_length=1, max_length=64)
    engines: list[EngineName] | None = Field(
        None,
        min_length=1,
        description="default: every engine (those this machine lacks are "
        "reported unavailable with the reason)",
    )
    batch_sizes: list[int] = Field([1, 8, 32], min_length=1, max_length=16)
    input_shape: list[int] | None = Field(
        None,
        description="C, H, W; default: the model's own (required when its height or width is "
        "dynamic)",
    )
    warmup_iterations: int = Field(20, ge=0, le=10_000)
    iterations: int = Field(200, ge=1, le=100_000)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    cpu_threads: int | None = Field(None, ge=1, le=256, description="default: the library's own")
    constraints: list[ConstraintIn] = Field([], max_length=32)
    objective: Objective = Field(
        "latency", description="rank by lowest p95 latency or by highest throughput"
    )

    @field_validator("batch_sizes")
    @classmethod
    def _batch_sizes(cls, sizes: list[int]) -> list[int]:
        wrong = [size for size in sizes if not 1 <= size <= MAX_BATCH_SIZE]
        if wrong:
            raise ValueError(f"batch sizes must be between 1 and {MAX_BATCH_SIZE}; got {wrong}")
        if len(set(sizes)) != len(sizes):
            raise ValueError(f"batch sizes repeat: {sizes}")
        return sorted(sizes)

    @field_validator("engines")
    @classmethod
    def _engines(cls, engines: list[EngineName] | None) -> list[EngineName] | None:
        if engines is not None and len(set(engines)) != len(engines):
            raise ValueError(f"engines repeat: {engines}")
        return engines

    @field_validator("input_shape")
    @classmethod
    def _input_shape(cls, shape: list[int] | None) -> list[int] | None:
        if shape is None:
            return None
        if len(shape) != 3:
            raise ValueError(
                f"input_shape is C, H, W (three sizes, the batch comes from batch_sizes); "
                f"got {len(shape)}: {shape}"
            )
        if not all(1 <= side <= 4096 for side in shape):
            raise ValueError(f"input_shape sizes must be between 1 and 4096; got {shape}")
        return shape


class BenchmarkResultOut(WireModel):
    """One engine at one batch size: every metric (``None``: not measured, see ``details``)."""

    engine: EngineName
    batch_size: int
    status: ResultStatus
    metrics: dict[str, float | None]
    intervals: dict[str, tuple[float, float]] = Field(
        description="95% bootstrap confidence intervals: latency_p95_ms, latency_p99_ms, "
        "throughput_fps"
    )
    details: dict[str, Any] = Field(
        description="setup (session creation or engine build), cold run, resources, accuracy"
    )
    error: str | None = Field(description="why it failed or is unavailable")


class BenchmarkOut(JobOut):
    """The benchmark job; its ``result`` holds the environment, the constraint verdicts and the
    engine selection with each step of its reasoning."""

    results: list[BenchmarkResultOut]
    report_id: str | None = Field(
        None, description="the report, once the benchmark has completed (GET /api/v1/reports/{id})"
    )


BenchmarkPage = Page[JobOut]


ReportView = Literal["technical", "simple"]
ReportFormat = Literal["pdf", "html", "json", "csv"]


class ReportOut(WireModel):
    """A report; its content: ``GET /api/v1/reports/{id}?view=...&format=...``."""

    id: str
    benchmark_id: str
    model_id: str
    model_name: str
    created_at: str
    selected: str | None = Field(description="the engine selected, as engine@batch_size")


ReportPage = Page[ReportOut]
