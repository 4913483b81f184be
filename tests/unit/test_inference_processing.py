"""Prediction's pure pre- and postprocessing: the model's input exactly as training built it, top-k
labels, and YOLOv8 boxes after NMS in the original image's pixels."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from actors.datasets.preprocess import load_split, process_chunk
from cvplatform.errors import InvalidInput, InvalidModel
from cvplatform.inference.postprocessing import Box, detections, top_k
from cvplatform.inference.preprocessing import (
    IMAGENET_SPEC_MEAN,
    IMAGENET_SPEC_STD,
    PreprocessSpec,
    Resized,
    normalize_pixels,
    preprocess,
    spec_for,
)
from cvplatform.schemas import PreprocessConfig


def _noise_image(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze() if channels == 1 else pixels, mode=mode)


def _opened(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.copy()


# --- preprocessing ---------------------------------------------------------------------------


def test_a_uniform_image_normalizes_to_the_formula_worked_by_hand() -> None:
    image = Image.new("RGB", (7, 5), (255, 128, 0))  # a stretch keeps a uniform colour
    spec = PreprocessSpec(height=4, width=6, mean=IMAGENET_SPEC_MEAN, std=IMAGENET_SPEC_STD)
    batch, resized = preprocess([image], spec)
    assert batch.shape == (1, 3, 4, 6)
    assert batch.dtype == np.float32
    expected = [(255 / 255 - 0.485) / 0.229, (128 / 255 - 0.456) / 0.224, (0 - 0.406) / 0.225]
    for channel, value in enumerate(expected):
        np.testing.assert_allclose(batch[0, channel], np.full((4, 6), value), rtol=1e-6)
    assert resized == (Resized(scale_x=6 / 7, scale_y=4 / 5, original_width=7, original_height=5),)


def test_a_noisy_image_is_a_bilinear_stretch_then_normalized() -> None:
    image = _noise_image(9, 6)
    spec = PreprocessSpec(height=3, width=5, mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 2.0))
    batch, _ = preprocess([image], spec)
    stretched = np.asarray(image.resize((5, 3), Image.Resampling.BILINEAR), np.float64)
    by_hand = (stretched / 255 - np.array([0.1, 0.2, 0.3])) / np.array([0.5, 0.25, 2.0])
    np.testing.assert_allclose(batch[0], by_hand.transpose(2, 0, 1), rtol=1e-5, atol=1e-6)


def test_preprocess_equals_what_training_stored_and_loaded(tmp_path: Path) -> None:
    # Training's own path: process_chunk (decode, resize, uint8) then load_split (normalize).
    images = {"a.png": _noise_image(11, 8, seed=1), "b.png": _noise_image(6, 9, "L", seed=2)}
    for name, image in images.items():
        image.save(tmp_path / name)
    entries: list[dict[str, Any]] = [
        {"id": name, "file": name, "frame": None, "label": 0, "boxes": [], "width": 1, "height": 1}
        for name in images
    ]
    config = PreprocessConfig(image_size=(5, 7), mean=(0.3, 0.4, 0.5), std=(0.2, 0.3, 0.4))
    process_chunk(tmp_path, entries, config, tmp_path / "chunk_0.npz")
    (tmp_path / "config.json").write_text(config.model_dump_json())
    (tmp_path / "split.json").write_text(json.dumps(dict.fromkeys(images, "test")))
    trained, _, ids, _ = load_split(tmp_path, "test")

    spec = spec_for("classification", ["batch", 3, 5, 7], config.model_dump(mode="json"))
    reopened = [_opened(tmp_path / name) for name in ids]
    batch, resized = preprocess(reopened, spec)
    np.testing.assert_array_equal(batch, trained)  # bitwise: same dtypes, same operations
    assert [(r.original_width, r.original_height) for r in resized] == [(11, 8), (6, 9)]


@pytest.mark.parametrize(
    ("mean", "std"),
    [
        (IMAGENET_SPEC_MEAN, IMAGENET_SPEC_STD),
        ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
        ((0.3, 0.4, 0.5), (0.2, 0.3, 0.4)),
    ],
)
def test_normalizing_by_lookup_gives_the_bits_of_the_arithmetic(
    mean: tuple[float, float, float], std: tuple[float, float, float]
) -> None:
    # Models trained before the lookup was normalized this way, per pixel: they must be served
    # the very same float32 values. Every uint8 value occurs in every channel here.
    pixels = np.random.default_rng(3).integers(0, 256, (2, 40, 50, 3), dtype=np.uint8)
    pixels[0, 0, :, :] = np.arange(256).reshape(-1, 1).repeat(3, axis=1)[:50]
    pixels[1, :, :, :] = np.arange(2000, dtype=np.uint8)[: 40 * 50].reshape(40, 50, 1)
    mean_32 = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
    std_32 = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
    per_pixel = (pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255.0 - mean_32) / std_32

    looked_up = normalize_pixels(pixels, mean, std)

    assert looked_up.dtype == np.float32 and looked_up.flags.c_contiguous
    np.testing.assert_array_equal(looked_up.view(np.uint32), per_pixel.view(np.uint32))


def test_an_empty_batch_has_the_model_shape() -> None:
    batch, resized = preprocess([], PreprocessSpec(4, 6, (0, 0, 0), (1, 1, 1)))
    assert batch.shape == (0, 3, 4, 6) and batch.dtype == np.float32
    assert resized == ()


# --- spec_for --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "dims", "size", "mean", "std"),
    [
        ("classification", [1, 3, 96, 128], (96, 128), IMAGENET_SPEC_MEAN, IMAGENET_SPEC_STD),
        ("detection", ["batch", 3, 320, 320], (320, 320), (0, 0, 0), (1, 1, 1)),
        ("classification", ["batch", 3, "height", "width"], (224, 224), IMAGENET_SPEC_MEAN, None),
        ("detection", ["batch", 3, -1, 640], (640, 640), (0, 0, 0), (1, 1, 1)),
    ],
)
def test_spec_from_the_model_input_and_the_task(
    task: str,
    dims: list[int | str],
    size: tuple[int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...] | None,
) -> None:
    spec = spec_for(task, dims, None)
    assert (spec.height, spec.width) == size
    assert spec.mean == mean
    assert spec.std == (std or IMAGENET_SPEC_STD)


def test_what_was_recorded_wins() -> None:
    recorded = {"image_size": [28, 32], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    spec = spec_for("detection", ["batch", 3, "h", "w"], recorded)
    assert spec == PreprocessSpec(28, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert spec_for("detection", [1, 3, 28, 32], spec.as_dict()) == spec  # as_dict round-trips
    # A partial record keeps the task's defaults for what it leaves out.
    partial = spec_for("classification", ["n", 3, "h", "w"], {"image_size": [64, 48]})
    assert partial == PreprocessSpec(64, 48, IMAGENET_SPEC_MEAN, IMAGENET_SPEC_STD)


@pytest.mark.parametrize(
    ("task", "dims", "recorded", "error", "message"),
    [
        ("segmentation", [1, 3, 8, 8], None, InvalidInput, "unknown task type"),
        ("classification", [1, 3, 8], None, InvalidModel, "expected (N, C, H, W)"),
        ("classification", [1, 3, 8, 8], {"image_size": [16, 16]}, InvalidModel, "does not match"),
        ("classification", [1, 3, "h", "w"], {"image_size": [0, 16]}, InvalidModel, "image_size"),
        ("classification", [1, 3, "h", "w"], {"mean": [0.5, 0.5]}, InvalidModel, "recorded mean"),
        ("classification", [1, 3, "h", "w"], {"std": [1, 0, 1]}, InvalidModel, "not positive"),
    ],
)
def test_spec_refuses_what_no_model_could_run_on(
    task: str, dims: list[int | str], recorded: dict[str, object] | None, error: type, message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        spec_for(task, dims, recorded)


# --- top-k -----------------------------------------------------------------------------------


def test_logits_become_a_softmax_and_the_best_come_first() -> None:
    logits = np.array([[1.0, 3.0, 2.0, 0.0], [0.0, 0.0, 5.0, 1.0]], np.float32)
    answer = top_k(logits, 2, ["cat", "dog", "bird", "fish"])
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert [[label.name for label in row] for row in answer] == [["dog", "bird"], ["bird", "fish"]]
    assert answer[0][0].index == 1
    assert answer[0][0].confidence == pytest.approx(float(expected[0, 1]), rel=1e-6)
    assert answer[1][1].confidence == pytest.approx(float(expected[1, 3]), rel=1e-6)


def test_probabilities_are_kept_as_they_are() -> None:
    probabilities = np.array([[0.1, 0.6, 0.3]], np.float32)
    ((best,),) = top_k(probabilities, 1, None)
    assert (best.index, best.name) == (1, "class 1")
    assert best.confidence == pytest.approx(0.6)  # as given, not a softmax of it


def test_one_row_of_logits_makes_the_whole_batch_logits() -> None:
    mixed = np.array([[0.1, 0.6, 0.3], [2.0, -1.0, 0.5]])
    answer = top_k(mixed, 1, None)
    assert answer[0][0].confidence == pytest.approx(np.exp(0.6) / np.exp([0.1, 0.6, 0.3]).sum())


def test_huge_logits_do_not_overflow() -> None:
    answer = top_k(np.array([[1000.0, 999.0, -1000.0]]), 3, None)
    confidences = [label.confidence for label in answer[0]]
    assert confidences == pytest.approx([1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1)), 0])


def test_ties_go_to_the_lower_index_and_k_is_clipped() -> None:
    answer = top_k(np.array([[0.5, 2.0, 2.0, 0.5]]), 10, ["a", "b"])
    assert [label.index for label in answer[0]] == [1, 2, 0, 3]
    assert [label.name for label in answer[0]] == ["b", "class 2", "a", "class 3"]


def test_a_head_with_trailing_unit_dims_is_taken() -> None:
    answer = top_k(np.array([[[[0.2]], [[0.8]]]]), 1, None)
    assert answer[0][0].index == 1


@pytest.mark.parametrize(
    ("outputs", "k", "error"),
    [
        (np.zeros((2, 3)), 0, InvalidInput),
        (np.zeros((2, 3, 4)), 1, InvalidModel),
        (np.array([[0.0, np.nan]]), 1, InvalidModel),
    ],
)
def test_top_k_refuses(outputs: np.ndarray, k: int, error: type) -> None:
    with pytest.raises(error):
        top_k(outputs, k, None)


# --- detections ------------------------------------------------------------------------------


def _yolo_output(
    anchors: Sequence[tuple[float, float, float, float, int, float]], classes: int
) -> np.ndarray:
    """One image's raw head (1, 4 + classes, anchors) from (cx, cy, w, h, class, score) rows."""
    output = np.zeros((1, 4 + classes, len(anchors)), np.float32)
    for column, (cx, cy, w, h, index, score) in enumerate(anchors):
        output[0, :4, column] = (cx, cy, w, h)
        output[0, 4 + index, column] = score
    return output


def _f32(value: float) -> float:
    """A score as the model's float32 output holds it."""
    return float(np.float32(value))


SAME_SIZE = Resized(scale_x=1.0, scale_y=1.0, original_width=100, original_height=100)


def test_a_box_is_mapped_back_to_a_twice_larger_original() -> None:
    # The original (200 x 120) was stretched to the 100 x 60 model input: a scale of 1/2.
    resized = Resized(scale_x=0.5, scale_y=0.5, original_width=200, original_height=120)
    output = _yolo_output([(50, 30, 20, 10, 1, 0.9)], classes=2)
    assert detections(output, [resized], ["person", "car"]) == [
        [Box(80.0, 50.0, 120.0, 70.0, _f32(0.9), 1, "car")]
    ]


def test_nms_suppresses_a_lower_box_of_the_same_class_but_keeps_another_class() -> None:
    output = _yolo_output(
        [
            (50, 50, 20, 20, 0, 0.8),  # overlaps the best by IoU 340/460 = 0.74: suppressed
            (50, 50, 20, 20, 1, 0.6),  # same place, other class: kept
            (53, 50, 20, 20, 0, 0.9),  # the best
            (10, 10, 8, 8, 0, 0.5),  # same class, elsewhere: kept
        ],
        classes=2,
    )
    (boxes,) = detections(output, [SAME_SIZE], None, iou=0.7)
    assert [(box.index, round(box.score, 3), box.name) for box in boxes] == [
        (0, 0.9, "class 0"),
        (1, 0.6, "class 1"),
        (0, 0.5, "class 0"),
    ]
    (loose,) = detections(output, [SAME_SIZE], None, iou=0.8)  # IoU 0.74 is then not enough
    assert len(loose) == 4


def test_the_confidence_threshold_keeps_scores_at_it_and_above() -> None:
    output = _yolo_output([(20, 20, 10, 10, 0, 0.25), (60, 60, 10, 10, 0, 0.2499)], classes=1)
    (boxes,) = detections(output, [SAME_SIZE], None, confidence=0.25)
    assert [box.x1 for box in boxes] == [15.0]
    (none,) = detections(output, [SAME_SIZE], None, confidence=0.9)
    assert none == []


def test_at_most_max_boxes_the_best_ones() -> None:
    anchors = [(10.0 + 15 * i, 50, 10, 10, 0, 0.3 + 0.1 * i) for i in range(5)]
    (boxes,) = detections(_yolo_output(anchors, classes=1), [SAME_SIZE], None, max_boxes=3)
    assert [round(box.score, 3) for box in boxes] == [0.7, 0.6, 0.5]


def test_boxes_are_clipped_to_the_image_and_those_outside_it_dropped() -> None:
    resized = Resized(scale_x=2.0, scale_y=2.0, original_width=50, original_height=40)
    output = _yolo_output([(95, 5, 20, 20, 0, 0.9), (150, 150, 10, 10, 0, 0.8)], classes=1)
    assert detections(output, [resized], None) == [
        [Box(42.5, 0.0, 50.0, 7.5, _f32(0.9), 0, "class 0")]
    ]


def test_each_image_of_a_batch_has_its_own_boxes() -> None:
    first = _yolo_output([(50, 50, 10, 10, 0, 0.9)], classes=1)
    second = _yolo_output([(50, 50, 10, 10, 0, 0.1)], classes=1)
    answer = detections(np.concatenate([first, second]), [SAME_SIZE, SAME_SIZE], None)
    assert [len(boxes) for boxes in answer] == [1, 0]


@pytest.mark.parametrize(
    ("outputs", "count", "settings", "error"),
    [
        (np.zeros((1, 6, 10)), 2, {}, InvalidModel),  # two images, one output
        (np.zeros((1, 4, 10)), 1, {}, InvalidModel),  # no class scores
        (np.zeros((1, 6)), 1, {}, InvalidModel),
        (np.zeros((1, 6, 10)), 1, {"confidence": 1.5}, InvalidInput),
        (np.zeros((1, 6, 10)), 1, {"iou": -0.1}, InvalidInput),
        (np.zeros((1, 6, 10)), 1, {"max_boxes": 0}, InvalidInput),
    ],
)
def test_detections_refuse(
    outputs: np.ndarray, count: int, settings: dict[str, float], error: type
) -> None:
    with pytest.raises(error):
        detections(outputs, [SAME_SIZE] * count, None, **settings)  # type: ignore[arg-type]
