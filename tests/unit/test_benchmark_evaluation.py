"""The accuracy an engine keeps: scoring outputs against labels and against FP32's outputs, for
classification (top-1) and detection (mAP50 of YOLOv8's raw output after NMS), and running a
split through an engine in batches of the sizes it was opened for."""

from __future__ import annotations

import numpy as np
import pytest

from actors.benchmarks.evaluation import EvaluationData, predict_all, score

CLASSES = 3
ANCHORS = 10


def _data(task_type: str, labels: list[int], boxes: list[list[list[float]]]) -> EvaluationData:
    count = len(labels) or len(boxes)
    return EvaluationData(
        task_type=task_type,
        num_classes=CLASSES,
        images=np.zeros((count, 3, 32, 32), np.float32),
        labels=np.asarray(labels, np.int64),
        boxes=boxes,
        calibration=np.zeros((0, 3, 32, 32), np.float32),
        source="test split",
        calibration_source="test",
    )


def _yolo_output(found: list[tuple[int, float, float, float, float]]) -> np.ndarray:
    """YOLOv8's raw output for one image per entry: (cx, cy, w, h, scores) per anchor; one
    confident anchor per image for ``class, x1, y1, x2, y2``, the others empty."""
    raw = np.zeros((len(found), 4 + CLASSES, ANCHORS), np.float32)
    for image, (cls, x1, y1, x2, y2) in enumerate(found):
        raw[image, :4, 0] = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
        raw[image, 4 + cls, 0] = 0.9
    return raw


def test_classification_scores_top1_and_agreement_with_the_reference() -> None:
    data = _data("classification", [0, 1, 2, 2], [])
    logits = np.eye(CLASSES, dtype=np.float32)[[0, 1, 2, 0]]  # the last one is wrong
    reference = np.eye(CLASSES, dtype=np.float32)[[0, 1, 2, 2]]
    scores = score(data, logits, reference)
    assert scores.accuracy_percent == pytest.approx(75.0)
    assert scores.agreement_percent == pytest.approx(75.0)
    assert score(data, reference, None).agreement_percent is None  # the reference itself


def test_detection_scores_map50_and_agreement_with_the_reference() -> None:
    truth = [[[1, 10, 10, 30, 30]], [[2, 5, 5, 15, 25]]]
    data = _data("detection", [], truth)
    exact = _yolo_output([(1, 10, 10, 30, 30), (2, 5, 5, 15, 25)])
    scores = score(data, exact, exact)
    assert scores.accuracy_percent == pytest.approx(100.0)
    assert scores.agreement_percent == pytest.approx(100.0)

    # The second image's box lands elsewhere: half the classes found, half the agreement.
    moved = _yolo_output([(1, 10, 10, 30, 30), (2, 20, 5, 30, 25)])
    moved_scores = score(data, moved, exact)
    assert moved_scores.accuracy_percent == pytest.approx(50.0)
    assert moved_scores.agreement_percent == pytest.approx(50.0)


def test_a_split_runs_in_full_batches_and_keeps_one_output_per_image() -> None:
    images = np.arange(7, dtype=np.float32).reshape(7, 1, 1, 1)
    seen: list[int] = []

    def engine(batch: np.ndarray) -> np.ndarray:
        seen.append(len(batch))
        return batch.reshape(len(batch), 1) * 10

    outputs = predict_all(engine, images, batch_size=3)
    assert seen == [3, 3, 3]  # the last batch padded to the size the engine was opened for
    assert outputs.ravel().tolist() == [0, 10, 20, 30, 40, 50, 60]
