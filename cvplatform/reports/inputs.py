"""What a report is built from: stored data only, gathered once when its benchmark completes.

The report keeps this input (``reports.input`` in the store); every format of both views is a pure
function of it, so a report can be rebuilt at any time, byte for byte. The creation time is part
of the input: nothing inside reads a clock or draws a random number.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResultRow(_Input):
    """One engine at one batch size, as the benchmark stored it."""

    engine: str
    batch_size: int
    status: str  # completed, failed, unavailable, cancelled
    metrics: dict[str, float | None]
    intervals: dict[str, tuple[float, float]]
    details: dict[str, Any]
    error: str | None


class BenchmarkInput(_Input):
    id: str
    request: dict[str, Any]  # the BenchmarkRequest as queued
    result: dict[str, Any]  # environment, engines, constraints, objective, selection...
    results: list[ResultRow]
    started_at: str | None
    finished_at: str | None


class ModelInput(_Input):
    id: str
    name: str
    framework: str
    task_type: str
    architecture: str | None
    input_shape: list[int] | None
    num_classes: int | None
    source_sha256: str
    onnx_sha256: str | None
    parent_model_id: str | None
    preset: str | None


class DatasetInput(_Input):
    id: str
    name: str
    content_hash: str | None
    num_samples: int | None
    num_classes: int | None
    task_type: str


class TrainingInput(_Input):
    job_id: str
    split_seed: int
    validation_split: float
    epochs: int | None
    final_accuracy: float | None
    best_val_accuracy: float | None


class ReportInput(_Input):
    report_id: str
    created_at: str  # ISO 8601, UTC: an input, never read from a clock inside
    platform_version: str
    benchmark: BenchmarkInput
    model: ModelInput
    dataset: DatasetInput | None = None
    training: TrainingInput | None = None
