"""Running one job on a GPU slot: training now. Plain code in :mod:`actors.training` does the
work; this shell gets the data through the preprocessing cache, reports progress to the store,
honours cancellation, and registers the trained model."""

from __future__ import annotations

import io
import json
import logging
import os
import time
import traceback
import uuid
from typing import Any

import torch

from actors.conversion_task import submit_conversion
from actors.dataset_task import run_preprocessing
from actors.datasets.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PreprocessConfig,
    cache_key,
    load_split,
)
from actors.models.torch_source import build_architecture, infer_num_classes, load_state_dict
from actors.training.classification import (
    SplitData,
    train_classifier,
    with_training_head,
    without_training_head,
)
from actors.training.common import Outcome, TrainingCancelled, TrainingFailed, pick_device
from actors.training.detection import DetectionData, train_detector
from cvplatform.config import Settings
from cvplatform.errors import CvpError
from cvplatform.jsonlog import configure_logging
from cvplatform.schemas import Hyperparameters, TrainingRequest
from store import queries
from store.actor import StoreClient
from store.artifacts import write_artifact
from store.connections import open_reader, reading

log = logging.getLogger("cvp.training")
_PROGRESS_EVERY_S = 1.0
_CANCEL_CHECK_EVERY_S = 0.25


class StoreHooks:
    """The training loop's hooks: progress to the store (rate-limited), cancellation from it."""

    def __init__(self, settings: Settings, job_id: str, store: StoreClient) -> None:
        self._job_id, self._store = job_id, store
        self._reader = open_reader(settings.db_path)
        self._progress: dict[str, Any] = {"phase": "training", "step": 0}
        self._last_write = self._last_check = 0.0
        self._stop = False

    def on_batch(self, epoch: int, batch: int, batches: int, step: int) -> None:
        self._progress.update(epoch=epoch, batch=batch, batches=batches, step=step)
        if time.monotonic() - self._last_write >= _PROGRESS_EVERY_S:
            self._write()

    def on_epoch(self, figures: dict[str, Any]) -> None:
        self._progress.update(figures, phase="training")
        self._write({"kind": "epoch", "payload": figures})

    def phase(self, name: str, **details: Any) -> None:
        self._progress.update(phase=name, **details)
        self._write({"kind": "phase", "payload": {"phase": name, **details}})

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self._stop and now - self._last_check >= _CANCEL_CHECK_EVERY_S:
            self._last_check = now
            self._stop = queries.cancel_requested(self._reader, self._job_id)
        return self._stop

    def _write(self, event: dict[str, Any] | None = None) -> None:
        self._last_write = time.monotonic()
        self._store.call_sync(
            "record_job_progress", job_id=self._job_id, progress=self._progress, event=event
        )

    def close(self) -> None:
        self._reader.conn.close()


def _read(settings: Settings, query: Any, record_id: str) -> dict[str, Any]:
    with reading(settings.db_path) as reader:
        row: dict[str, Any] | None = query(reader, record_id)
    if row is None:
        raise TrainingFailed(f"{record_id} no longer exists")
    return row


def image_size(
    hp: Hyperparameters, model: dict[str, Any], dataset: dict[str, Any]
) -> tuple[int, int]:
    """The hyperparameter, else the dataset's own size when uniform (32..640), else the model's."""
    if hp.image_size:
        return hp.image_size
    size = dataset["details"].get("image_size_range") or {}
    if (
        size.get("min")
        and size["min"] == size["max"]
        and min(size["min"]) >= 32
        and max(size["min"]) <= 640
    ):
        width, height = size["min"]
        if dataset["task_type"] == "detection":  # YOLO strides need multiples of 32
            side = max(32, round(max(width, height) / 32) * 32)
            return side, side
        return height, width
    shape = model["input_shape"] or [3, 224, 224]
    return int(shape[-2]), int(shape[-1])


def prepare_data(
    settings: Settings,
    store: StoreClient,
    hooks: StoreHooks,
    job: dict[str, Any],
    config: PreprocessConfig,
    dataset: dict[str, Any],
) -> str:
    """The preprocessed data through the cache: reuse a run with the same key, wait for one in
    progress, or run it here. Returns the output folder (relative to the artifacts)."""
    key = cache_key(dataset["content_hash"], config)
    record = store.call_sync(
        "start_preprocessing",
        preprocessing_id=uuid.uuid4().hex,
        dataset_id=dataset["id"],
        cache_key=key,
        config=config.model_dump(mode="json"),
        output_path=f"preprocessed/{key}",
        created_by=job["owner_id"],
    )
    hooks.phase("preprocessing", cache_hit=record["cache_hit"], cache_key=key)
    if not record["cache_hit"]:
        run_preprocessing(settings, record["id"])
    while True:
        current = _read(settings, queries.preprocessing_by_id, record["id"])
        if current["status"] == "ready":
            return str(current["output_path"])
        if current["status"] == "failed":
            raise TrainingFailed(f"preprocessing failed: {current['status_reason']}")
        if hooks.should_stop():
            raise TrainingCancelled
        time.sleep(0.5)


def _trainable(
    settings: Settings, model: dict[str, Any], dataset: dict[str, Any], hp: Hyperparameters
) -> torch.nn.Module:
    state = load_state_dict(settings.artifacts_dir / model["source"]["path"])
    if dataset["task_type"] == "detection":
        module = build_architecture(model["architecture"], "detection", dataset["num_classes"])
        wanted = module.state_dict()
        # Transfer what fits (the backbone); a head for another number of classes starts fresh.
        module.load_state_dict(
            {k: v for k, v in state.items() if k in wanted and wanted[k].shape == v.shape},
            strict=False,
        )
        return module
    num_classes = model["num_classes"] or infer_num_classes(state)
    module = build_architecture(model["architecture"], "classification", num_classes)
    module.load_state_dict(state)
    return with_training_head(module, dataset["num_classes"], hp.dropout)


def _train(
    settings: Settings,
    module: torch.nn.Module,
    output: str,
    dataset: dict[str, Any],
    hp: Hyperparameters,
    device: Any,
    hooks: StoreHooks,
) -> Outcome:
    folder = settings.artifacts_dir / output
    train, validation = load_split(folder, "train"), load_split(folder, "val")
    if dataset["task_type"] == "detection":
        return train_detector(
            module,
            DetectionData(train[0], train[3]),
            DetectionData(validation[0], validation[3]),
            dataset["num_classes"],
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
    settings: Settings,
    store: StoreClient,
    job: dict[str, Any],
    model: dict[str, Any],
    dataset: dict[str, Any],
    module: torch.nn.Module,
    outcome: Outcome,
    size: tuple[int, int],
) -> str:
    assert outcome.best_state is not None
    module.load_state_dict(outcome.best_state)
    if dataset["task_type"] == "classification":
        without_training_head(module)
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    model_id = uuid.uuid4().hex
    stored = write_artifact(
        settings.artifacts_dir, f"models/{model_id}/source.pth", [buffer.getvalue()]
    )
    store.call_sync(
        "create_model",
        model={
            "id": model_id,
            "name": f"{model['name']} on {dataset['name']}",
            "description": f"trained by job {job['id']} (best epoch {outcome.best_epoch})",
            "framework": "pytorch",
            "source_format": "torch_state_dict",
            "task_type": dataset["task_type"],
            "architecture": model["architecture"],
            "num_classes": dataset["num_classes"],
            "input_shape": json.dumps([3, *size]),
            "weights_origin": f"trained by job {job['id']}",
            "source_filename": "trained.pth",
            "parent_model_id": model["id"],
            "created_by": job["owner_id"],
            "details": {
                "trained_on": dataset["id"],
                "job_id": job["id"],
                "class_names": dataset["class_names"],
            },
        },
        source={
            "path": stored.relative_path,
            "sha256": stored.sha256,
            "size_bytes": stored.size_bytes,
        },
    )
    submit_conversion(settings, model_id)
    return model_id


def run_training(settings: Settings, job: dict[str, Any]) -> str:
    """Run a training job to its end; returns the final status it recorded."""
    configure_logging(settings, f"worker-{os.getpid()}")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // settings.gpu_slots))
    store = StoreClient()
    device = pick_device(settings.gpu_memory_limit_mb)
    store.call_sync("set_job_device", job_id=job["id"], device=device.name)
    hooks = StoreHooks(settings, job["id"], store)
    started = time.perf_counter()
    try:
        request = TrainingRequest.model_validate(job["request"])
        hp = request.hyperparameters
        model = _read(settings, queries.model_by_id, request.model_id)
        dataset = _read(settings, queries.dataset_by_id, request.dataset_id)
        size = image_size(hp, model, dataset)
        detection = dataset["task_type"] == "detection"
        config = PreprocessConfig(
            image_size=size,
            split=(1 - hp.validation_split, hp.validation_split, 0.0),
            seed=hp.seed,
            mean=(0.0, 0.0, 0.0) if detection else IMAGENET_MEAN,  # YOLO takes pixels in [0, 1]
            std=(1.0, 1.0, 1.0) if detection else IMAGENET_STD,
            augmentation=hp.augmentation,
        )
        output = prepare_data(settings, store, hooks, job, config, dataset)
        module = _trainable(settings, model, dataset, hp)
        hooks.phase("training", image_size=list(size))
        outcome = _train(settings, module, output, dataset, hp, device, hooks)
        trained_id = register_trained_model(
            settings, store, job, model, dataset, module, outcome, size
        )
    except TrainingCancelled:
        store.call_sync(
            "finish_job", job_id=job["id"], status="cancelled", error="cancelled on request"
        )
        return "cancelled"
    except torch.OutOfMemoryError:
        return _failed(
            store,
            job,
            f"out of GPU memory (limit {settings.gpu_memory_limit_mb} MB): "
            "lower batch_size or image_size",
        )
    except CvpError as error:
        return _failed(store, job, error.message)
    except Exception as error:
        log.error("job %s crashed:\n%s", job["id"], traceback.format_exc())
        return _failed(store, job, f"training crashed: {type(error).__name__}: {error}")
    finally:
        hooks.close()
    result = {
        **outcome.result(),
        "duration_s": round(time.perf_counter() - started, 2),
        "device": device.name,
        "trained_model_id": trained_id,
        "image_size": list(size),
        "preprocessing_cache_key": cache_key(dataset["content_hash"], config),
        "epochs": outcome.epochs,
    }
    if device.name.startswith("cuda"):
        result["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    store.call_sync("finish_job", job_id=job["id"], status="completed", result=result)
    return "completed"


def _failed(store: StoreClient, job: dict[str, Any], message: str) -> str:
    log.warning("job %s failed: %s", job["id"], message)
    store.call_sync("finish_job", job_id=job["id"], status="failed", error=message)
    return "failed"


RUNNERS = {"training": run_training}


def run_job(settings: Settings, job: dict[str, Any]) -> str:
    return RUNNERS[job["kind"]](settings, job)
