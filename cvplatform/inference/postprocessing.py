"""From a model's raw output to an answer: top-k labels for classification, boxes after NMS for
detection (YOLOv8's raw head), in the original image's pixels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cvplatform.errors import InvalidInput, InvalidModel
from cvplatform.inference.preprocessing import Resized

# How far a row may be from summing to 1 and still be taken as probabilities already.
PROBABILITY_SUM_TOLERANCE = 1e-3
# Candidates kept for NMS per image, best first (as YOLOv8's own NMS does): bounds its cost when a
# low confidence threshold lets most anchors through.
MAX_NMS_CANDIDATES = 30_000


@dataclass(frozen=True)
class Label:
    index: int
    name: str
    confidence: float


@dataclass(frozen=True)
class Box:
    """A detection in the original image's pixels (x1, y1 top left; x2, y2 bottom right)."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    index: int
    name: str


def top_k(outputs: np.ndarray, k: int, class_names: Sequence[str] | None) -> list[list[Label]]:
    """The ``k`` most likely classes of each sample, most likely first (ties: lower index first).

    Args:
        outputs: (N, classes) logits or probabilities; trailing dims of 1 (N, classes, 1, 1) are
            dropped. Taken as probabilities when every row sums to 1 (within 1e-3) and lies in
            [0, 1], else a softmax turns the logits into them.
        k: clipped to the class count.
        class_names: names by class index; ``"class 3"`` for an index without one.

    Raises:
        InvalidInput: ``k`` is below 1.
        InvalidModel: the output is not (N, classes) or holds a value that is not finite.
    """
    if k < 1:
        raise InvalidInput(f"k must be at least 1 (got {k})")
    scores = _as_rows(outputs)
    probabilities = scores if _are_probabilities(scores) else _softmax(scores)
    count = min(k, probabilities.shape[1])
    # A stable sort of the negated scores keeps equal scores in index order.
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :count]
    return [
        [Label(int(index), _name(int(index), class_names), float(row[index])) for index in best]
        for row, best in zip(probabilities, order, strict=True)
    ]


def detections(
    outputs: np.ndarray,
    resized: Sequence[Resized],
    class_names: Sequence[str] | None,
    confidence: float = 0.25,
    iou: float = 0.7,
    max_boxes: int = 300,
) -> list[list[Box]]:
    """Boxes per image from YOLOv8's raw output, after class-aware NMS, best first.

    Args:
        outputs: (N, 4 + classes, anchors): cx, cy, w, h in model-input pixels, then class scores.
        resized: per image, how it was stretched to the model's input (from ``preprocess``).
        class_names: names by class index; ``"class 3"`` for an index without one.
        confidence: an anchor's best class score must be at least this.
        iou: a box overlapping a better one of its class by more than this is suppressed.
        max_boxes: at most this many boxes per image.

    Returns:
        Per image, boxes in its original pixels, clipped to it; a box left with no area after
        clipping (it lay outside the image) is dropped.

    Raises:
        InvalidInput: a threshold out of [0, 1], or ``max_boxes`` below 1.
        InvalidModel: the output is not (N, 4 + classes, anchors) for the N images given.
    """
    _check_thresholds(confidence, iou, max_boxes)
    if outputs.ndim != 3 or outputs.shape[1] < 5 or outputs.shape[0] != len(resized):
        raise InvalidModel(
            f"the detection model's output has shape {list(outputs.shape)}: expected "
            f"({len(resized)}, 4 + classes, anchors)"
        )
    return [
        _detect_one(
            np.asarray(sample, np.float64).T, scale, class_names, confidence, iou, max_boxes
        )
        for sample, scale in zip(outputs, resized, strict=True)
    ]


def _detect_one(
    anchors: np.ndarray,
    resized: Resized,
    class_names: Sequence[str] | None,
    confidence: float,
    iou: float,
    max_boxes: int,
) -> list[Box]:
    class_scores = anchors[:, 4:]
    best_class = np.argmax(class_scores, axis=1)
    best_score = class_scores[np.arange(len(anchors)), best_class]
    # NaN compares false, so a non-finite score never passes; a non-finite box is dropped too.
    keep = (best_score >= confidence) & np.isfinite(anchors[:, :4]).all(axis=1)
    corners = _corners(anchors[keep, :4])
    scores, classes = best_score[keep], best_class[keep]
    chosen = _nms(corners, scores, classes, iou, max_boxes)
    boxes = _to_original(corners[chosen], resized)
    return [
        Box(x1, y1, x2, y2, float(scores[i]), int(classes[i]), _name(int(classes[i]), class_names))
        for (x1, y1, x2, y2), i in zip(boxes.tolist(), chosen, strict=True)
        if x2 > x1 and y2 > y1
    ]


def _nms(
    corners: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float, max_boxes: int
) -> list[int]:
    """Greedy NMS within each class: indices of the boxes kept, best score first (ties: lower
    index first)."""
    order = np.argsort(-scores, kind="stable")[:MAX_NMS_CANDIDATES]
    kept: list[int] = []
    while order.size and len(kept) < max_boxes:
        best, rest = int(order[0]), order[1:]
        kept.append(best)
        same_class = classes[rest] == classes[best]
        overlapping = _iou(corners[best], corners[rest]) > iou
        order = rest[~(same_class & overlapping)]
    return kept


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    width = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    intersection = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - intersection
    # Degenerate (zero-area) boxes overlap nothing rather than dividing by zero.
    return np.where(union > 0, intersection / np.where(union > 0, union, 1.0), 0.0)


def _corners(centered: np.ndarray) -> np.ndarray:
    cx, cy, w, h = centered[:, 0], centered[:, 1], centered[:, 2], centered[:, 3]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def _to_original(corners: np.ndarray, resized: Resized) -> np.ndarray:
    scale = np.array([resized.scale_x, resized.scale_y, resized.scale_x, resized.scale_y])
    limit = np.array([resized.original_width, resized.original_height] * 2, dtype=np.float64)
    clipped: np.ndarray = np.clip(corners.reshape(-1, 4) / scale, 0, limit)
    return clipped


def _check_thresholds(confidence: float, iou: float, max_boxes: int) -> None:
    if not 0 <= confidence <= 1:
        raise InvalidInput(f"confidence must be between 0 and 1 (got {confidence})")
    if not 0 <= iou <= 1:
        raise InvalidInput(f"iou must be between 0 and 1 (got {iou})")
    if max_boxes < 1:
        raise InvalidInput(f"max_boxes must be at least 1 (got {max_boxes})")


def _as_rows(outputs: np.ndarray) -> np.ndarray:
    if outputs.ndim > 2 and all(side == 1 for side in outputs.shape[2:]):
        outputs = outputs.reshape(outputs.shape[:2])
    if outputs.ndim != 2 or outputs.shape[1] < 1:
        raise InvalidModel(
            f"the classification model's output has shape {list(outputs.shape)}: "
            "expected (batch, classes)"
        )
    scores = np.asarray(outputs, np.float64)
    if not np.isfinite(scores).all():
        raise InvalidModel("the classification model's output holds values that are not finite")
    return scores


def _are_probabilities(scores: np.ndarray) -> bool:
    in_range = bool(((scores >= 0) & (scores <= 1)).all())
    sums = scores.sum(axis=1)
    return in_range and bool((np.abs(sums - 1) <= PROBABILITY_SUM_TOLERANCE).all())


def _softmax(logits: np.ndarray) -> np.ndarray:
    # Subtracting each row's maximum keeps exp() from overflowing on large logits.
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities: np.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
    return probabilities


def _name(index: int, class_names: Sequence[str] | None) -> str:
    if class_names is not None and 0 <= index < len(class_names):
        return str(class_names[index])
    return f"class {index}"
