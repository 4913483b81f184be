"""Where the files a dataset lists are: paths relative to the CSV or the root, bare file names,
the YOLO layouts of Ultralytics and Roboflow, and rejects grouped per file (issue 9, item 1)."""

from __future__ import annotations

import json
import uuid
import zipfile
from pathlib import Path

import pytest

from actors.datasets.job import validation_job
from actors.datasets.layouts import discover, files_root
from actors.datasets.paths import PathResolver, Resolution, row_span
from actors.datasets.storage import MANIFEST, UPLOAD_ARCHIVE
from actors.datasets.validate import check_candidates
from actors.jobs.registry import run_to_end
from cvplatform.config import Settings
from store import queries
from tests import datasets_kit as kit
from tests.jobs_kit import WriterStore, reporter_for

FRAMES = 4  # each toy video: 64x48, 4 frames


def _clip(folder: Path) -> bytes:
    with zipfile.ZipFile(kit.video(folder / "clip.zip", rows=[], frames=FRAMES)) as archive:
        return archive.read("clip.mp4")


def _issue_rows() -> list[list[object]]:
    """Two boxes on every frame of traffic_a, one on every frame of traffic_b: bare names."""
    rows: list[list[object]] = []
    for frame in range(FRAMES):
        rows.append(["traffic_a.mp4", frame, "car", 2, 2, 20, 20])
        rows.append(["traffic_a.mp4", frame, "person", 30, 10, 40, 40])
        rows.append(["traffic_b.mp4", frame, "car", 5, 5, 25, 25])
    return rows


def _issue_zip(path: Path, video: bytes, top: str = "") -> Path:
    """The layout of the issue: annotations.csv at the root, the videos in videos/."""
    return kit.write_zip(
        path,
        {
            f"{top}annotations.csv": kit.video_rows(_issue_rows()),
            f"{top}videos/traffic_a.mp4": video,
            f"{top}videos/traffic_b.mp4": video,
        },
    )


def _tree(root: Path, entries: dict[str, bytes | str]) -> Path:
    for name, content in entries.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def _unzipped(archive: Path, folder: Path) -> tuple[Path, str]:
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(folder)
    root = files_root(folder)
    return root, "" if root == folder else root.relative_to(folder).as_posix()


# --- the resolver, on its own ------------------------------------------------------------------

FILES = ["videos/a.mp4", "sub/clips/b.mp4", "x/dup.mp4", "y/dup.mp4", "top.mp4"]


@pytest.mark.parametrize(
    ("listed", "folder", "expected"),
    [
        ("clips/b.mp4", "sub", Resolution("sub/clips/b.mp4")),  # relative to the CSV
        ("../videos/a.mp4", "sub", Resolution("videos/a.mp4")),  # climbs, but stays inside
        ("videos/a.mp4", "sub", Resolution("videos/a.mp4")),  # relative to the root
        ("a.mp4", "", Resolution("videos/a.mp4")),  # by its unique name
        ("elsewhere/a.mp4", "", Resolution("videos/a.mp4")),
        ("videos\\a.mp4", "", Resolution("videos/a.mp4")),  # written on Windows
        ("dup.mp4", "", Resolution(problem="ambiguous", matches=("x/dup.mp4", "y/dup.mp4"))),
        ("gone.mp4", "", Resolution(problem="missing")),
        ("../top.mp4", "", Resolution(problem="outside")),
        ("../../top.mp4", "sub", Resolution(problem="outside")),
        ("/data/top.mp4", "", Resolution(problem="outside")),
        ("C:\\data\\top.mp4", "", Resolution(problem="outside")),
    ],
)
def test_a_listed_path_resolves_in_order(listed: str, folder: str, expected: Resolution) -> None:
    assert PathResolver(FILES).resolve(listed, folder) == expected


def test_the_top_folder_looked_through_is_read_off() -> None:
    resolver = PathResolver(FILES)
    assert resolver.resolve("export/videos/a.mp4", prefix="export").file == "videos/a.mp4"
    strict = PathResolver(FILES, by_name=False)
    assert strict.resolve("a.mp4") == Resolution(problem="missing")


@pytest.mark.parametrize(
    ("numbers", "text"),
    [([7], "row 7"), ([2, 3, 4], "rows 2-4"), ([50, *range(2, 42)], "rows 2-41, 50")],
)
def test_row_numbers_are_compacted(numbers: list[int], text: str) -> None:
    assert row_span(numbers) == text


# --- video CSVs --------------------------------------------------------------------------------


@pytest.mark.parametrize("top", ["", "export/"])
def test_the_issue_layout_gives_every_frame_and_box(tmp_path: Path, top: str) -> None:
    root, prefix = _unzipped(_issue_zip(tmp_path / "v.zip", _clip(tmp_path), top), tmp_path / "v")
    discovery = discover(root, "detection", path_prefix=prefix)
    assert (discovery.layout, discovery.rejected) == ("videos_csv", [])
    assert len(discovery.candidates) == 2 * FRAMES
    assert {c.file for c in discovery.candidates} == {
        "videos/traffic_a.mp4",
        "videos/traffic_b.mp4",
    }
    assert sum(len(c.boxes) for c in discovery.candidates) == 3 * FRAMES
    entries, rejected = check_candidates(root, discovery.candidates)
    assert rejected == [] and len(entries) == 2 * FRAMES
    assert entries[0]["file"] == "videos/traffic_a.mp4" and len(entries[0]["boxes"]) == 2


def test_a_csv_in_a_subfolder_lists_paths_relative_to_itself(tmp_path: Path) -> None:
    rows = [["clips/a.mp4", 0, "car", 1, 1, 5, 5], ["../videos/b.mp4", 1, "car", 1, 1, 5, 5]]
    root = _tree(
        tmp_path,
        {
            "meta/boxes.csv": kit.video_rows(rows),
            "meta/clips/a.mp4": b"\0",
            "videos/b.mp4": b"\0",
        },
    )
    discovery = discover(root, "detection")
    assert discovery.rejected == []
    assert [c.sample_id for c in discovery.candidates] == ["meta/clips/a.mp4#0", "videos/b.mp4#1"]


def test_a_name_two_files_share_is_rejected_naming_both(tmp_path: Path) -> None:
    rows = [["clip.mp4", frame, "car", 1, 1, 5, 5] for frame in range(3)]
    rows.append(["day/clip.mp4", 0, "car", 1, 1, 5, 5])  # with its folder: fine
    root = _tree(
        tmp_path,
        {"boxes.csv": kit.video_rows(rows), "day/clip.mp4": b"\0", "night/clip.mp4": b"\0"},
    )
    discovery = discover(root, "detection")
    assert [c.sample_id for c in discovery.candidates] == ["day/clip.mp4#0"]
    assert discovery.rejected == [
        {
            "file": "clip.mp4",
            "reason": "listed in boxes.csv rows 2-4 but 2 files have that name "
            "(day/clip.mp4, night/clip.mp4); write the path with its folder",
        }
    ]


def test_a_missing_video_on_many_rows_is_one_reject_with_its_rows(tmp_path: Path) -> None:
    rows: list[list[object]] = [["gone.mp4", frame, "car", 1, 1, 5, 5] for frame in range(40)]
    rows.append(["here.mp4", 0, "car", 1, 1, 5, 5])
    rows.append(["here.mp4", 1, "car", 5, 5, 1, 1])  # a bad row stays a reject of its own
    rows.append(["gone.mp4", 40, "car", 1, 1, 5, 5])
    root = _tree(tmp_path, {"annotations.csv": kit.video_rows(rows), "videos/here.mp4": b"\0"})
    discovery = discover(root, "detection")
    assert len(discovery.candidates) == 1
    assert discovery.rejected == [
        {
            "file": "annotations.csv:43",
            "reason": "box (5.0, 5.0, 1.0, 1.0) has no area (needs x1 < x2 and y1 < y2)",
        },
        {
            "file": "gone.mp4",
            "reason": "listed in annotations.csv rows 2-41, 44 but not in the dataset",
        },
    ]


def test_a_path_that_climbs_out_is_rejected(tmp_path: Path) -> None:
    rows = [
        ["../traffic_a.mp4", 0, "car", 1, 1, 5, 5],
        ["/srv/traffic_a.mp4", 0, "car", 1, 1, 5, 5],
    ]
    root = _tree(
        tmp_path / "files", {"annotations.csv": kit.video_rows(rows), "videos/traffic_a.mp4": b"\0"}
    )
    (tmp_path / "traffic_a.mp4").write_bytes(b"\0")  # beside the root: never reached
    discovery = discover(root, "detection")
    assert discovery.candidates == []
    assert [entry["file"] for entry in discovery.rejected] == [
        "../traffic_a.mp4",
        "/srv/traffic_a.mp4",
    ]
    assert all("points outside the dataset" in entry["reason"] for entry in discovery.rejected)


# --- image CSVs --------------------------------------------------------------------------------


def test_an_image_csv_lists_images_by_bare_name(tmp_path: Path) -> None:
    table = "path,label\n0.png,cat\n1.png,dog\npics/1.png,dog\n0.png,dog\nnope.png,cat\n"
    root = _tree(
        tmp_path,
        {"labels.csv": table, "pics/0.png": kit.noise_png(1), "pics/1.png": kit.noise_png(2)},
    )
    discovery = discover(root, "classification")
    assert [(c.file, c.label) for c in discovery.candidates] == [
        ("pics/0.png", "cat"),
        ("pics/1.png", "dog"),  # listed twice, one sample
    ]
    assert discovery.rejected == [
        {"file": "labels.csv:5", "reason": "pics/0.png has the label 'cat' from row 2 already"},
        {"file": "nope.png", "reason": "listed in labels.csv row 6 but not an image here"},
    ]


def test_a_metadata_csv_beside_the_zip_lists_bare_names(tmp_path: Path) -> None:
    root = _tree(tmp_path / "files", {"a/0.png": kit.noise_png(1), "b/1.png": kit.noise_png(2)})
    metadata = tmp_path / "metadata.csv"
    metadata.write_text("path,label\n0.png,cat\n1.png,dog\n")
    discovery = discover(root, "classification", metadata)
    assert (discovery.layout, discovery.rejected) == ("images_csv", [])
    assert [c.file for c in discovery.candidates] == ["a/0.png", "b/1.png"]


# --- YOLO --------------------------------------------------------------------------------------


def test_yolo_split_folders_find_their_own_labels(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "data.yaml": "names: [car, person]\n",
            "images/train/x.png": kit.noise_png(1),
            "labels/train/x.txt": "0 0.5 0.5 0.2 0.2\n",
            "images/val/x.png": kit.noise_png(2),  # the same name in another split
            "labels/val/x.txt": "1 0.5 0.5 0.2 0.2\n",
            "train/images/r.png": kit.noise_png(3),  # Roboflow: <split>/images, <split>/labels
            "train/labels/r.txt": "1 0.5 0.5 0.4 0.4\n",
            "images/loose.png": kit.noise_png(4),  # its label found by its unique name
            "labels/extra/loose.txt": "0 0.5 0.5 0.1 0.1\n",
            "images/twice.png": kit.noise_png(5),
            "labels/a/twice.txt": "0 0.5 0.5 0.1 0.1\n",
            "labels/b/twice.txt": "1 0.5 0.5 0.1 0.1\n",
            "images/none.png": kit.noise_png(6),
        },
    )
    discovery = discover(root, "detection")
    assert discovery.layout == "yolo_images"
    assert discovery.class_names == ["car", "person"]
    assert {c.file: c.boxes[0][0] for c in discovery.candidates} == {
        "images/train/x.png": "car",
        "images/val/x.png": "person",
        "train/images/r.png": "person",
        "images/loose.png": "car",
    }
    assert discovery.rejected == [
        {"file": "images/none.png", "reason": "no label file labels/none.txt"},
        {
            "file": "images/twice.png",
            "reason": "2 label files fit it (labels/a/twice.txt, labels/b/twice.txt); "
            "put its own at labels/twice.txt",
        },
    ]


def test_yolo_class_names_in_a_split_folder_are_found(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "export/classes.txt": "car\n",
            "export/images/a.png": kit.noise_png(1),
            "export/labels/a.txt": "0 0.5 0.5 0.2 0.2\n",
            "readme.md": "a dataset",
        },
    )
    discovery = discover(root, "detection")
    assert (discovery.class_names, discovery.rejected) == (["car"], [])


# --- the real validation job, in-process -------------------------------------------------------


def test_validation_of_the_issue_zip_ends_ready_with_every_frame_and_box(
    tmp_path: Path, settings: Settings, store: WriterStore
) -> None:
    dataset_id = uuid.uuid4().hex
    folder = settings.artifacts_dir / "datasets" / dataset_id
    folder.mkdir(parents=True)
    archive = _issue_zip(folder / UPLOAD_ARCHIVE, _clip(tmp_path))
    store.call_sync(
        "create_dataset",
        dataset={
            "id": dataset_id,
            "name": "traffic",
            "task_type": "detection",
            "source_filename": "traffic.zip",
            "source_sha256": "0" * 64,
            "source_size_bytes": archive.stat().st_size,
            "files_path": f"datasets/{dataset_id}",
        },
    )
    job = validation_job(dataset_id)
    assert run_to_end(job, reporter_for(settings, job, store)).status == "ready"
    dataset = queries.dataset_by_id(store.writer._db, dataset_id)
    assert dataset is not None
    assert (dataset.status, dataset.layout, dataset.num_samples) == ("ready", "videos_csv", 8)
    assert dataset.class_names == ["car", "person"]
    assert dataset.details["rejected_count"] == 0
    assert dataset.details["class_counts"] == {"car": 2 * FRAMES, "person": FRAMES}
    manifest = [json.loads(line) for line in (folder / MANIFEST).read_text().splitlines()]
    assert {(entry["file"], entry["frame"]) for entry in manifest} == {
        (f"videos/traffic_{name}.mp4", frame) for name in "ab" for frame in range(FRAMES)
    }
    assert sum(len(entry["boxes"]) for entry in manifest) == 3 * FRAMES
