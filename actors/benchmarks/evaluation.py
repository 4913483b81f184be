"""The accuracy an engine keeps: the model's own validation split, run through the engine, scored
against the labels and against FP32 ONNX Runtime.

A model trained here knows its dataset and the preprocessing its training used (the training job's
result names the preprocessing cache key), so the split is the very one it was validated on; INT8
calibration takes its samples from the training split, never from the split it is scored on. A
model without such a dataset has no accuracy here, and says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from actors.datasets.preprocess import load_split
from actors.jobs.reporter import JobReporter
from actors.training.metrics import map50
from store import queries
from store.records import ModelRecord

CALIBRATION_SAMPLES = 200
EVALUATION_SAMPLES = 1000  # enough for a figure to 0.1 pp; bounded so a large split stays quick
DETECTION_CONFIDENCE = 0.001  # as in training's validation: the PR curve needs the weak boxes too
AGREEMENT_CONFIDENCE = 0.25  # FP32's detections kept as the reference an engine must agree with
NMS_IOU = 0.7

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class EvaluationData:
    task_type: str
    num_classes: int
    images: np.ndarray  # the validation split, float32 N, C, H, W, preprocessed as in training
    labels: np.ndarray
    boxes: list[list[list[float]]]  # detection: per image, class x1 y1 x2 y2 in resized pixels
    calibration: np.ndarray  # from the training split
    source: str
    calibration_source: str


@dataclass(frozen=True)
class Scores:
    accuracy_percent: float
    agreement_percent: float | None  # None for the reference itself


def evaluation_data(
    reporter: JobReporter, model: ModelRecord, input_shape: tuple[int, int, int]
) -> tuple[EvaluationData | None, str]:
    """The model's labelled validation data, or None and the reason there is none."""
    dataset_id, job_id = model.details.get("trained_on"), model.details.get("job_id")
    if not dataset_id or not job_id:
        return None, (
            "not measured: the model was not trained here, so no labelled dataset goes with it "
            "(accuracy is measured on the validation split of the dataset a model was trained on)"
        )
    training = queries.job_by_id(reporter.reader, str(job_id))
    key = (training.result or {}).get("preprocessing_cache_key") if training else None
    prepared = queries.preprocessing_by_key(reporter.reader, str(key)) if key else None
    dataset = queries.dataset_by_id(reporter.reader, str(dataset_id))
    if prepared is None or prepared.status != "ready" or dataset is None:
        return (
            None,
            "not measured: the dataset or the preprocessing the model was trained on is gone",
        )
    folder = reporter.settings.artifacts_dir / prepared.output_path
    images, labels, _, boxes = load_split(folder, "val")
    if images.shape[1:] != input_shape:
        return None, (
            f"not measured: the model was validated at {list(images.shape[1:])}, the benchmark "
            f"runs {list(input_shape)}"
        )
    calibration = load_split(folder, "train")[0][:CALIBRATION_SAMPLES]
    kept = min(len(images), EVALUATION_SAMPLES)
    data = EvaluationData(
        task_type=dataset.task_type,
        num_classes=int(dataset.num_classes or 0),
        images=images[:kept],
        labels=labels[:kept],
        boxes=boxes[:kept],
        calibration=calibration,
        source=f"validation split of dataset {dataset.name} [{dataset.id}] ({kept} samples)",
        calibration_source=(
            f"training split of dataset {dataset.name} [{dataset.id}] ({len(calibration)} samples)"
        ),
    )
    return data, data.source


def predict_all(run: Predict, images: np.ndarray, batch_size: int) -> np.ndarray:
    """The first output for every image, in batches of ``batch_size`` (the last one padded with
    copies of its last image: an engine opened for given batch sizes takes those only)."""
    outputs = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        padding = batch_size - len(chunk)
        if padding:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], padding, axis=0)])
        outputs.append(np.asarray(run(np.ascontiguousarray(chunk)))[: batch_size - padding])
    return np.concatenate(outputs)


def score(data: EvaluationData, outputs: np.ndarray, reference: np.ndarray | None) -> Scores:
    """Top-1 (classification) or mAP50 (detection), in %, and the agreement with ``reference``
    (FP32 ONNX Runtime's outputs on the same images)."""
    if data.task_type == "classification":
        predicted = outputs.argmax(axis=1)
        accuracy = float(np.mean(predicted == data.labels) * 100)
        agreement = None
        if reference is not None:
            agreement = float(np.mean(predicted == reference.argmax(axis=1)) * 100)
        return Scores(accuracy, agreement)
    found = detections(outputs, DETECTION_CONFIDENCE)
    truth = [np.asarray(b, dtype=np.float32).reshape(-1, 5) for b in data.boxes]
    accuracy = map50(found, truth, data.num_classes) * 100
    agreement = None
    if reference is not None:
        # mAP50 of this engine's boxes against FP32's confident ones: 100 when they find the same.
        expected = [
            np.concatenate([d[:, 5:6], d[:, :4]], axis=1)
            for d in detections(reference, AGREEMENT_CONFIDENCE)
        ]
        agreement = map50(found, expected, data.num_classes) * 100
    return Scores(float(accuracy), None if agreement is None else float(agreement))


def detections(outputs: np.ndarray, confidence: float) -> list[np.ndarray]:
    """YOLOv8's raw output (N, 4 + classes, anchors) after NMS: per image (K, 6) x1 y1 x2 y2
    confidence class, as training's validation decodes it."""
    import torch
    from ultralytics.utils.nms import non_max_suppression

    kept = non_max_suppression(torch.from_numpy(outputs), conf_thres=confidence, iou_thres=NMS_IOU)
    return [boxes.numpy() for boxes in kept]
