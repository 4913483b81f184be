"""Training a classifier: the head resized to the dataset's classes (dropout before it), a loop
over seeded, augmented batches, validation every epoch, the best epoch kept."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from actors.datasets.augment import augment
from actors.training.common import (
    Clock,
    Device,
    Hooks,
    Outcome,
    TrainingCancelled,
    TrainingFailed,
    check_loss,
    epoch_figures,
    make_optimizer,
)
from cvplatform.schemas import Hyperparameters


@dataclass
class SplitData:
    images: np.ndarray  # float32 N, C, H, W, normalized
    labels: np.ndarray  # int64 N


def _last_linear(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    found: tuple[str, nn.Linear] | None = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            found = (name, module)
    if found is None:
        raise TrainingFailed("the model has no Linear classifier layer to resize for this dataset")
    name, linear = found
    parent = model
    *path, attribute = name.split(".")
    for part in path:
        parent = getattr(parent, part)
    return parent, attribute, linear


def with_training_head(model: nn.Module, num_classes: int, dropout: float) -> nn.Module:
    """Put Dropout before the last Linear layer, resizing that layer to ``num_classes`` (a new,
    untrained layer) unless it has that many outputs already (its weights are kept)."""
    parent, attribute, linear = _last_linear(model)
    if linear.out_features != num_classes:
        linear = nn.Linear(linear.in_features, num_classes)
    setattr(parent, attribute, nn.Sequential(nn.Dropout(dropout), linear))
    return model


def without_training_head(model: nn.Module) -> nn.Module:
    """Undo :func:`with_training_head`'s wrapping, so that the state dict loads into the plain
    architecture again (dropout does nothing at inference)."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if not isinstance(child, nn.Sequential) or len(child) != 2:
                continue
            dropout, linear = child[0], child[1]
            if isinstance(dropout, nn.Dropout) and isinstance(linear, nn.Linear):
                setattr(module, name, linear)
    return model


def _evaluate(
    model: nn.Module, data: SplitData, batch_size: int, device: Device
) -> tuple[float, float]:
    model.eval()
    loss_sum, correct = 0.0, 0
    criterion = nn.CrossEntropyLoss(reduction="sum")
    with torch.no_grad():
        for start in range(0, len(data.labels), batch_size):
            images = torch.from_numpy(data.images[start : start + batch_size]).to(device.torch)
            labels = torch.from_numpy(data.labels[start : start + batch_size]).to(device.torch)
            with torch.autocast(device.torch.type, enabled=device.mixed_precision):
                logits = model(images)
            loss_sum += float(criterion(logits.float(), labels))
            correct += int((logits.argmax(dim=1) == labels).sum())
    count = max(1, len(data.labels))
    return loss_sum / count, correct / count


def train_classifier(
    model: nn.Module,
    train: SplitData,
    validation: SplitData,
    hp: Hyperparameters,
    device: Device,
    hooks: Hooks,
) -> Outcome:
    """Train for ``hp.max_epochs`` epochs; returns the figures and the best epoch's weights.

    Raises:
        TrainingFailed: the loss diverged.
        TrainingCancelled: ``hooks.should_stop()`` said so between two batches.
    """
    if hp.batch_size > len(train.labels):
        raise TrainingFailed(
            f"batch size {hp.batch_size} is larger than the {len(train.labels)} training images"
        )
    torch.manual_seed(hp.seed)
    model.to(device.torch)
    optimizer = make_optimizer(model.parameters(), hp)
    scaler = torch.amp.GradScaler(enabled=device.mixed_precision)
    criterion = nn.CrossEntropyLoss()
    outcome, clock, step = Outcome(), Clock(), 0
    batches = -(-len(train.labels) // hp.batch_size)
    for epoch in range(1, hp.max_epochs + 1):
        model.train()
        order = np.random.default_rng([hp.seed, epoch]).permutation(len(train.labels))
        loss_sum, correct, epoch_started = 0.0, 0, time.perf_counter()
        for batch in range(batches):
            if hooks.should_stop():
                raise TrainingCancelled
            chosen = order[batch * hp.batch_size : (batch + 1) * hp.batch_size]
            pixels = augment(train.images[chosen], hp.augmentation, hp.seed, epoch, batch)
            images = torch.from_numpy(pixels).to(device.torch)
            labels = torch.from_numpy(train.labels[chosen]).to(device.torch)
            with torch.autocast(device.torch.type, enabled=device.mixed_precision):
                logits = model(images)
                loss = criterion(logits.float(), labels)
            loss_value = check_loss(loss, epoch, batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss_value * len(chosen)
            correct += int((logits.argmax(dim=1) == labels).sum())
            step += 1
            hooks.on_batch(epoch, batch + 1, batches, step)
        seconds = time.perf_counter() - epoch_started
        outcome.images_seen += len(train.labels)
        outcome.train_seconds += seconds
        figures = epoch_figures(
            epoch,
            hp,
            loss_sum / len(train.labels),
            _evaluate(model, validation, hp.batch_size, device),
            len(train.labels),
            seconds,
            clock,
            step,
            train_accuracy=correct / len(train.labels),
        )
        outcome.keep_if_best(figures, model)
        hooks.on_epoch(figures)
    return outcome
