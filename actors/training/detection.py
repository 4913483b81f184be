"""Training a YOLOv8 detector with ultralytics' model and loss in our own loop (its trainer wants
dataset files on disk and the internet); validation reports mAP50 every epoch."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

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
from actors.training.metrics import map50
from cvplatform.schemas import Hyperparameters

CONFIDENCE = 0.001  # low, as for mAP: the precision-recall curve needs the weak boxes too
NMS_IOU = 0.7


@dataclass
class DetectionData:
    images: np.ndarray  # float32 N, 3, H, W in [0, 1]
    boxes: list[list[list[float]]]  # per image: [class, x1, y1, x2, y2] in pixels


def yolo_for(model: nn.Module) -> nn.Module:
    """Give an ultralytics detection model the loss settings its loss function reads."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG

    layers: Any = getattr(model, "model", None)
    if layers is None or not hasattr(layers[-1], "reg_max"):
        raise TrainingFailed(
            "detection training supports ultralytics YOLO models (architecture yolov8*.yaml)"
        )
    model.args = get_cfg(DEFAULT_CFG)  # type: ignore[assignment]
    model.criterion = None  # type: ignore[assignment]
    layers[-1].export = False  # the ONNX export sets it; training needs the raw head outputs
    return model


def _targets(boxes: list[list[list[float]]], height: int, width: int) -> dict[str, torch.Tensor]:
    """The loss's layout: one row per box, normalized centre, width and height."""
    rows = [(index, box) for index, image_boxes in enumerate(boxes) for box in image_boxes]
    if not rows:
        return {"batch_idx": torch.zeros(0), "cls": torch.zeros(0, 1), "bboxes": torch.zeros(0, 4)}
    index = torch.tensor([i for i, _ in rows], dtype=torch.float32)
    cls = torch.tensor([[b[0]] for _, b in rows], dtype=torch.float32)
    xyxy = torch.tensor([b[1:5] for _, b in rows], dtype=torch.float32)
    scale = torch.tensor([width, height, width, height], dtype=torch.float32)
    xywh = torch.cat([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], dim=1) / scale
    return {"batch_idx": index, "cls": cls, "bboxes": xywh}


def recalibrate_batchnorm(
    model: nn.Module, images: np.ndarray, batch_size: int, device: Device
) -> None:
    """Recompute the batch-norm statistics with the current weights, over the training images.

    ultralytics' batch norms update their running statistics slowly (momentum 0.03), which
    suits its hundreds of epochs; after a short run they still describe the early weights and the
    model in eval mode predicts nothing. A pass with a cumulative average fixes that.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the pass
    model.train()
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            model(torch.from_numpy(images[start : start + batch_size]).to(device.torch))
    for norm, momentum in zip(norms, momenta, strict=True):
        norm.momentum = momentum


def _evaluate(
    model: nn.Module, data: DetectionData, batch_size: int, device: Device, num_classes: int
) -> tuple[float, float]:
    from ultralytics.utils.nms import non_max_suppression

    model.eval()
    _, _, height, width = data.images.shape
    found: list[np.ndarray] = []
    truth: list[np.ndarray] = []
    loss_sum, batches = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data.images), batch_size):
            images = torch.from_numpy(data.images[start : start + batch_size]).to(device.torch)
            boxes = data.boxes[start : start + batch_size]
            predictions = model(images)
            batch = {
                "img": images,
                **{k: v.to(device.torch) for k, v in _targets(boxes, height, width).items()},
            }
            # The loss comes scaled by the batch size (ultralytics' convention); report per image.
            loss_sum += float(model.loss(batch, predictions)[0].sum()) / len(images)  # type: ignore[operator]
            batches += 1
            decoded = predictions[0] if isinstance(predictions, list | tuple) else predictions
            for kept in non_max_suppression(decoded, conf_thres=CONFIDENCE, iou_thres=NMS_IOU):
                found.append(kept.cpu().numpy())
            truth.extend(np.asarray(b, dtype=np.float32).reshape(-1, 5) for b in boxes)
    return loss_sum / max(1, batches), map50(found, truth, num_classes)


def train_detector(
    model: nn.Module,
    train: DetectionData,
    validation: DetectionData,
    num_classes: int,
    hp: Hyperparameters,
    device: Device,
    hooks: Hooks,
) -> Outcome:
    """Train for ``hp.max_epochs`` epochs; ``val_accuracy`` in the figures is mAP50."""
    if hp.batch_size > len(train.images):
        raise TrainingFailed(
            f"batch size {hp.batch_size} is larger than the {len(train.images)} training images"
        )
    torch.manual_seed(hp.seed)
    model = yolo_for(model).to(device.torch)
    optimizer = make_optimizer(model.parameters(), hp)
    _, _, height, width = train.images.shape
    outcome, clock, step = Outcome(), Clock(), 0
    batches = -(-len(train.images) // hp.batch_size)
    for epoch in range(1, hp.max_epochs + 1):
        model.train()
        order = np.random.default_rng([hp.seed, epoch]).permutation(len(train.images))
        loss_sum, epoch_started = 0.0, time.perf_counter()
        for batch_index in range(batches):
            if hooks.should_stop():
                raise TrainingCancelled
            chosen = order[batch_index * hp.batch_size : (batch_index + 1) * hp.batch_size]
            images = torch.from_numpy(train.images[chosen]).to(device.torch)
            targets = _targets([train.boxes[i] for i in chosen], height, width)
            batch = {"img": images, **{k: v.to(device.torch) for k, v in targets.items()}}
            loss, _ = model.loss(batch)  # type: ignore[operator]
            total = loss.sum()
            loss_sum += check_loss(total, epoch, batch_index) / len(chosen)
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
            optimizer.step()
            step += 1
            hooks.on_batch(epoch, batch_index + 1, batches, step)
        seconds = time.perf_counter() - epoch_started
        outcome.images_seen += len(train.images)
        outcome.train_seconds += seconds
        recalibrate_batchnorm(model, train.images, hp.batch_size, device)
        val_loss, val_map50 = _evaluate(model, validation, hp.batch_size, device, num_classes)
        figures = epoch_figures(
            epoch,
            hp,
            loss_sum / batches,
            (val_loss, val_map50),  # a detector's accuracy is its mAP50
            len(train.images),
            seconds,
            clock,
            step,
            train_accuracy=None,
            val_map50=val_map50,
        )
        outcome.keep_if_best(figures, model)
        hooks.on_epoch(figures)
    return outcome
