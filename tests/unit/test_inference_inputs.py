"""What the pool reads about a model before serving it, from a real store on a temporary SQLite:
its ONNX file and input, its class names, the engine its latest completed benchmark selected, and
the preprocessing a trained model was trained with."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from actors.models.onnx_inspect import inspect_onnx
from cvplatform.config import Settings
from cvplatform.schemas.jobs import PreprocessConfig
from store.artifacts import write_artifact
from store.inference_inputs import serving_input
from store.writer import StoreWriter
from tests import models_kit
from tests.jobs_kit import WriterStore, ready_onnx_model


class SteppingClock:
    """Each reading a second after the last: the order of finished_at is the order of the calls."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[WriterStore]:
    """The conftest's store, on a clock that steps (two writes never share a millisecond)."""
    writer = StoreWriter(tmp_path / "data" / "cvp.db", clock=SteppingClock())
    yield WriterStore(writer)
    writer.close()


@pytest.fixture(scope="module")
def toy_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models_kit.onnx_classifier(tmp_path_factory.mktemp("toy") / "toy.onnx")


def read(settings: Settings, store: WriterStore, model_id: str) -> Any:
    return serving_input(store.writer._db, settings.artifacts_dir, model_id)


def finished_job(
    store: WriterStore,
    kind: str,
    model_id: str | None,
    status: str = "completed",
    result: dict[str, Any] | None = None,
) -> str:
    job_id = enqueued_job(store, kind, model_id)
    return finish(store, job_id, status, result)


def enqueued_job(store: WriterStore, kind: str, model_id: str | None) -> str:
    job_id = uuid.uuid4().hex
    store.writer.enqueue_job(
        {"id": job_id, "kind": kind, "name": kind, "model_id": model_id, "request": {}},
        max_queued=100,
    )
    return job_id


def finish(
    store: WriterStore, job_id: str, status: str = "completed", result: dict[str, Any] | None = None
) -> str:
    store.writer.claim_job(job_id)
    store.writer.finish_job(
        job_id, status, result=result, error=None if status == "completed" else "it broke"
    )
    return job_id


def test_an_unknown_model_reads_as_none(settings: Settings, store: WriterStore) -> None:
    assert read(settings, store, "no-such-model") is None


def test_an_uploaded_onnx_model_reads_its_file_and_input_and_nothing_else(
    settings: Settings, store: WriterStore, toy_onnx: Path
) -> None:
    model_id = ready_onnx_model(settings, store, toy_onnx)
    model = read(settings, store, model_id)

    assert (model.model_id, model.name, model.status) == (model_id, "toy", "ready")
    assert model.task_type == "classification"
    assert model.input_dims == ("batch", 3, 32, 32)
    assert model.onnx is not None
    assert model.onnx.path.read_bytes() == toy_onnx.read_bytes()
    assert model.onnx.path.is_relative_to(settings.artifacts_dir)
    assert model.onnx.sha256 == hashlib.sha256(toy_onnx.read_bytes()).hexdigest()
    assert model.class_names is None
    assert model.preprocessing is None
    assert (model.selected_engine, model.selected_by) == (None, None)


def test_the_latest_completed_benchmark_selects_the_engine(
    settings: Settings, store: WriterStore, toy_onnx: Path
) -> None:
    model_id = ready_onnx_model(settings, store, toy_onnx)
    other_id = ready_onnx_model(settings, store, toy_onnx)
    earlier = enqueued_job(store, "benchmark", model_id)
    later = enqueued_job(store, "benchmark", model_id)
    finish(store, later, result={"selected": "onnxruntime_cpu@1"})
    finish(store, earlier, result={"selected": "onnxruntime_cpu_int8@8"})  # queued first, ends last

    model = read(settings, store, model_id)
    assert (model.selected_engine, model.selected_by) == ("onnxruntime_cpu_int8", earlier)

    # Ended later, but neither completed, nor of this model, nor a benchmark: none counts.
    finished_job(store, "benchmark", model_id, "failed", {"selected": "tensorrt_fp16@1"})
    finished_job(store, "benchmark", model_id, "cancelled", {"selected": "tensorrt_fp16@1"})
    enqueued_job(store, "benchmark", model_id)  # still queued
    finished_job(store, "benchmark", other_id, result={"selected": "onnxruntime_cuda@4"})
    finished_job(store, "training", model_id, result={"selected": "onnxruntime_cuda@4"})
    model = read(settings, store, model_id)
    assert (model.selected_engine, model.selected_by) == ("onnxruntime_cpu_int8", earlier)

    newest = finished_job(store, "benchmark", model_id, result={"selected": "onnxruntime_cpu@16"})
    model = read(settings, store, model_id)
    assert (model.selected_engine, model.selected_by) == ("onnxruntime_cpu", newest)


def test_a_latest_benchmark_that_selected_nothing_leaves_no_selection(
    settings: Settings, store: WriterStore, toy_onnx: Path
) -> None:
    model_id = ready_onnx_model(settings, store, toy_onnx)
    finished_job(store, "benchmark", model_id, result={"selected": "onnxruntime_cpu_int8@8"})
    # Nothing met the constraints: the earlier selection is not what the latest benchmark says.
    nothing = finished_job(store, "benchmark", model_id, result={"selected": None})
    model = read(settings, store, model_id)
    assert (model.selected_engine, model.selected_by) == (None, nothing)


def trained_onnx_model(
    settings: Settings,
    store: WriterStore,
    onnx_file: Path,
    training_job_id: str,
    class_names: list[str],
) -> str:
    """A model as training registers it (details name its job and classes), made ready with its
    converted ONNX file as the conversion records it."""
    model_id = uuid.uuid4().hex
    source = write_artifact(settings.artifacts_dir, f"models/{model_id}/source.pth", [b"weights"])
    converted = write_artifact(
        settings.artifacts_dir, f"models/{model_id}/model.onnx", [onnx_file.read_bytes()]
    )
    store.writer.create_model(
        {
            "id": model_id,
            "name": "trained",
            "framework": "pytorch",
            "source_format": "torch_state_dict",
            "task_type": "classification",
            "weights_origin": f"trained by job {training_job_id}",
            "source_filename": "trained.pth",
            "details": {"trained_on": "d1", "job_id": training_job_id, "class_names": class_names},
        },
        {"path": source.relative_path, "sha256": source.sha256, "size_bytes": source.size_bytes},
    )
    onnx = {
        "path": converted.relative_path,
        "sha256": converted.sha256,
        "size_bytes": converted.size_bytes,
    }
    store.writer.finish_conversion(model_id, onnx, {"summary": inspect_onnx(onnx_file)})
    return model_id


def prepared_dataset(store: WriterStore, config: PreprocessConfig, cache_key: str) -> None:
    dataset_id = uuid.uuid4().hex
    store.writer.create_dataset(
        {
            "id": dataset_id,
            "name": "digits",
            "task_type": "classification",
            "source_filename": "digits.zip",
            "source_sha256": "0" * 64,
            "source_size_bytes": 1,
            "files_path": f"datasets/{dataset_id}",
        }
    )
    store.writer.start_preprocessing(
        preprocessing_id=uuid.uuid4().hex,
        dataset_id=dataset_id,
        cache_key=cache_key,
        config=config.model_dump(mode="json"),
        output_path=f"preprocessed/{cache_key}",
        created_by=None,
    )


def test_a_trained_model_reads_the_preprocessing_it_was_trained_with(
    settings: Settings, store: WriterStore, toy_onnx: Path
) -> None:
    config = PreprocessConfig(image_size=(48, 64), mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    prepared_dataset(store, config, cache_key="key-1")
    training = finished_job(
        store, "training", None, result={"preprocessing_cache_key": "key-1", "epochs": 1}
    )
    model_id = trained_onnx_model(settings, store, toy_onnx, training, ["zero", "one"])

    model = read(settings, store, model_id)
    assert model.preprocessing == {
        "image_size": [48, 64],
        "mean": [0.5, 0.4, 0.3],
        "std": [0.2, 0.25, 0.3],
    }
    assert model.class_names == ("zero", "one")
    assert model.onnx is not None and model.onnx.path.name == "model.onnx"


def test_a_trained_model_whose_preprocessing_is_gone_reads_none(
    settings: Settings, store: WriterStore, toy_onnx: Path
) -> None:
    training = finished_job(store, "training", None, result={"preprocessing_cache_key": "gone"})
    model_id = trained_onnx_model(settings, store, toy_onnx, training, ["zero", "one"])
    assert read(settings, store, model_id).preprocessing is None
    no_job = trained_onnx_model(settings, store, toy_onnx, "no-such-job", ["zero"])
    assert read(settings, store, no_job).preprocessing is None
