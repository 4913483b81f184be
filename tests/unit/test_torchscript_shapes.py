"""A TorchScript upload without ``input_shape``: the task's usual input is tried once, and kept
(and said to be assumed) if the model runs on it; otherwise the upload ends ``invalid`` saying
which shape was tried and which field to set."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from actors.jobs.registry import run_to_end
from actors.models.conversion import ConversionRequest, convert
from actors.models.job import conversion_job
from cvplatform.config import Settings
from cvplatform.errors import InvalidModel
from store import queries
from store.records import ModelRecord
from tests import models_kit
from tests.jobs_kit import WriterStore, reporter_for


def _scripted(module: object, path: Path) -> Path:
    import torch

    torch.jit.save(torch.jit.script(module), str(path))
    return path


def _any_size_classifier(path: Path) -> Path:
    """Convolutions and a global pool: runs on any image size."""
    return _scripted(models_kit.tiny_classifier(classes=4), path)


def _cifar_only_classifier(path: Path) -> Path:
    """A Linear on the flattened image: runs on 3,32,32 and nothing else."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return _scripted(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 4)).eval(), path)


def _any_size_detector(path: Path) -> Path:
    """A YOLO-shaped head, [N, 4 + 3 classes, anchors], on any image size."""
    import torch
    from torch import nn

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 7, 3, stride=8, padding=1)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            features: torch.Tensor = self.conv(images)
            return features.flatten(2)

    torch.manual_seed(0)
    return _scripted(Head().eval(), path)


def _request(path: Path, task_type: str, input_shape: list[int] | None = None) -> ConversionRequest:
    return ConversionRequest(
        source_path=path, source_format="torchscript", task_type=task_type, input_shape=input_shape
    )


# --- the conversion, as plain code -------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "task_type", "usual"),
    [
        (_any_size_classifier, "classification", [3, 224, 224]),
        (_any_size_detector, "detection", [3, 640, 640]),
    ],
)
def test_without_input_shape_the_tasks_usual_input_is_assumed(
    tmp_path: Path, make: object, task_type: str, usual: list[int]
) -> None:
    source = make(tmp_path / "model.pt")  # type: ignore[operator]
    details = convert(_request(source, task_type), tmp_path).details
    assert details["input_shape"] == usual
    assert details["input_shape_assumed"] is True
    assert ",".join(map(str, usual)) in details["input_shape_note"]
    assert "input_shape" in details["input_shape_note"]
    assert details["summary"]["inputs"][0]["shape"] == ["batch", *usual]
    assert details["parity"]["input_shape"] == [2, *usual]


def test_a_model_that_does_not_run_on_the_usual_input_is_refused_with_the_way_out(
    tmp_path: Path,
) -> None:
    source = _cifar_only_classifier(tmp_path / "model.pt")
    with pytest.raises(InvalidModel) as refused:
        convert(_request(source, "classification"), tmp_path)
    message = refused.value.message
    assert "tried 3,224,224 at batch 1" in message
    assert "mat1 and mat2 shapes cannot be multiplied" in message  # the model's own reason
    assert "input_shape=" in message
    assert not (tmp_path / "model.onnx").exists()


def test_with_input_shape_given_nothing_is_assumed(tmp_path: Path) -> None:
    source = _cifar_only_classifier(tmp_path / "model.pt")
    details = convert(_request(source, "classification", [3, 32, 32]), tmp_path).details
    assert details["summary"]["inputs"][0]["shape"] == ["batch", 3, 32, 32]
    assert not {"input_shape", "input_shape_assumed", "input_shape_note"} & details.keys()


# --- through the conversion job, on a real store -----------------------------------------------


def _converted(settings: Settings, store: WriterStore, make: object) -> ModelRecord:
    """Upload a TorchScript classifier without input_shape and run its conversion job."""
    model_id = uuid.uuid4().hex
    relative = f"models/{model_id}/source.pt"
    source = settings.artifacts_dir / relative
    source.parent.mkdir(parents=True)
    make(source)  # type: ignore[operator]
    store.call_sync(
        "create_model",
        model={
            "id": model_id,
            "name": "scripted",
            "framework": "pytorch",
            "source_format": "torchscript",
            "task_type": "classification",
            "weights_origin": "uploaded",
            "source_filename": "model.pt",
        },
        source={"path": relative, "sha256": "0" * 64, "size_bytes": source.stat().st_size},
    )
    job = conversion_job(model_id)
    run_to_end(job, reporter_for(settings, job, store))
    model = queries.model_by_id(store.writer._db, model_id)
    assert model is not None
    return model


def test_the_assumed_shape_is_recorded_on_the_ready_model(
    settings: Settings, store: WriterStore
) -> None:
    model = _converted(settings, store, _any_size_classifier)
    assert model.status == "ready", model.status_reason
    assert model.details["input_shape"] == [3, 224, 224]
    assert model.details["input_shape_assumed"] is True
    assert model.input_shape == [3, 224, 224]  # the record's own field, not only the details
    assert model.onnx is not None


def test_the_upload_ends_invalid_naming_the_shape_tried_and_the_field(
    settings: Settings, store: WriterStore
) -> None:
    model = _converted(settings, store, _cifar_only_classifier)
    assert model.status == "invalid"
    assert model.status_reason is not None
    assert "3,224,224" in model.status_reason and "input_shape" in model.status_reason
    assert model.onnx is None
