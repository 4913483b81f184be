"""Which layout a dataset has, and the samples it claims (before any file is decoded).

Classification: ``class_name/image`` folders, or images with a ``path,label`` CSV.
Detection: videos with a ``video,frame,label,x1,y1,x2,y2`` CSV (pixels), or images with YOLO label
files (``labels/<name>.txt``: ``class cx cy w h``, normalized) and a class-names file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cvplatform.errors import InvalidInput

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov"})
CLASS_NAME_FILES = ("classes.txt", "names.txt", "obj.names")
CLASSIFICATION_COLUMNS = ("path", "label")
VIDEO_COLUMNS = ("video", "frame", "label", "x1", "y1", "x2", "y2")

# (class name, x1, y1, x2, y2); pixels, or fractions of the image when `normalized` is set.
Box = tuple[str, float, float, float, float]


@dataclass(frozen=True)
class Candidate:
    file: str  # relative to the files root, POSIX separators
    label: str | None = None
    frame: int | None = None
    boxes: tuple[Box, ...] = ()
    normalized: bool = False  # YOLO boxes: converted to pixels once the image size is known

    @property
    def sample_id(self) -> str:
        return self.file if self.frame is None else f"{self.file}#{self.frame}"


@dataclass
class Discovery:
    layout: str
    candidates: list[Candidate]
    class_names: list[str]
    rejected: list[dict[str, str]] = field(default_factory=list)

    def reject(self, file: str, reason: str) -> None:
        self.rejected.append({"file": file, "reason": reason})


def _files(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not any(
            part.startswith((".", "__MACOSX")) for part in relative.split("/")
        ):
            found.append(relative)
    return found


def files_root(extracted: Path) -> Path:
    """The folder the layout starts in: a ZIP's single top folder is looked through."""
    entries = [
        entry for entry in extracted.iterdir() if not entry.name.startswith((".", "__MACOSX"))
    ]
    if len(entries) == 1 and entries[0].is_dir():
        return files_root(entries[0])
    return extracted


def _suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def _read_csv(path: Path, required: Iterable[str]) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as source:
        reader = csv.DictReader(source)
        columns = [name.strip().lower() for name in reader.fieldnames or []]
        missing = [name for name in required if name not in columns]
        if missing:
            raise InvalidInput(
                f"{path.name} lacks the column(s) {', '.join(missing)}; it needs "
                f"{','.join(required)} (found: {','.join(columns) or 'no header'})"
            )
        return [
            {key.strip().lower(): (value or "").strip() for key, value in row.items() if key}
            for row in reader
        ]


def discover(
    root: Path, task_type: str, metadata_csv: Path | None = None, path_prefix: str = ""
) -> Discovery:
    """Tell the layout and list its candidate samples; files the layout names but cannot use
    are rejected with the reason.

    ``path_prefix`` is the folder :func:`files_root` looked through: CSV paths that start with
    it (written relative to the archive's top) are read without it.

    Raises:
        InvalidInput: no files, a layout that does not fit the task type, or a CSV without the
            columns its layout needs.
    """
    files = _files(root)
    if not files and metadata_csv is None:
        raise InvalidInput("the dataset holds no files")
    csvs = [name for name in files if _suffix(name) == ".csv"]
    videos = [name for name in files if _suffix(name) in VIDEO_EXTENSIONS]
    images = [name for name in files if _suffix(name) in IMAGE_EXTENSIONS]
    label_files = [name for name in files if name.startswith("labels/") and name.endswith(".txt")]
    table = metadata_csv or (root / csvs[0] if len(csvs) == 1 else None)
    if videos:
        _expect(task_type, "detection", "videos with box annotations")
        if table is None:
            raise InvalidInput("videos need a CSV video,frame,label,x1,y1,x2,y2 beside them")
        return _videos_with_csv(root, set(files), table, path_prefix)
    if label_files:
        _expect(task_type, "detection", "images with YOLO label files")
        return _yolo_images(root, images, set(files))
    if table is not None:
        _expect(task_type, "classification", "images with a path,label CSV")
        return _images_with_csv(root, set(files), table, path_prefix)
    _expect(task_type, "classification", "class folders of images (no boxes)")
    return _class_folders(files, images)


def _expect(task_type: str, layout_task: str, layout: str) -> None:
    if task_type != layout_task:
        raise InvalidInput(
            f"this looks like a {layout_task} dataset ({layout}), not a {task_type} one; "
            f"upload it with task_type={layout_task}"
        )


def _class_folders(files: list[str], images: list[str]) -> Discovery:
    discovery = Discovery("class_folders", [], [])
    for name in files:
        parts = name.split("/")
        if name not in images:
            discovery.reject(name, "not an image file")
        elif len(parts) < 2:
            discovery.reject(name, "an image outside any class folder")
        else:
            discovery.candidates.append(Candidate(name, label=parts[-2]))
    discovery.class_names = sorted({c.label for c in discovery.candidates if c.label})
    return discovery


def _unprefixed(path: str, prefix: str) -> str:
    return path[len(prefix) + 1 :] if prefix and path.startswith(prefix + "/") else path


def _images_with_csv(root: Path, files: set[str], table: Path, prefix: str = "") -> Discovery:
    discovery = Discovery("images_csv", [], [])
    for number, row in enumerate(_read_csv(table, CLASSIFICATION_COLUMNS), start=2):
        path, label = _unprefixed(row["path"], prefix), row["label"]
        if not path or not label:
            discovery.reject(f"{table.name}:{number}", "empty path or label")
        elif path not in files or _suffix(path) not in IMAGE_EXTENSIONS:
            discovery.reject(
                row["path"], f"listed in {table.name} line {number} but not an image here"
            )
        else:
            discovery.candidates.append(Candidate(path, label=label))
    discovery.class_names = sorted({c.label for c in discovery.candidates if c.label})
    return discovery


def _number(row: dict[str, str], column: str) -> float:
    try:
        return float(row[column])
    except ValueError:
        raise ValueError(f"{column}={row[column]!r} is not a number") from None


def _videos_with_csv(root: Path, files: set[str], table: Path, prefix: str = "") -> Discovery:
    discovery = Discovery("videos_csv", [], [])
    frames: dict[tuple[str, int], list[Box]] = {}
    for number, row in enumerate(_read_csv(table, VIDEO_COLUMNS), start=2):
        where = f"{table.name}:{number}"
        try:
            frame = int(row["frame"])
            x1, y1, x2, y2 = (_number(row, c) for c in ("x1", "y1", "x2", "y2"))
            box: Box = (row["label"], x1, y1, x2, y2)
        except ValueError as error:
            discovery.reject(where, f"bad row: {error}")
            continue
        row["video"] = _unprefixed(row["video"], prefix)
        if row["video"] not in files:
            discovery.reject(row["video"], f"listed in {where} but not in the dataset")
        elif frame < 0 or not box[0]:
            discovery.reject(where, "a negative frame number or an empty label")
        elif not (box[1] < box[3] and box[2] < box[4]):
            discovery.reject(where, f"box {box[1:]} has no area (needs x1 < x2 and y1 < y2)")
        else:
            frames.setdefault((row["video"], frame), []).append(box)
    discovery.candidates = [
        Candidate(video, frame=frame, boxes=tuple(boxes))
        for (video, frame), boxes in sorted(frames.items())
    ]
    discovery.class_names = sorted({box[0] for c in discovery.candidates for box in c.boxes})
    return discovery


def _class_names_file(root: Path, files: set[str]) -> list[str]:
    for name in CLASS_NAME_FILES:
        if name in files:
            return [line.strip() for line in (root / name).read_text().splitlines() if line.strip()]
    if "data.yaml" in files:
        import yaml

        names = yaml.safe_load((root / "data.yaml").read_text()).get("names")
        if isinstance(names, dict):
            return [str(names[key]) for key in sorted(names)]
        if isinstance(names, list):
            return [str(name) for name in names]
    raise InvalidInput(
        f"YOLO labels need a class-names file: one of {', '.join(CLASS_NAME_FILES)} or data.yaml"
    )


def _yolo_boxes(text: str, class_names: list[str]) -> list[Box]:
    """The boxes of one label file; raises ValueError naming the first bad line."""
    boxes: list[Box] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            index, *numbers = line.split()
            class_index = int(index)
            cx, cy, w, h = (float(value) for value in numbers)
        except ValueError:
            raise ValueError(f"line {number} needs 'class cx cy w h'") from None
        if not 0 <= class_index < len(class_names):
            raise ValueError(f"line {number}: unknown class {class_index}")
        name = class_names[class_index]
        boxes.append((name, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return boxes


def _yolo_images(root: Path, images: list[str], files: set[str]) -> Discovery:
    class_names = _class_names_file(root, files)
    discovery = Discovery("yolo_images", [], class_names)
    for image in images:
        label_file = f"labels/{PurePosixPath(image).stem}.txt"
        if label_file not in files:
            discovery.reject(image, f"no label file {label_file}")
            continue
        try:
            boxes = _yolo_boxes((root / label_file).read_text(), class_names)
        except ValueError as error:
            # A half-understood label file would teach wrong negatives: leave the image out.
            discovery.reject(image, f"{label_file} {error}")
            continue
        discovery.candidates.append(Candidate(image, boxes=tuple(boxes), normalized=True))
    return discovery


def discover_import(import_dir: Path, table: Path, task_type: str) -> Discovery:
    """A CSV alone, naming files under the import directory (or absolute paths inside it).

    Paths outside the import directory are rejected, never read.
    """
    root = import_dir.resolve()
    columns = VIDEO_COLUMNS if task_type == "detection" else CLASSIFICATION_COLUMNS
    path_column = columns[0]
    inside_rows, outside, present = [], [], set()
    for row in _read_csv(table, columns):
        target = (root / row[path_column]).resolve()
        if not target.is_relative_to(root):
            outside.append({"file": row[path_column], "reason": "outside the import directory"})
            continue
        row[path_column] = target.relative_to(root).as_posix()
        inside_rows.append(row)
        if target.is_file():
            present.add(row[path_column])
    resolved = table.with_name(f"{table.stem}.resolved.csv")
    with resolved.open("w", newline="") as sink:
        writer = csv.DictWriter(sink, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(inside_rows)
    parse = _videos_with_csv if task_type == "detection" else _images_with_csv
    discovery = parse(root, present, resolved)
    discovery.layout = "import_csv"
    discovery.rejected[:0] = outside
    return discovery
