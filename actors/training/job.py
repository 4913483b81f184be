"""The training job on the kernel: a model trained on a dataset, on one GPU slot.

Plain code in :mod:`actors.training` runs the loops; this gets the data through the preprocessing
cache, reports through the kernel's reporter (progress, epochs, cancellation) and registers the
trained model, whose conversion is submitted as a job of its own.
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import torch

from actors.datasets.job import preprocessing_job
from actors.datasets.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PreprocessConfig,
    cache_key,
    load_split,
)
from actors.jobs.registry import Job, Outcome, run_to_end
from actors.jobs.reporter import JobReporter
from actors.models.job import conversion_job
from actors.models.torch_source import build_architecture, infer_num_classes, load_state_dict
from actors.training.classification import (
    SplitData,
    train_classifier,
    with_training_head,
    without_training_head,
)
from actors.training.common import Outcome as TrainingOutcome
from actors.training.common import TrainingFailed, pick_device
from actors.training.detection import DetectionData, train_detector
from cvplatform.config import Settings
from cvplatform.schemas import Hyperparameters, TrainingRequest
from cvplatform.schemas.optimizations import TrialRequest
from store import queries
from store.records import DatasetRecord, ModelRecord

_PREPROCESSING_POLL_S = 0.5
Value = TypeVar("Value")


def known(value: Value | None, what: str) -> Value:
    """A field a trainable model or a ready dataset has.

    Raises:
        TrainingFailed: it has none (the request's checks let something through).
    """
    if value is None:
        raise TrainingFailed(f"{what} is not known, so this cannot be trained")
    return value


def image_size(
    hp: Hyperparameters,
    model_input: Sequence[int] | None,
    task_type: str,
    size_range: Mapping[str, Any] | None,
) -> tuple[int, int]:
    """The hyperparameter, else the dataset's own size when uniform (32..640), else the model's."""
    if hp.image_size:
        return hp.image_size
    size = size_range or {}
    if (
        size.get("min")
        and size["min"] == size["max"]
        and min(size["min"]) >= 32
        and max(size["min"]) <= 640
    ):
        width, height = size["min"]
        if task_type == "detection":  # YOLO strides need multiples of 32
            side = max(32, round(max(width, height) / 32) * 32)
            return side, side
        return height, width
    shape = model_input or [3, 224, 224]
    return int(shape[-2]), int(shape[-1])


def prepare_data(reporter: JobReporter, config: PreprocessConfig, dataset: DatasetRecord) -> str:
    """The preprocessed data through the cache: reuse a run with the same key, wait for one in
    progress, or run it here. Returns the output folder (relative to the artifacts)."""
    key = cache_key(known(dataset.content_hash, "the dataset's content hash"), config)
    claim = reporter.ops.start_preprocessing(
        preprocessing_id=uuid.uuid4().hex,
        dataset_id=dataset.id,
        cache_key=key,
        config=config.model_dump(mode="json"),
        output_path=f"preprocessed/{key}",
        created_by=reporter.job.owner_id,
    )
    reporter.phase("preprocessing", cache_hit=claim.cache_hit, cache_key=key)
    if not claim.cache_hit:
        inline = preprocessing_job(claim.record.id)
        run_to_end(inline, reporter.for_job(inline))
    while True:
        current = reporter.read(queries.preprocessing_by_id, claim.record.id, "preprocessing")
        if current.status == "ready":
            return str(current.output_path)
        if current.status == "failed":
            raise TrainingFailed(f"preprocessing failed: {current.status_reason}")
        reporter.stop_if_asked()
        time.sleep(_PREPROCESSING_POLL_S)


def _trainable(
    settings: Settings, model: ModelRecord, dataset: DatasetRecord, hp: Hyperparameters
) -> torch.nn.Module:
    state = load_state_dict(settings.artifacts_dir / model.source.path)
    if dataset.task_type == "detection":
        module = build_architecture(
            known(model.architecture, "the model's architecture"),
            "detection",
            known(dataset.num_classes, "the dataset's classes"),
        )
        wanted = module.state_dict()
        # Transfer what fits (the backbone); a head for another number of classes starts fresh.
        module.load_state_dict(
            {k: v for k, v in state.items() if k in wanted and wanted[k].shape == v.shape},
            strict=False,
        )
        return module
    num_classes = model.num_classes or infer_num_classes(state)
    module = build_architecture(
        known(model.architecture, "the model's architecture"), "classification", num_classes
    )
    module.load_state_dict(state)
    return with_training_head(
        module, known(dataset.num_classes, "the dataset's classes"), hp.dropout
    )


def _train(
    settings: Settings,
    module: torch.nn.Module,
    output: str,
    dataset: DatasetRecord,
    hp: Hyperparameters,
    device: Any,
    hooks: JobReporter,
) -> TrainingOutcome:
    folder = settings.artifacts_dir / output
    train, validation = load_split(folder, "train"), load_split(folder, "val")
    if dataset.task_type == "detection":
        return train_detector(
            module,
            DetectionData(train[0], train[3]),
            DetectionData(validation[0], validation[3]),
            known(dataset.num_classes, "the dataset's classes"),
            hp,
            device,
            hooks,
        )
    return train_classifier(
        module,
        SplitData(train[0], train[1]),
        SplitData(validation[0], validation[1]),
        hp,
        device,
        hooks,
    )


def register_trained_model(
    reporter: JobReporter,
    model: ModelRecord,
    dataset: DatasetRecord,
    module: torch.nn.Module,
    outcome: TrainingOutcome,
    size: tuple[int, int],
) -> str:
    if outcome.best_state is None:
        raise TrainingFailed("the run ended without a single validated epoch")
    job = reporter.job
    module.load_state_dict(outcome.best_state)
    if dataset.task_type == "classification":
        without_training_head(module)
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    model_id = uuid.uuid4().hex
    stored = reporter.write_artifact(f"models/{model_id}/source.pth", [buffer.getvalue()])
    reporter.ops.create_model(
        model={
            "id": model_id,
            "name": f"{model.name} on {dataset.name}",
            "description": f"trained by job {job.subject_id} (best epoch {outcome.best_epoch})",
            "framework": "pytorch",
            "source_format": "torch_state_dict",
            "task_type": dataset.task_type,
            "architecture": model.architecture,
            "num_classes": dataset.num_classes,
            "input_shape": json.dumps([3, *size]),
            "weights_origin": f"trained by job {job.subject_id}",
            "source_filename": "trained.pth",
            "parent_model_id": model.id,
            "created_by": job.owner_id,
            "details": {
                "trained_on": dataset.id,
                "job_id": job.subject_id,
                "class_names": dataset.class_names,
            },
        },
        source={
            "path": stored.relative_path,
            "sha256": stored.sha256,
            "size_bytes": stored.size_bytes,
        },
    )
    reporter.submit(conversion_job(model_id))
    return model_id


def training_request(raw: Mapping[str, Any]) -> TrainingRequest:
    """A training's request, or a GA trial's (a training that registers no model)."""
    if "trial_index" in raw:
        return TrialRequest.model_validate(raw)
    return TrainingRequest.model_validate(raw)


def run_training(job: Job, reporter: JobReporter) -> Outcome:
    """Train to the end (or to a cancellation); returns the figures and the trained model (a GA
    trial's: its fitness, the best validation accuracy or mAP50, and no model)."""
    settings = reporter.settings
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // settings.gpu_slots))
    device = pick_device(settings.gpu_memory_limit_mb)
    reporter.ops.set_job_device(job_id=job.subject_id, device=device.name)
    started = time.perf_counter()
    request = training_request(job.request)
    trial = isinstance(request, TrialRequest)
    hp = request.hyperparameters
    model = reporter.read(queries.model_by_id, request.model_id, "model")
    dataset = reporter.read(queries.dataset_by_id, request.dataset_id, "dataset")
    size = image_size(
        hp, model.input_shape, dataset.task_type, dataset.details.get("image_size_range")
    )
    detection = dataset.task_type == "detection"
    config = PreprocessConfig(
        image_size=size,
        split=(1 - hp.validation_split, hp.validation_split, 0.0),
        seed=hp.seed,
        mean=(0.0, 0.0, 0.0) if detection else IMAGENET_MEAN,  # YOLO takes pixels in [0, 1]
        std=(1.0, 1.0, 1.0) if detection else IMAGENET_STD,
        augmentation=hp.augmentation,
    )
    try:
        output = prepare_data(reporter, config, dataset)
        module = _trainable(settings, model, dataset, hp)
        reporter.phase("training", image_size=list(size))
        outcome = _train(settings, module, output, dataset, hp, device, reporter)
        trained_id = (
            None
            if trial
            else register_trained_model(reporter, model, dataset, module, outcome, size)
        )
    except torch.OutOfMemoryError:
        return Outcome.failed(
            f"out of GPU memory (limit {settings.gpu_memory_limit_mb} MB): "
            "lower batch_size or image_size"
        )
    result = {
        **outcome.result(),
        "duration_s": round(time.perf_counter() - started, 2),
        "device": device.name,
        "trained_model_id": trained_id,
        "image_size": list(size),
        "preprocessing_cache_key": cache_key(
            known(dataset.content_hash, "the dataset's content hash"), config
        ),
        "epochs": outcome.epochs,
    }
    if trial:
        validated = outcome.best_state is not None
        result["fitness"] = outcome.best_val_accuracy if validated else None
    if device.name.startswith("cuda"):
        result["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return Outcome("completed", result=result)
