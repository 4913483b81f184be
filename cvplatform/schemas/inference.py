"""The inference pool as the management API shows it: warming a model, what each replica holds,
and the pool's counts (latency histograms with their percentiles, errors by code)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cvplatform.schemas.base import WireModel


class LoadedModelOut(WireModel):
    model_id: str
    engine: str = Field(description="the engine that runs it: onnxruntime_cpu, tensorrt_fp16, ...")
    loaded_at: str
    last_used_at: str
    load_seconds: float


class WarmedOut(WireModel):
    replica: str = Field(description="the replica that loaded it")
    model: LoadedModelOut
    engine_reason: str = Field(description="why this engine: the benchmark that chose it, or not")


class ReplicaOut(WireModel):
    replica: str
    pid: int
    workers: int
    busy: int
    queued: int
    queue_max: int
    models: list[LoadedModelOut]
    updated_at: str


class ModelServingOut(WireModel):
    model_id: str
    loaded_on: list[str] = Field(description="the replicas that hold the model now")
    stats: dict[str, Any] | None = Field(
        description="requests, errors by code and latency histograms since the replicas started"
    )


class InferenceMetricsOut(WireModel):
    replicas: int
    workers: int = Field(description="requests that may infer at once, across the pool")
    busy: int
    free: int
    queued: int = Field(description="requests waiting for a worker (the queue depth)")
    queue_max: int
    models_loaded: list[str]
    by_replica: list[ReplicaOut]
    stats: dict[str, Any] = Field(
        description="requests, images, errors by code, and queue-wait, inference and total "
        "latency histograms (with p50/p95/p99), for the pool and per model"
    )


class LabelOut(WireModel):
    index: int
    name: str = Field(description="the class name the model was trained with, or 'class <i>'")
    confidence: float


class BoxOut(WireModel):
    """A detection in the original image's pixels (x1, y1 top left; x2, y2 bottom right)."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    index: int
    name: str


class ImagePrediction(WireModel):
    input: str = Field(description="the file's name, or 'image <i>' / 'sample <i>'")
    labels: list[LabelOut] | None = Field(None, description="classification: best first")
    boxes: list[BoxOut] | None = Field(None, description="detection: after NMS, best first")


class PredictionTimings(WireModel):
    queue_wait: float = Field(description="ms waiting for a free worker")
    inference: float = Field(description="ms from the batch's queue to the engine's answer")
    total: float = Field(description="ms from the request's arrival to its answer")


class PredictionOut(WireModel):
    request_id: str
    model_id: str
    task_type: str
    engine: str
    images: int = Field(description="images (or tensor samples) in the request")
    batched_with: int = Field(description="requests that shared the engine run")
    predictions: list[ImagePrediction]
    timings_ms: PredictionTimings
