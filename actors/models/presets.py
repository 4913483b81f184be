"""The preset models: YOLOv8n (detection, ultralytics' definition), ResNet50 and EfficientNet-B0
(classification, torchvision). Nothing can be downloaded here, so a preset starts from a seeded
random initialization unless its weights file is found in ``CVP_WEIGHTS_DIR``."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from actors.models import torch_source
from cvplatform.errors import InvalidModel
from store.artifacts import sha256_of

INIT_SEED = 0


@dataclass(frozen=True)
class Preset:
    key: str
    name: str
    description: str
    task_type: str
    architecture: str
    num_classes: int
    input_shape: tuple[int, int, int]
    weight_files: tuple[str, ...]  # torchvision's and ultralytics' own file names


PRESETS: dict[str, Preset] = {
    preset.key: preset
    for preset in (
        Preset(
            "yolov8n",
            "YOLOv8n",
            "Ultralytics YOLOv8 nano object detector (80 COCO classes)",
            "detection",
            "yolov8n.yaml",
            80,
            (3, 640, 640),
            ("yolov8n.pt", "yolov8n_state_dict.pth"),
        ),
        Preset(
            "resnet50",
            "ResNet50",
            "torchvision ResNet-50 image classifier (1000 ImageNet classes)",
            "classification",
            "resnet50",
            1000,
            (3, 224, 224),
            ("resnet50-11ad3fa6.pth", "resnet50-0676ba61.pth"),
        ),
        Preset(
            "efficientnet_b0",
            "EfficientNet-B0",
            "torchvision EfficientNet-B0 image classifier (1000 ImageNet classes)",
            "classification",
            "efficientnet_b0",
            1000,
            (3, 224, 224),
            ("efficientnet_b0_rwightman-7f5810bc.pth", "efficientnet_b0_rwightman-3dd342df.pth"),
        ),
    )
}


@dataclass(frozen=True)
class PresetWeights:
    state_dict_bytes: bytes
    origin: str  # "random-init", or "<file> sha256:<hex>"
    note: str | None = None  # why a weights file that was found was not used


def preset_weights(preset: Preset, weights_dir: Path | None) -> PresetWeights:
    """The preset's state dict, serialized: from a weights file when one is usable, else seeded."""
    torch.manual_seed(INIT_SEED)
    module = torch_source.build_architecture(
        preset.architecture, preset.task_type, preset.num_classes
    )
    note = None
    for candidate in _weight_candidates(preset, weights_dir):
        try:
            state = torch_source.load_state_dict(candidate)
            torch_source.load_into(module, state, preset.architecture)
        except InvalidModel as error:
            note = f"{candidate.name} was found but not used: {error.message}"
            continue
        return PresetWeights(_serialized(module), f"{candidate.name} sha256:{sha256_of(candidate)}")
    return PresetWeights(_serialized(module), "random-init", note)


def _weight_candidates(preset: Preset, weights_dir: Path | None) -> Iterator[Path]:
    if weights_dir is None:
        return
    for name in preset.weight_files:
        if (weights_dir / name).is_file():
            yield weights_dir / name


def _serialized(module: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.getvalue()
