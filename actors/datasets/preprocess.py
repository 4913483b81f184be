"""Preprocessing: a config, its cache key, the seeded stratified split, and the work on one chunk
of samples (decode, frame extraction, resize), which chunks do in parallel.

Stored tensors are the resized images as uint8 (a quarter of float32's size); the normalization
(mean/std) is part of the config and is applied by :func:`load_split` when they are read.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from cvplatform.inference.preprocessing import normalize_pixels
from cvplatform.schemas import IMAGENET_MEAN, IMAGENET_STD, PreprocessConfig

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PreprocessConfig", "cache_key", "load_split"]

SPLITS = ("train", "val", "test")
FORMAT_VERSION = 1  # bump when the stored layout changes: old cache entries then miss


def cache_key(content_hash: str, config: PreprocessConfig) -> str:
    canonical = json.dumps(
        {"content": content_hash, "config": config.model_dump(mode="json"), "v": FORMAT_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def select_frames(entries: list[dict[str, Any]], frame_rate: float | None) -> list[dict[str, Any]]:
    """Video frames kept at ``frame_rate`` per second of video (images are always kept)."""
    if frame_rate is None:
        return entries
    kept = []
    last_kept: dict[str, float] = {}
    for entry in sorted(
        entries, key=lambda e: (e["file"], e["frame"] if e["frame"] is not None else -1)
    ):
        if entry["frame"] is None or not entry.get("fps"):
            kept.append(entry)
            continue
        moment = entry["frame"] / entry["fps"]
        previous = last_kept.get(entry["file"])
        if previous is None or moment - previous >= 1 / frame_rate - 1e-9:
            kept.append(entry)
            last_kept[entry["file"]] = moment
    return kept


def stratum(entry: dict[str, Any]) -> int:
    """The class a sample is stratified by: its label, or its first box's class."""
    if entry["label"] is not None:
        return int(entry["label"])
    return int(entry["boxes"][0][0]) if entry["boxes"] else -1


def stratified_split(
    sample_ids: list[str], strata: list[int], fractions: tuple[float, float, float], seed: int
) -> dict[str, str]:
    """Assign each sample to train/val/test so that every class keeps the fractions (largest
    remainder rounding per class); the same inputs and seed give the same assignment."""
    rng = np.random.default_rng(seed)
    members: dict[int, list[str]] = defaultdict(list)
    for sample_id, group in zip(sample_ids, strata, strict=True):
        members[group].append(sample_id)
    assignment: dict[str, str] = {}
    for group in sorted(members):
        ids = sorted(members[group])
        order = rng.permutation(len(ids))
        exact = [fraction * len(ids) for fraction in fractions]
        counts = [int(value) for value in exact]
        for position in sorted(range(3), key=lambda i: exact[i] - counts[i], reverse=True):
            if sum(counts) == len(ids):
                break
            counts[position] += 1
        start = 0
        for split, count in zip(SPLITS, counts, strict=True):
            for index in order[start : start + count]:
                assignment[ids[index]] = split
            start += count
    return assignment


def _resized(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    return np.asarray(image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR))


def _scaled_boxes(entry: dict[str, Any], size: tuple[int, int]) -> list[list[float]]:
    height, width = size
    sx, sy = width / entry["width"], height / entry["height"]
    return [[box[0], box[1] * sx, box[2] * sy, box[3] * sx, box[4] * sy] for box in entry["boxes"]]


def _frames(path: Path, wanted: set[int]) -> dict[int, Image.Image]:
    import av

    found: dict[int, Image.Image] = {}
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                found[index] = frame.to_image()  # type: ignore[no-untyped-call]
            if len(found) == len(wanted):
                break
    return found


def process_chunk(
    root: Path, entries: list[dict[str, Any]], config: PreprocessConfig, output: Path
) -> int:
    """Decode and resize one chunk's samples into ``output`` (an .npz); returns the count."""
    images, labels, boxes, ids = [], [], [], []
    by_video: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        if entry["frame"] is not None:
            by_video[entry["file"]].append(entry)
            continue
        with Image.open(root / entry["file"]) as image:
            images.append(_resized(image, config.image_size))
        ids.append(entry["id"])
    for video, frames in by_video.items():
        decoded = _frames(root / video, {entry["frame"] for entry in frames})
        for entry in frames:
            images.append(_resized(decoded[entry["frame"]], config.image_size))
            ids.append(entry["id"])
    ordered = {entry["id"]: entry for entry in entries}
    for sample_id in ids:
        entry = ordered[sample_id]
        labels.append(-1 if entry["label"] is None else entry["label"])
        boxes.append(_scaled_boxes(entry, config.image_size))
    shape = (0, *config.image_size, 3)
    np.savez(
        output,
        images=np.stack(images) if images else np.zeros(shape, np.uint8),
        labels=np.asarray(labels, np.int64),
        ids=np.asarray(ids, dtype=str),
        boxes=np.asarray(json.dumps(boxes)),
    )
    return len(ids)


def load_split(
    output_dir: Path, split: str
) -> tuple[np.ndarray, np.ndarray, list[str], list[list[list[float]]]]:
    """One split of a finished preprocessing: (images float32 NCHW normalized, labels, sample ids,
    boxes per sample in resized pixels)."""
    config = PreprocessConfig.model_validate_json((output_dir / "config.json").read_text())
    assignment: dict[str, str] = json.loads((output_dir / "split.json").read_text())
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    ids: list[str] = []
    boxes: list[list[list[float]]] = []
    for chunk in sorted(output_dir.glob("chunk_*.npz")):
        with np.load(chunk) as stored:
            keep = [assignment.get(str(sample_id)) == split for sample_id in stored["ids"]]
            images.append(stored["images"][keep])
            labels.append(stored["labels"][keep])
            ids.extend(str(i) for i, k in zip(stored["ids"], keep, strict=True) if k)
            chunk_boxes = json.loads(str(stored["boxes"]))
            boxes.extend(b for b, k in zip(chunk_boxes, keep, strict=True) if k)
    pixels = np.concatenate(images) if images else np.zeros((0, *config.image_size, 3), np.uint8)
    normalized = normalize_pixels(pixels, config.mean, config.std)
    return normalized, np.concatenate(labels) if labels else np.zeros(0, np.int64), ids, boxes
