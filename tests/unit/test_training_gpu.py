"""The training loop on a real GPU (skipped without one): cuda:0, mixed precision, and the
per-process memory cap that lets two jobs share one card."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from actors.training.classification import SplitData, train_classifier, with_training_head
from actors.training.common import pick_device
from cvplatform.schemas import Hyperparameters

pytestmark = pytest.mark.gpu

MEMORY_LIMIT_MB = 2048


class Recorded:
    def __init__(self) -> None:
        self.epochs: list[dict[str, Any]] = []

    def on_batch(self, epoch: int, batch: int, batches: int, step: int) -> None:
        pass

    def on_epoch(self, figures: dict[str, Any]) -> None:
        self.epochs.append(figures)

    def should_stop(self) -> bool:
        return False


@pytest.fixture
def capped() -> Iterator[None]:
    yield
    torch.cuda.set_per_process_memory_fraction(1.0, 0)  # the cap lasts the process otherwise
    torch.cuda.empty_cache()


def separable(count: int, seed: int) -> SplitData:
    """Four classes, each a bright quarter of a 32x32 image over noise: easy to learn."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, count)
    images = rng.normal(0, 0.3, (count, 3, 32, 32)).astype(np.float32)
    for index, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        images[index, :, row * 16 : row * 16 + 16, col * 16 : col * 16 + 16] += 2.0
    return SplitData(images=images, labels=labels.astype(np.int64))


def small_classifier() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(16 * 16, 10),
    )


def test_training_runs_on_cuda_with_mixed_precision_under_the_memory_cap(capped: None) -> None:
    device = pick_device(MEMORY_LIMIT_MB)
    assert device.name == "cuda:0" and device.mixed_precision
    torch.cuda.reset_peak_memory_stats(0)
    hooks = Recorded()
    model = with_training_head(small_classifier(), num_classes=4, dropout=0.1)
    hp = Hyperparameters.model_validate(
        {
            "batch_size": 32,
            "max_epochs": 4,
            "image_size": [32, 32],
            "augmentation": {"enabled": False},
        }
    )  # no flips: the classes are positions

    outcome = train_classifier(model, separable(512, 0), separable(128, 1), hp, device, hooks)

    assert next(model.parameters()).device.type == "cuda"
    assert [figures["epoch"] for figures in hooks.epochs] == [1, 2, 3, 4]
    assert all(np.isfinite(figures["train_loss"]) for figures in hooks.epochs)
    assert outcome.best_val_accuracy > 0.9, hooks.epochs
    assert outcome.best_state is not None
    assert all(tensor.device.type == "cpu" for tensor in outcome.best_state.values())
    assert torch.cuda.max_memory_allocated(0) < MEMORY_LIMIT_MB * 2**20


def test_the_memory_cap_refuses_an_allocation_beyond_it(capped: None) -> None:
    pick_device(MEMORY_LIMIT_MB)
    with pytest.raises(torch.OutOfMemoryError):
        torch.empty((MEMORY_LIMIT_MB + 512) * 2**20, dtype=torch.uint8, device="cuda:0")
    # An allocation inside the cap still succeeds afterwards.
    assert torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda:0").numel() == 256 * 2**20
