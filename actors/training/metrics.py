"""mAP50: the mean over classes of the average precision at IoU 0.5 (all-point interpolation)."""

from __future__ import annotations

import numpy as np

IOU_THRESHOLD = 0.5


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """IoU of every box in ``first`` (N, 4: x1 y1 x2 y2) with every box in ``second`` (M, 4)."""
    top_left = np.maximum(first[:, None, :2], second[None, :, :2])
    bottom_right = np.minimum(first[:, None, 2:], second[None, :, 2:])
    overlap = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_first = (first[:, 2:] - first[:, :2]).prod(axis=1)
    area_second = (second[:, 2:] - second[:, :2]).prod(axis=1)
    union = np.maximum(area_first[:, None] + area_second[None, :] - overlap, 1e-9)
    iou: np.ndarray = overlap / union
    return iou


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[1.0], precision, [0.0]])
    precision = np.flip(np.maximum.accumulate(np.flip(precision)))
    changes = np.where(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[changes + 1] - recall[changes]) * precision[changes + 1]))


def map50(predictions: list[np.ndarray], targets: list[np.ndarray], num_classes: int) -> float:
    """mAP at IoU 0.5.

    Args:
        predictions: per image, (K, 6): x1 y1 x2 y2 confidence class.
        targets: per image, (T, 5): class x1 y1 x2 y2.
        num_classes: classes in the dataset; a class without targets does not count.
    """
    scores: dict[int, list[tuple[float, bool]]] = {c: [] for c in range(num_classes)}
    totals = dict.fromkeys(range(num_classes), 0)
    for found, truth in zip(predictions, targets, strict=True):
        for cls in truth[:, 0].astype(int):
            totals[cls] += 1
        matched: set[int] = set()
        for row in found[np.argsort(-found[:, 4])] if len(found) else []:
            cls = int(row[5])
            same_class = np.where(truth[:, 0].astype(int) == cls)[0] if len(truth) else np.array([])
            hit = False
            if len(same_class):
                ious = box_iou(row[None, :4], truth[same_class, 1:5])[0]
                best = int(np.argmax(ious))
                if ious[best] >= IOU_THRESHOLD and same_class[best] not in matched:
                    matched.add(int(same_class[best]))
                    hit = True
            scores.setdefault(cls, []).append((float(row[4]), hit))
    precisions = []
    for cls, total in totals.items():
        if total == 0:
            continue
        ranked = sorted(scores.get(cls, []), key=lambda item: -item[0])
        hits = np.array([hit for _, hit in ranked], dtype=float)
        true_positives = np.cumsum(hits)
        recall = true_positives / total
        precision = true_positives / np.arange(1, len(hits) + 1) if len(hits) else np.array([])
        precisions.append(average_precision(recall, precision) if len(hits) else 0.0)
    return float(np.mean(precisions)) if precisions else 0.0
