"""Datasets through the live platform: layouts, validation with rejected files, bad archives,
imports and deletion.

Uploads refused up front, listing and deleting too early are tested in-process in
``tests/api/test_dataset_uploads.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cvplatform.client import Client
from tests import datasets_kit as kit
from tests.helpers import unique
from tests.integration.conftest import MAX_EXTRACT_BYTES, LivePlatform


@pytest.fixture(scope="module")
def engineer(platform: LivePlatform) -> Iterator[Client]:
    _, client = platform.new_user("engineer")
    yield client
    client.close()


def _final(client: Client, dataset_id: str, expected: str) -> object:
    dataset = client.wait_for_dataset(dataset_id, timeout_s=180)
    assert dataset.status == expected, (dataset.status, dataset.status_reason)
    return dataset


def test_class_folders_with_a_corrupt_image(
    platform: LivePlatform, engineer: Client, tmp_path: Path
) -> None:
    archive = kit.class_folders(tmp_path / "pets.zip", corrupt=("set/class_1/broken.png",))
    accepted = engineer.upload_dataset(archive, unique("pets"), "classification", description="toy")
    assert accepted.status == "uploaded"
    dataset = _final(engineer, accepted.id, "ready")
    assert (dataset.layout, dataset.num_samples, dataset.num_classes) == ("class_folders", 30, 3)
    assert dataset.class_names == ["class_0", "class_1", "class_2"]
    assert dataset.class_counts == {"class_0": 10, "class_1": 10, "class_2": 10}
    assert dataset.image_size_range == {"min": [24, 20], "max": [24, 20]}
    assert dataset.rejected_count == 1
    assert dataset.rejected[0]["file"] == "class_1/broken.png"
    assert dataset.rejected[0]["reason"].startswith("corrupt image")
    assert str(platform.settings.data_dir) not in dataset.rejected[0]["reason"]
    assert dataset.source.filename == "pets.zip" and dataset.total_bytes > 0
    assert dataset.content_hash and len(dataset.content_hash) == 64


def test_content_hash_is_of_contents_not_names(engineer: Client, tmp_path: Path) -> None:
    first = kit.class_folders(tmp_path / "a.zip", classes=2, per_class=3, prefix="img")
    renamed = kit.class_folders(tmp_path / "b.zip", classes=2, per_class=3, prefix="photo")
    hashes = [
        _final(
            engineer, engineer.upload_dataset(path, unique("h"), "classification").id, "ready"
        ).content_hash
        for path in (first, renamed)
    ]
    assert hashes[0] == hashes[1]


def test_images_with_a_metadata_csv(engineer: Client, tmp_path: Path) -> None:
    archive, table = kit.images_with_metadata(tmp_path)
    dataset = _final(
        engineer,
        engineer.upload_dataset(archive, unique("csv"), "classification", metadata=table).id,
        "ready",
    )
    assert (dataset.layout, dataset.num_samples, dataset.class_names) == (
        "images_csv",
        8,
        ["cat", "dog"],
    )
    assert [entry["file"] for entry in dataset.rejected] == ["pics/missing.png"]


def test_yolo_images(engineer: Client, tmp_path: Path) -> None:
    dataset = _final(
        engineer,
        engineer.upload_dataset(kit.yolo(tmp_path / "y.zip"), unique("yolo"), "detection").id,
        "ready",
    )
    assert (dataset.layout, dataset.num_samples, dataset.class_names) == (
        "yolo_images",
        5,
        ["car", "person"],
    )
    assert dataset.class_counts == {"car": 3, "person": 2}
    assert dataset.rejected == [
        {"file": "images/5.png", "reason": "labels/5.txt line 1: unknown class 7"}
    ]


def test_video_with_boxes_and_bad_rows(engineer: Client, tmp_path: Path) -> None:
    rows = [["clip.mp4", f, "ball", 5, 5, 30, 30] for f in range(10)]
    rows += [
        ["clip.mp4", 10, "ball", 30, 5, 5, 30],  # no area
        ["clip.mp4", 11, "ball", 40, 30, 80, 60],  # outside the 64x48 frame
        ["clip.mp4", 40, "ball", 1, 1, 2, 2],  # past the last frame
        ["clip.mp4", 3, "ball", "x", 1, 2, 2],  # not a number
        ["other.mp4", 0, "ball", 1, 1, 2, 2],  # no such video
    ]
    dataset = _final(
        engineer,
        engineer.upload_dataset(kit.video(tmp_path / "v.zip", rows), unique("v"), "detection").id,
        "ready",
    )
    assert (dataset.layout, dataset.num_samples, dataset.class_names) == (
        "videos_csv",
        10,
        ["ball"],
    )
    reasons = " | ".join(entry["reason"] for entry in dataset.rejected)
    for expected in (
        "no area",
        "outside the frame (64x48)",
        "past the video's 12 frames",
        "not a number",
        "not in the dataset",
    ):
        assert expected in reasons


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("traversal", "climbs out"),
        ("absolute", "absolute path"),
        ("symlink", "symbolic link"),
        ("bomb", "unpacks to more than"),
        ("truncated", "not a readable ZIP"),
        ("empty", "holds no files"),
        ("missing columns", "lacks the column(s) x1, y1"),
        ("detection as classification", "looks like a detection dataset"),
    ],
)
def test_bad_archives_end_invalid(
    platform: LivePlatform, engineer: Client, tmp_path: Path, case: str, message: str
) -> None:
    archive = tmp_path / "bad.zip"
    if case == "traversal":
        kit.write_zip(
            archive, {"a/ok.png": kit.png((1, 1, 1)), "../../evil.png": kit.png((2, 2, 2))}
        )
    elif case == "absolute":
        kit.write_zip(archive, {"/tmp/evil.png": kit.png((2, 2, 2))})
    elif case == "symlink":
        kit.with_symlink(archive)
    elif case == "bomb":  # small on the wire, past the extract limit unpacked
        kit.bomb(archive, MAX_EXTRACT_BYTES + 1)
    elif case == "truncated":
        full = kit.class_folders(tmp_path / "full.zip")
        archive.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    elif case == "empty":
        kit.write_zip(archive, {})
    elif case == "missing columns":
        kit.write_zip(archive, {"clip.mp4": b"\0" * 10, "boxes.csv": "video,frame,label,x2,y2\n"})
    else:
        kit.video(archive)
    task = "detection" if case == "missing columns" else "classification"
    dataset = _final(engineer, engineer.upload_dataset(archive, unique("bad"), task).id, "invalid")
    assert message in (dataset.status_reason or "")
    assert not list(platform.settings.data_dir.parent.rglob("evil.png"))
    assert not Path("/tmp/evil.png").exists()


def test_import_csv_refuses_paths_outside(
    platform: LivePlatform, engineer: Client, tmp_path: Path
) -> None:
    import_dir = platform.settings.import_dir
    assert import_dir is not None
    folder = import_dir / unique("cams")
    folder.mkdir()
    for index in range(4):
        (folder / f"{index}.png").write_bytes(kit.noise_png(700 + index))
    secret = import_dir.parent / "outside.png"
    secret.write_bytes(kit.noise_png(1))
    table = tmp_path / "import.csv"
    rows = [f"{folder.name}/{i}.png,{'a' if i % 2 else 'b'}" for i in range(4)]
    rows += ["../outside.png,a", f"{secret},a", f"{folder.name}/nope.png,a"]
    table.write_text("path,label\n" + "\n".join(rows) + "\n")
    dataset = _final(
        engineer, engineer.upload_dataset(table, unique("import"), "classification").id, "ready"
    )
    assert (dataset.layout, dataset.num_samples) == ("import_csv", 4)
    reasons = [entry["reason"] for entry in dataset.rejected]
    assert reasons.count("outside the import directory") == 2
    assert any("not an image here" in reason for reason in reasons)


def test_delete_removes_the_files(
    platform: LivePlatform, engineer: Client, admin: Client, tmp_path: Path
) -> None:
    accepted = engineer.upload_dataset(
        kit.class_folders(tmp_path / "d.zip", per_class=2), unique("doomed"), "classification"
    )
    _final(engineer, accepted.id, "ready")
    folder = platform.settings.artifacts_dir / "datasets" / accepted.id
    assert folder.exists()
    admin.delete_dataset(accepted.id)
    assert not folder.exists()
    with pytest.raises(Exception) as gone:
        engineer.get_dataset(accepted.id)
    assert gone.value.http_status == 404  # type: ignore[attr-defined]
