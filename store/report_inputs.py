"""A report's input gathered from the store: the benchmark, its results, the model, and the
dataset and training behind the model when it was trained here. Read once, when the benchmark
completes; the report keeps it, so later changes (a model deleted) never change a report."""

from __future__ import annotations

from typing import Any

import sqlite_utils

from cvplatform.reports.inputs import (
    BenchmarkInput,
    DatasetInput,
    ModelInput,
    ReportInput,
    ResultRow,
    TrainingInput,
)
from store import queries
from store.records import JobRecord, ModelRecord, as_dict


def _model(model: ModelRecord) -> ModelInput:
    return ModelInput(
        id=model.id,
        name=model.name,
        framework=model.framework,
        task_type=model.task_type,
        architecture=model.architecture,
        input_shape=model.input_shape,
        num_classes=model.num_classes,
        source_sha256=model.source.sha256,
        onnx_sha256=model.onnx.sha256 if model.onnx else None,
        parent_model_id=model.parent_model_id,
        preset=model.preset,
    )


def _training(db: sqlite_utils.Database, model: ModelRecord) -> TrainingInput | None:
    job_id = model.details.get("job_id")
    training = queries.job_by_id(db, str(job_id)) if job_id else None
    if training is None or training.kind != "training":
        return None
    result: dict[str, Any] = dict(training.result or {})
    hyperparameters = training.request.get("hyperparameters", {})
    history = result.get("epochs")  # the figures of every epoch run
    return TrainingInput(
        job_id=training.id,
        split_seed=int(hyperparameters.get("seed", 0)),
        validation_split=float(hyperparameters.get("validation_split", 0.0)),
        epochs=len(history) if isinstance(history, list) else None,
        final_accuracy=result.get("final_accuracy"),
        best_val_accuracy=result.get("best_val_accuracy"),
    )


def _dataset(db: sqlite_utils.Database, model: ModelRecord) -> DatasetInput | None:
    dataset_id = model.details.get("trained_on")
    dataset = queries.dataset_by_id(db, str(dataset_id)) if dataset_id else None
    if dataset is None:
        return None
    return DatasetInput(
        id=dataset.id,
        name=dataset.name,
        content_hash=dataset.content_hash,
        num_samples=dataset.num_samples,
        num_classes=dataset.num_classes,
        task_type=dataset.task_type,
    )


def _benchmark(db: sqlite_utils.Database, job: JobRecord) -> BenchmarkInput:
    rows = [
        ResultRow.model_validate(
            {k: v for k, v in as_dict(row).items() if k not in ("job_id", "recorded_at")}
        )
        for row in queries.benchmark_results(db, job.id)
    ]
    return BenchmarkInput(
        id=job.id,
        request=dict(job.request),
        result=dict(job.result or {}),
        results=rows,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def gather_report_input(
    db: sqlite_utils.Database,
    benchmark_id: str,
    report_id: str,
    created_at: str,
    platform_version: str,
) -> ReportInput:
    """Everything a report of this benchmark says, read from the store.

    Raises:
        RecordNotFound: no such benchmark, or its model is gone.
    """
    job = queries.required(queries.job_by_id, db, benchmark_id, "benchmark")
    model = queries.required(queries.model_by_id, db, str(job.model_id), "model")
    return ReportInput(
        report_id=report_id,
        created_at=created_at,
        platform_version=platform_version,
        benchmark=_benchmark(db, job),
        model=_model(model),
        dataset=_dataset(db, model),
        training=_training(db, model),
    )
