"""A model's input preprocessing: which size and normalization it takes, and applying them.

The arithmetic is training's own (``actors.datasets.preprocess``: ``_resized``, then
``normalize_pixels`` here, which training calls too), so that a model sees at prediction time
exactly what it was trained on: RGB, a bilinear stretch to (width, height) without
letterboxing, pixels / 255, then (x - mean) / std per channel, NCHW float32.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from cvplatform.errors import InvalidInput, InvalidModel
from cvplatform.schemas import IMAGENET_MEAN, IMAGENET_STD

IMAGENET_SPEC_MEAN: tuple[float, float, float] = IMAGENET_MEAN
IMAGENET_SPEC_STD: tuple[float, float, float] = IMAGENET_STD

# YOLO models take pixels in [0, 1]: no mean to subtract, nothing to divide by.
UNIT_MEAN: tuple[float, float, float] = (0.0, 0.0, 0.0)
UNIT_STD: tuple[float, float, float] = (1.0, 1.0, 1.0)

# The input sizes the model families were trained at, used when the graph leaves H or W dynamic
# and nothing was recorded.
DEFAULT_SIZES: dict[str, tuple[int, int]] = {"classification": (224, 224), "detection": (640, 640)}


@dataclass(frozen=True)
class PreprocessSpec:
    """What a model takes: the size it is resized to and the normalization of [0, 1] pixels."""

    height: int
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def as_dict(self) -> dict[str, Any]:
        """The spec in the shape training records it: ``image_size`` is ``[height, width]``."""
        return {
            "image_size": [self.height, self.width],
            "mean": list(self.mean),
            "std": list(self.std),
        }


@dataclass(frozen=True)
class Resized:
    """How one image was stretched: model-input pixels = original pixels * scale."""

    scale_x: float
    scale_y: float
    original_width: int
    original_height: int


def spec_for(
    task_type: str, input_dims: Sequence[int | str], recorded: Mapping[str, Any] | None
) -> PreprocessSpec:
    """The preprocessing a model takes.

    Args:
        task_type: ``classification`` or ``detection``.
        input_dims: the model's ONNX input dims (N, C, H, W); a name or a non-positive number is a
            dynamic dim.
        recorded: what training or conversion stored (``{"image_size": [h, w], "mean": [...],
            "std": [...]}``); each key it has wins over the defaults.

    Returns:
        The size from ``recorded``, else the fixed H, W of ``input_dims``, else the task's usual
        size (224x224 classification, 640x640 detection); mean/std from ``recorded``, else
        ImageNet's for classification and 0/1 for detection.

    Raises:
        InvalidInput: an unknown task type.
        InvalidModel: ``input_dims`` is not rank 4, ``recorded`` is malformed, or its size
            contradicts the model's fixed H, W (the model could not run on it).
    """
    if task_type not in DEFAULT_SIZES:
        raise InvalidInput(
            f"unknown task type {task_type!r}: expected one of {sorted(DEFAULT_SIZES)}"
        )
    if len(input_dims) != 4:
        raise InvalidModel(f"the model's input has dims {list(input_dims)}: expected (N, C, H, W)")
    record = dict(recorded or {})
    fixed = _fixed_size(input_dims)
    size = _recorded_size(record.get("image_size"))
    if size is not None and fixed is not None and size != fixed:
        raise InvalidModel(
            f"the model's recorded image size {list(size)} does not match its input "
            f"{list(input_dims)} (height, width {list(fixed)})"
        )
    height, width = size or fixed or DEFAULT_SIZES[task_type]
    detection = task_type == "detection"
    mean = _recorded_triple(record, "mean") or (UNIT_MEAN if detection else IMAGENET_SPEC_MEAN)
    std = _recorded_triple(record, "std") or (UNIT_STD if detection else IMAGENET_SPEC_STD)
    if any(value <= 0 for value in std):
        raise InvalidModel(f"the model's recorded std {list(std)} has a value that is not positive")
    return PreprocessSpec(height=height, width=width, mean=mean, std=std)


def preprocess(
    images: Sequence[Image.Image], spec: PreprocessSpec
) -> tuple[np.ndarray, tuple[Resized, ...]]:
    """Stretch and normalize images into one batch the model takes.

    Returns:
        The batch (float32, N, 3, height, width) and, per image, how it was stretched (to map
        detections back to its own pixels).
    """
    size = (spec.height, spec.width)
    pixels = [_resized(image, size) for image in images]
    stacked = np.stack(pixels) if pixels else np.zeros((0, *size, 3), np.uint8)
    resized = tuple(
        Resized(
            scale_x=spec.width / image.width,
            scale_y=spec.height / image.height,
            original_width=image.width,
            original_height=image.height,
        )
        for image in images
    )
    return normalize_pixels(stacked, spec.mean, spec.std), resized


def normalize_pixels(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 images (N, H, W, 3) as the model takes them: float32 (N, 3, H, W), C-contiguous,
    each pixel ``(value / 255 - mean) / std`` for its channel, in float32.

    Training (``actors.datasets.preprocess.load_split``) and prediction both call this, so a
    model is served exactly what it was trained on. A channel's pixel has 256 possible values:
    each channel's 256 results are computed once, with those very operations and dtypes, and
    looked up, which gives the same bits as computing every pixel (tested) in a fifth of the
    time (2.0 -> 0.4 ms for one 224 x 224 image here, measured).
    """
    table = _normalized_levels(tuple(map(float, mean)), tuple(map(float, std)))
    channels_first = pixels.transpose(0, 3, 1, 2)
    normalized = np.empty(channels_first.shape, np.float32)
    for channel in range(3):
        np.take(table[channel], channels_first[:, channel], out=normalized[:, channel])
    return normalized


@functools.lru_cache(maxsize=64)
def _normalized_levels(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """(3, 256) float32: channel c's result for each uint8 value."""
    levels = np.arange(256, dtype=np.uint8).reshape(1, 1, 256)
    mean_32 = np.asarray(mean, np.float32).reshape(1, 3, 1)
    std_32 = np.asarray(std, np.float32).reshape(1, 3, 1)
    table = (levels.astype(np.float32) / 255.0 - mean_32) / std_32
    table = table.reshape(3, 256)
    table.setflags(write=False)
    return table


def _resized(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    if image.width <= 0 or image.height <= 0:
        raise InvalidInput(f"an image of size {image.width}x{image.height} has no pixels")
    # convert() copies an image that is already RGB: most are, and the copy showed in profiles.
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return np.asarray(rgb.resize((width, height), Image.Resampling.BILINEAR))


def _fixed_size(input_dims: Sequence[int | str]) -> tuple[int, int] | None:
    height, width = input_dims[2], input_dims[3]
    if isinstance(height, int) and isinstance(width, int) and height > 0 and width > 0:
        return height, width
    return None


def _recorded_size(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(side, int) and not isinstance(side, bool) and side > 0 for side in value)
    ):
        return int(value[0]), int(value[1])
    raise InvalidModel(f"the model's recorded image_size {value!r} is not [height, width]")


def _recorded_triple(record: Mapping[str, Any], key: str) -> tuple[float, float, float] | None:
    value = record.get(key)
    if value is None:
        return None
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 3
        and all(isinstance(part, int | float) and not isinstance(part, bool) for part in value)
    ):
        first, second, third = (float(part) for part in value)
        return first, second, third
    raise InvalidModel(f"the model's recorded {key} {value!r} is not three numbers")
