"""PyTorch sources: TorchScript archives and state dicts (loaded with ``weights_only=True``, so no
pickled code ever runs), the architectures they name, and their export to ONNX."""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from actors.models.architectures import check_architecture
from cvplatform.errors import ConversionFailed, InvalidModel

OPSET = 17
DEFAULT_SHAPES = {"classification": [3, 224, 224], "detection": [3, 640, 640]}
_TORCHVISION_DETECTION_SHAPE = [3, 320, 320]
_ULTRALYTICS_REFUSAL = (
    "this is an ultralytics checkpoint: a full pickle that would run code to load, so it is "
    "refused. Export its weights instead: "
    "`torch.save(YOLO('model.pt').model.state_dict(), 'model_state.pth')`, then upload "
    "model_state.pth with architecture=yolov8n.yaml (the yaml the model was built from)"
)


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict, read without unpickling anything but tensors and plain containers.

    Raises:
        InvalidModel: the file needs code to unpickle, or holds no state dict.
    """
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, EOFError, ValueError) as error:
        message = str(error)
        if "ultralytics" in message:
            raise InvalidModel(_ULTRALYTICS_REFUSAL) from error
        if "weights_only" in message or "Unsupported global" in message:
            raise InvalidModel(
                "the file would need arbitrary code to unpickle, so it was refused (only "
                "tensors and plain containers are loaded); upload a state dict "
                "(torch.save(model.state_dict(), path)) or a TorchScript archive"
            ) from error
        raise InvalidModel(f"not a PyTorch file this platform can read: {message[:300]}") from error
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(value, torch.Tensor) for value in loaded.values()
    ):
        raise InvalidModel("the file holds no state dict (a mapping of parameter names to tensors)")
    return dict(loaded)


def infer_num_classes(state: Mapping[str, torch.Tensor]) -> int | None:
    """The classifier's width: rows of the last 2-D weight, the usual final Linear layer."""
    matrices = [
        tensor for name, tensor in state.items() if name.endswith("weight") and tensor.ndim == 2
    ]
    return int(matrices[-1].shape[0]) if matrices else None


def build_architecture(name: str, task_type: str, num_classes: int | None) -> nn.Module:
    """A freshly initialized module of a torchvision builder or an ultralytics model yaml.

    Raises:
        InvalidModel: the name is neither (a path above all), or does not fit the task type.
    """
    check_architecture(name, task_type)  # again here: rows stored before the upload check
    if name.endswith((".yaml", ".yml")):
        return _ultralytics_model(name, task_type, num_classes)
    from torchvision import models

    if task_type == "detection" and name in models.list_models(module=models.detection):
        options: dict[str, Any] = {"weights": None, "weights_backbone": None}
        if num_classes:
            options["num_classes"] = num_classes
        detector: nn.Module = models.get_model(name, **options)
        return detector
    if task_type == "classification" and name in models.list_models(module=models):
        classifier: nn.Module = models.get_model(
            name, weights=None, num_classes=num_classes or 1000
        )
        return classifier
    raise InvalidModel(
        f"unknown {task_type} architecture {name!r}: name a torchvision builder "
        "(resnet18, efficientnet_b0, fasterrcnn_mobilenet_v3_large_320_fpn...) or an "
        "ultralytics model yaml (yolov8n.yaml)"
    )


def _ultralytics_model(name: str, task_type: str, num_classes: int | None) -> nn.Module:
    # ultralytics is AGPL-3.0: imported only when one of its model yamls is named (README).
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics.nn.tasks import ClassificationModel, DetectionModel

    kind = ClassificationModel if "-cls" in name else DetectionModel
    builds = "detection" if kind is DetectionModel else "classification"
    if builds != task_type:
        raise InvalidModel(f"{name} builds a {builds} model, not a {task_type} one")
    try:
        return (
            kind(name, nc=num_classes, verbose=False) if num_classes else kind(name, verbose=False)
        )
    except (FileNotFoundError, KeyError, ValueError) as error:
        raise InvalidModel(f"unknown ultralytics model yaml {name!r}: {error}") from error


def load_into(module: nn.Module, state: Mapping[str, torch.Tensor], architecture: str) -> nn.Module:
    """Load weights strictly; a mismatch names its first keys.

    Raises:
        InvalidModel: missing, unexpected or differently shaped parameters.
    """
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    reshaped = [
        f"{key} {list(state[key].shape)} != {list(tensor.shape)}"
        for key, tensor in expected.items()
        if key in state and state[key].shape != tensor.shape
    ]
    if missing or unexpected or reshaped:
        problems = []
        if missing:
            problems.append(f"missing {_first(missing)}")
        if unexpected:
            problems.append(f"unexpected {_first(unexpected)}")
        if reshaped:
            problems.append(f"shape mismatch {_first(reshaped)}")
        raise InvalidModel(
            f"the state dict does not match architecture {architecture!r}: " + "; ".join(problems)
        )
    module.load_state_dict(state, strict=True)
    return module


def _first(items: list[str], count: int = 3) -> str:
    shown = ", ".join(items[:count])
    return shown + (f" (+{len(items) - count} more)" if len(items) > count else "")


def load_torchscript(path: Path) -> nn.Module:
    try:
        scripted: nn.Module = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]
        return scripted
    except Exception as error:
        raise InvalidModel(f"not a loadable TorchScript archive: {str(error)[:300]}") from error


class _BoxesScoresLabels(nn.Module):
    """torchvision detectors take a list of images and return dicts; ONNX wants tensors."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        found = self.detector(list(images))[0]
        return found["boxes"], found["scores"], found["labels"]


def exportable(module: nn.Module, task_type: str) -> tuple[nn.Module, bool, list[str]]:
    """The module as it is exported: (module, dynamic batch?, output names)."""
    module.eval()
    head = getattr(module, "model", None)
    if head is not None and hasattr(head[-1], "export"):  # ultralytics: one decoded output
        head[-1].export = True
        head[-1].format = "onnx"
        return module, True, ["output0"]
    from torchvision.models.detection import fcos, generalized_rcnn, retinanet, ssd

    detectors = (generalized_rcnn.GeneralizedRCNN, retinanet.RetinaNet, ssd.SSD, fcos.FCOS)
    if isinstance(module, detectors):
        return _BoxesScoresLabels(module).eval(), False, ["boxes", "scores", "labels"]
    return module, True, ["output"] if task_type == "classification" else ["output0"]


def example_shape(module: nn.Module, task_type: str, given: list[int] | None) -> list[int]:
    if given:
        return given
    if isinstance(module, _BoxesScoresLabels):
        return _TORCHVISION_DETECTION_SHAPE
    return DEFAULT_SHAPES[task_type]


def assume_input_shape(module: nn.Module, task_type: str) -> list[int]:
    """The task's usual input (C,H,W), for a TorchScript model uploaded without ``input_shape``:
    kept if one forward pass at batch 1 runs on it.

    Raises:
        InvalidModel: the model does not run on it; the message names the shape tried and the
            field to set.
    """
    shape = DEFAULT_SHAPES[task_type]
    try:
        with torch.inference_mode():
            module(torch.zeros(1, *shape))
    except Exception as error:  # whatever the model's own code raises on an input it cannot take
        lines = [line for line in str(error).splitlines() if line.strip()]
        reason = lines[-1].strip()[:300] if lines else type(error).__name__
        raise InvalidModel(
            f"no input_shape was given, and the model does not run on the usual {task_type} "
            f"input: tried {','.join(map(str, shape))} at batch 1 ({reason}). Set the field "
            "input_shape to the C,H,W the model takes, e.g. input_shape=3,32,32"
        ) from error
    return list(shape)


def run_module(module: nn.Module, sample: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        result = module(torch.from_numpy(sample))
    outputs = result if isinstance(result, list | tuple) else [result]
    return [output.detach().cpu().numpy() for output in outputs if isinstance(output, torch.Tensor)]


def export_onnx(
    module: nn.Module, sample: np.ndarray, path: Path, dynamic_batch: bool, output_names: list[str]
) -> None:
    """Export with the TorchScript-based exporter (no onnxscript needed), batch axis dynamic."""
    axes = {name: {0: "batch"} for name in ["input", *output_names]} if dynamic_batch else None
    try:
        torch.onnx.export(
            module,
            (torch.from_numpy(sample),),
            str(path),
            input_names=["input"],
            output_names=output_names,
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    except Exception as error:
        raise ConversionFailed(f"torch.onnx.export failed: {str(error)[:500]}") from error
