"""Dataset layouts, validation, the split, the cache key and augmentation: plain code."""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from actors.datasets.augment import AugmentationConfig, augment
from actors.datasets.job import chunked
from actors.datasets.layouts import discover, files_root
from actors.datasets.preprocess import PreprocessConfig, cache_key, select_frames, stratified_split
from actors.datasets.validate import check_candidates, summarize
from cvplatform.errors import InvalidInput
from tests import datasets_kit as kit


def _unzipped(archive: Path, folder: Path) -> Path:
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(folder)
    return files_root(folder)


def test_class_folders_and_their_summary(tmp_path: Path) -> None:
    root = _unzipped(
        kit.class_folders(
            tmp_path / "c.zip", classes=2, per_class=3, corrupt=("set/class_0/bad.png",)
        ),
        tmp_path / "c",
    )
    discovery = discover(root, "classification")
    assert discovery.layout == "class_folders" and len(discovery.candidates) == 7
    entries, rejected = check_candidates(root, discovery.candidates)
    outcome = summarize(entries, rejected, discovery.layout)
    assert (outcome["num_samples"], outcome["num_classes"]) == (6, 2)
    assert outcome["details"]["rejected"][0]["file"] == "class_0/bad.png"
    assert {entry["label"] for entry in entries} == {0, 1}


@pytest.mark.parametrize(
    ("task", "entries", "message"),
    [
        ("detection", {"c/a.png": b""}, "not a detection one"),
        (
            "classification",
            {"labels/a.txt": "0 .5 .5 .1 .1", "a.png": b""},
            "looks like a detection dataset",
        ),
        ("detection", {"labels/a.txt": "0 .5 .5 .1 .1", "images/a.png": b""}, "class-names file"),
        ("classification", {}, "holds no files"),
    ],
)
def test_layouts_that_do_not_fit(
    tmp_path: Path, task: str, entries: dict[str, bytes | str], message: str
) -> None:
    root = tmp_path / "d"
    root.mkdir()
    for name, content in entries.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InvalidInput, match=message):
        discover(root, task)


def test_split_is_seeded_stratified_and_complete() -> None:
    ids = [f"s{i}" for i in range(300)]
    strata = [i % 3 for i in range(300)]
    first = stratified_split(ids, strata, (0.8, 0.1, 0.1), seed=1)
    assert first == stratified_split(ids, strata, (0.8, 0.1, 0.1), seed=1)
    assert first != stratified_split(ids, strata, (0.8, 0.1, 0.1), seed=2)
    assert set(first) == set(ids)
    for group in range(3):
        counts = Counter(split for sample, split in first.items() if int(sample[1:]) % 3 == group)
        assert counts == {"train": 80, "val": 10, "test": 10}


def test_small_classes_still_split_fully() -> None:
    assignment = stratified_split(["a", "b", "c"], [0, 0, 1], (0.8, 0.1, 0.1), seed=0)
    assert len(assignment) == 3


def test_cache_key_follows_content_and_config() -> None:
    base = PreprocessConfig()
    assert cache_key("h", base) == cache_key("h", PreprocessConfig())
    assert cache_key("h", base) != cache_key("other", base)
    assert cache_key("h", base) != cache_key("h", PreprocessConfig(seed=1))
    assert cache_key("h", base) != cache_key(
        "h", PreprocessConfig(augmentation=AugmentationConfig(enabled=False))
    )


def test_frames_are_kept_at_the_rate() -> None:
    entries = [{"file": "v.mp4", "frame": f, "fps": 10.0} for f in range(20)]
    assert [e["frame"] for e in select_frames(entries, 2.0)] == [0, 5, 10, 15]
    images = [{"file": "a.png", "frame": None}]
    assert select_frames(images, 2.0) == images


def test_augmentation_is_deterministic_per_seed_epoch_and_batch() -> None:
    batch = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
    config = AugmentationConfig()
    once = augment(batch, config, seed=1, epoch=0, batch=0)
    assert np.array_equal(once, augment(batch, config, seed=1, epoch=0, batch=0))
    assert not np.array_equal(once, augment(batch, config, seed=1, epoch=1, batch=0))
    assert once.shape == batch.shape and once.dtype == batch.dtype
    assert np.array_equal(augment(batch, AugmentationConfig(enabled=False), 1, 0, 0), batch)


def test_chunks_keep_a_videos_frames_together() -> None:
    items = [("v1", 0), ("v1", 1), ("v2", 0), ("a", None), ("b", None)]
    chunks = chunked(items, key=lambda item: item[0], parts=3)
    assert sorted(item for chunk in chunks for item in chunk) == sorted(items)
    assert sum(1 for chunk in chunks if ("v1", 0) in chunk and ("v1", 1) in chunk) == 1
    assert len(chunks) <= 3
