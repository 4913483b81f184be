"""Augmentation: part of the preprocessing config, applied at training time, deterministically for
a given seed (the same seed, epoch and batch give the same pixels)."""

from __future__ import annotations

import numpy as np

from cvplatform.schemas import AugmentationConfig


def augment(
    images: np.ndarray, config: AugmentationConfig, seed: int, epoch: int, batch: int
) -> np.ndarray:
    """Augment a float batch (N, C, H, W, already normalized) for classification training.

    Deterministic: the generator is seeded from (seed, epoch, batch).
    """
    if not config.enabled or len(images) == 0:
        return images
    rng = np.random.default_rng([seed, epoch, batch])
    out = images.copy()
    for index in range(len(out)):
        image = out[index]
        if config.random_resized_crop:
            image = _random_resized_crop(image, config.crop_scale, rng)
        if rng.random() < config.horizontal_flip:
            image = image[:, :, ::-1]
        image = _color_jitter(image, config, rng)
        out[index] = image
    return out


def _random_resized_crop(
    image: np.ndarray, scale: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    _, height, width = image.shape
    area = rng.uniform(*scale)
    crop_h = max(1, round(height * np.sqrt(area)))
    crop_w = max(1, round(width * np.sqrt(area)))
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    crop = image[:, top : top + crop_h, left : left + crop_w]
    rows = np.clip((np.arange(height) * crop_h / height).astype(int), 0, crop_h - 1)
    cols = np.clip((np.arange(width) * crop_w / width).astype(int), 0, crop_w - 1)
    return crop[:, rows][:, :, cols]


def _color_jitter(
    image: np.ndarray, config: AugmentationConfig, rng: np.random.Generator
) -> np.ndarray:
    brightness = 1 + rng.uniform(-config.brightness, config.brightness)
    contrast = 1 + rng.uniform(-config.contrast, config.contrast)
    saturation = 1 + rng.uniform(-config.saturation, config.saturation)
    mean = image.mean()
    image = (image * brightness - mean) * contrast + mean
    gray = image.mean(axis=0, keepdims=True)
    jittered: np.ndarray = ((image - gray) * saturation + gray).astype(image.dtype)
    return jittered
