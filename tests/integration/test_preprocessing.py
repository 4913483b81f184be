"""The sample datasets, and preprocessing with its cache, split and frame extraction.

Preprocessing requests refused up front are tested in-process in
``tests/api/test_preprocessing_requests.py``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from actors.datasets.preprocess import load_split
from actors.jobs.runner import execute
from actors.startup import REGISTER_SAMPLES
from cvplatform.client import Client
from cvplatform.errors import Conflict
from tests import datasets_kit, models_kit
from tests.helpers import unique
from tests.integration.conftest import LivePlatform


@pytest.fixture(scope="module")
def samples(platform: LivePlatform) -> Iterator[dict[str, str]]:
    settings = platform.settings.model_copy(update={"samples": "digits,shapes-video"})
    register = ray.remote(num_cpus=1)(execute)
    assert ray.get(register.remote(settings, REGISTER_SAMPLES)) == "completed"
    assert ray.get(register.remote(settings, REGISTER_SAMPLES)) == "completed"  # idempotent
    with platform.admin() as admin:
        registered = [d for d in admin.list_datasets(limit=200).items if d.is_sample]
        assert len(registered) == 2  # registered once
        found = {d.sample: d.id for d in registered}
        for dataset_id in found.values():
            admin.wait_for_dataset(dataset_id, timeout_s=240)
    yield found  # type: ignore[misc]


def test_digits_sample(admin: Client, samples: dict[str, str]) -> None:
    digits = admin.get_dataset(samples["digits"])
    assert (digits.status, digits.num_samples, digits.num_classes) == ("ready", 1797, 10)
    assert digits.class_names == [str(n) for n in range(10)]
    assert sum((digits.class_counts or {}).values()) == 1797
    assert digits.image_size_range == {"min": [32, 32], "max": [32, 32]}
    with pytest.raises(Conflict, match="sample"):
        admin.delete_dataset(digits.id)


def test_shapes_video_sample(admin: Client, samples: dict[str, str]) -> None:
    shapes = admin.get_dataset(samples["shapes-video"])
    assert (shapes.status, shapes.layout, shapes.num_samples) == ("ready", "videos_csv", 96)
    assert shapes.class_names == ["circle", "square", "triangle"]
    assert "ynthetic" in shapes.description
    assert shapes.rejected_count == 0


def test_preprocessing_is_cached_and_stratified(
    platform: LivePlatform, admin: Client, samples: dict[str, str]
) -> None:
    digits = samples["digits"]
    first = admin.preprocess(digits, image_size=[32, 32], seed=3)
    assert first.cache_hit is False and first.status == "running"
    done = admin.wait_for_preprocessing(digits, first.id)
    assert done.status == "ready", done.status_reason
    assert done.split_counts is not None and sum(done.split_counts.values()) == 1797
    assert done.split_counts["train"] == pytest.approx(0.8 * 1797, abs=10)
    again = admin.preprocess(digits, image_size=[32, 32], seed=3)
    assert (again.cache_hit, again.id, again.status) == (True, first.id, "ready")
    assert admin.get_preprocessing(digits, first.id).reuses == 1
    other_seed = admin.preprocess(digits, image_size=[32, 32], seed=4)
    assert other_seed.cache_hit is False and other_seed.cache_key != first.cache_key

    output = platform.settings.artifacts_dir / "preprocessed" / first.cache_key
    images, labels, ids, _ = load_split(output, "train")
    assert images.shape == (len(ids), 3, 32, 32) and images.dtype.name == "float32"
    assert -3 < float(images.mean()) < 3  # normalized with the ImageNet mean and std
    per_class = Counter(labels.tolist())
    for count in per_class.values():  # every class keeps about 80% in train
        assert 0.75 < count / (len(labels) / 10) < 1.25
    _, _, test_ids, _ = load_split(output, "test")
    assert not set(ids) & set(test_ids)
    admin.wait_for_preprocessing(digits, other_seed.id)


def test_video_frames_at_a_rate(
    platform: LivePlatform, admin: Client, samples: dict[str, str]
) -> None:
    shapes = samples["shapes-video"]
    run = admin.preprocess(shapes, image_size=[60, 80], frame_rate=2.0, split=[0.5, 0.25, 0.25])
    done = admin.wait_for_preprocessing(shapes, run.id)
    assert done.status == "ready", done.status_reason
    assert done.split_counts is not None
    assert sum(done.split_counts.values()) == 24  # 96 frames at 8 fps = 12 s, 2 frames a second
    output = platform.settings.artifacts_dir / "preprocessed" / done.cache_key
    images, _, _, boxes = load_split(output, "train")
    assert images.shape[1:] == (3, 60, 80)
    assert all(len(sample_boxes) == 3 for sample_boxes in boxes)
    assert all(0 <= b[1] < b[3] <= 80 and 0 <= b[2] < b[4] <= 60 for s in boxes for b in s)


def test_image_size_from_a_model(admin: Client, tmp_path: Path, samples: dict[str, str]) -> None:
    model = admin.upload_model(
        models_kit.onnx_classifier(tmp_path / "m.onnx", size=28), unique("m"), "classification"
    )
    assert admin.wait_for_model(model.id).status == "ready"
    run = admin.preprocess(samples["digits"], model_id=model.id)
    assert run.config["image_size"] == [28, 28]
    admin.wait_for_preprocessing(samples["digits"], run.id)


def test_start_resumes_validation_and_fails_cut_short_preprocessing(
    platform: LivePlatform, admin: Client, tmp_path: Path, samples: dict[str, str]
) -> None:
    """As if the platform had stopped mid-way: the next start picks both up."""
    from actors.datasets.storage import UPLOAD_ARCHIVE
    from actors.startup import start_dataset_work
    from store.actor import StoreClient

    store = StoreClient()
    dataset_id = unique("resume").replace("-", "")
    folder = platform.settings.artifacts_dir / "datasets" / dataset_id
    folder.mkdir(parents=True)
    datasets_kit.class_folders(folder / UPLOAD_ARCHIVE, classes=2, per_class=2)
    store.call_sync(
        "create_dataset",
        dataset={
            "id": dataset_id,
            "name": "resumed",
            "task_type": "classification",
            "source_filename": "r.zip",
            "source_sha256": "0" * 64,
            "source_size_bytes": 1,
            "files_path": f"datasets/{dataset_id}",
        },
    )
    running = store.call_sync(
        "start_preprocessing",
        preprocessing_id=unique("pp"),
        dataset_id=samples["digits"],
        cache_key=unique("key"),
        config={},
        output_path="preprocessed/never",
        created_by=None,
    )
    start_dataset_work(platform.settings.model_copy(update={"samples": ""}))
    assert admin.wait_for_dataset(dataset_id, timeout_s=120).status == "ready"
    interrupted = admin.get_preprocessing(samples["digits"], running.record.id)
    assert interrupted.status == "failed" and "interrupted" in (interrupted.status_reason or "")
