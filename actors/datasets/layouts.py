"""Which layout a dataset has, and the samples it claims (before any file is decoded).

Classification: ``class_name/image`` folders, or images with a ``path,label`` CSV.
Detection: videos with a ``video,frame,label,x1,y1,x2,y2`` CSV (pixels), or images with YOLO label
files (``class cx cy w h``, normalized, in a ``labels`` folder) and a class-names file.

A path a CSV lists is resolved by :class:`~actors.datasets.paths.PathResolver` (relative to the
CSV, to the root, or by a unique file name); rows listing a file that cannot be used are rejected
once per file, with their row numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath

from actors.datasets.paths import PathResolver, Resolution, UnusableListings, listing
from cvplatform.errors import InvalidInput

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov"})
CLASS_NAME_FILES = ("classes.txt", "names.txt", "obj.names")
CLASSIFICATION_COLUMNS = ("path", "label")
VIDEO_COLUMNS = ("video", "frame", "label", "x1", "y1", "x2", "y2")

# (class name, x1, y1, x2, y2); pixels, or fractions of the image when `normalized` is set.
Box = tuple[str, float, float, float, float]
# A CSV's rows with their line numbers (the header is line 1).
Rows = list[tuple[int, dict[str, str]]]
Resolve = Callable[[str], Resolution]


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


def _read_csv(path: Path, required: Iterable[str]) -> Rows:
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
            (
                number,
                {key.strip().lower(): (value or "").strip() for key, value in row.items() if key},
            )
            for number, row in enumerate(reader, start=2)
        ]


def _is_label_file(name: str) -> bool:
    return name.endswith(".txt") and "labels" in name.split("/")[:-1]


def _folder_of(table: Path, root: Path) -> str:
    """The CSV's folder relative to the root; "" for the root or a CSV uploaded beside the ZIP."""
    if not table.is_relative_to(root):
        return ""
    folder = table.parent.relative_to(root).as_posix()
    return "" if folder == "." else folder


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
    label_files = [name for name in files if _is_label_file(name)]
    table = metadata_csv or (root / csvs[0] if len(csvs) == 1 else None)
    resolver = PathResolver(files)
    if videos:
        _expect(task_type, "detection", "videos with box annotations")
        if table is None:
            raise InvalidInput("videos need a CSV video,frame,label,x1,y1,x2,y2 beside them")
        resolve = partial(resolver.resolve, folder=_folder_of(table, root), prefix=path_prefix)
        return _videos_with_csv(_read_csv(table, VIDEO_COLUMNS), table.name, resolve)
    if label_files:
        _expect(task_type, "detection", "images with YOLO label files")
        return _yolo_images(root, images, resolver, PathResolver(label_files))
    if table is not None:
        _expect(task_type, "classification", "images with a path,label CSV")
        resolve = partial(resolver.resolve, folder=_folder_of(table, root), prefix=path_prefix)
        return _images_with_csv(_read_csv(table, CLASSIFICATION_COLUMNS), table.name, resolve)
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


def _images_with_csv(rows: Rows, table: str, resolve: Resolve) -> Discovery:
    discovery = Discovery("images_csv", [], [])
    unusable = UnusableListings(table)
    labelled: dict[str, tuple[str, int]] = {}  # file: (label, row): a file is one sample
    for number, row in rows:
        listed, label = row["path"], row["label"]
        if not listed or not label:
            discovery.reject(f"{table}:{number}", "empty path or label")
            continue
        found = resolve(listed)
        if found.file is None or _suffix(found.file) not in IMAGE_EXTENSIONS:
            unusable.add(listed, found.why_not("not an image here"), number)
        elif found.file in labelled:
            first, first_row = labelled[found.file]
            if first != label:
                reason = f"{found.file} has the label {first!r} from row {first_row} already"
                discovery.reject(f"{table}:{number}", reason)
        else:
            labelled[found.file] = (label, number)
            discovery.candidates.append(Candidate(found.file, label=label))
    discovery.rejected.extend(unusable.rejects())
    discovery.class_names = sorted({c.label for c in discovery.candidates if c.label})
    return discovery


def _number(row: dict[str, str], column: str) -> float:
    try:
        return float(row[column])
    except ValueError:
        raise ValueError(f"{column}={row[column]!r} is not a number") from None


def _videos_with_csv(rows: Rows, table: str, resolve: Resolve) -> Discovery:
    discovery = Discovery("videos_csv", [], [])
    unusable = UnusableListings(table)
    frames: dict[tuple[str, int], list[Box]] = {}
    for number, row in rows:
        where = f"{table}:{number}"
        try:
            frame = int(row["frame"])
            x1, y1, x2, y2 = (_number(row, c) for c in ("x1", "y1", "x2", "y2"))
            box: Box = (row["label"], x1, y1, x2, y2)
        except ValueError as error:
            discovery.reject(where, f"bad row: {error}")
            continue
        found = resolve(row["video"]) if row["video"] else None
        if found is None:
            discovery.reject(where, "an empty video path")
        elif found.file is None or _suffix(found.file) not in VIDEO_EXTENSIONS:
            unusable.add(row["video"], found.why_not("not in the dataset"), number)
        elif frame < 0 or not box[0]:
            discovery.reject(where, "a negative frame number or an empty label")
        elif not (box[1] < box[3] and box[2] < box[4]):
            discovery.reject(where, f"box {box[1:]} has no area (needs x1 < x2 and y1 < y2)")
        else:
            frames.setdefault((found.file, frame), []).append(box)
    discovery.rejected.extend(unusable.rejects())
    discovery.candidates = [
        Candidate(video, frame=frame, boxes=tuple(boxes))
        for (video, frame), boxes in sorted(frames.items())
    ]
    discovery.class_names = sorted({box[0] for c in discovery.candidates for box in c.boxes})
    return discovery


def _class_names_file(root: Path, files: PathResolver) -> list[str]:
    """At the root, else the one file of that name anywhere (an export's split folder)."""
    names = (*CLASS_NAME_FILES, "data.yaml")
    found = next((name for name in names if name in files.files), None)
    found = found or next((f for f in (files.named(name).file for name in names) if f), None)
    if found is None:
        raise InvalidInput(
            f"YOLO labels need a class-names file: one of {', '.join(CLASS_NAME_FILES)} or "
            "data.yaml"
        )
    text = (root / found).read_text()
    if not found.endswith(".yaml"):
        return [line.strip() for line in text.splitlines() if line.strip()]
    import yaml

    names_field = (yaml.safe_load(text) or {}).get("names")
    if isinstance(names_field, dict):
        return [str(names_field[key]) for key in sorted(names_field)]
    if isinstance(names_field, list):
        return [str(name) for name in names_field]
    raise InvalidInput(f"{found} has no list of class names under 'names'")


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


def _label_file(image: str, labels: PathResolver) -> tuple[Resolution, str]:
    """An image's label file, and where it is expected first: its last ``images`` folder turned
    ``labels`` (Ultralytics: ``images/train/x.jpg`` -> ``labels/train/x.txt``), then
    ``labels/x.txt``, then the one ``x.txt`` under any ``labels`` folder."""
    parts = image.split("/")
    name = f"{PurePosixPath(image).stem}.txt"
    expected = []
    if "images" in parts[:-1]:
        last = len(parts) - 2 - parts[-2::-1].index("images")
        expected.append("/".join([*parts[:last], "labels", *parts[last + 1 : -1], name]))
    expected.append(f"labels/{name}")
    for path in expected:
        if path in labels.files:
            return Resolution(path), expected[0]
    return labels.named(name), expected[0]


def _yolo_images(
    root: Path, images: list[str], files: PathResolver, labels: PathResolver
) -> Discovery:
    class_names = _class_names_file(root, files)
    discovery = Discovery("yolo_images", [], class_names)
    for image in images:
        found, expected = _label_file(image, labels)
        if found.problem == "ambiguous":
            reason = f"{len(found.matches)} label files fit it ({listing(found.matches)}); "
            discovery.reject(image, reason + f"put its own at {expected}")
            continue
        if found.file is None:
            discovery.reject(image, f"no label file {expected}")
            continue
        try:
            boxes = _yolo_boxes((root / found.file).read_text(), class_names)
        except ValueError as error:
            # A half-understood label file would teach wrong negatives: leave the image out.
            discovery.reject(image, f"{found.file} {error}")
            continue
        discovery.candidates.append(Candidate(image, boxes=tuple(boxes), normalized=True))
    return discovery


def discover_import(import_dir: Path, table: Path, task_type: str) -> Discovery:
    """A CSV alone, naming files under the import directory (or absolute paths inside it).

    Paths outside the import directory are rejected, never read. A bare file name is not looked
    for: the directory is not the dataset's own.
    """
    root = import_dir.resolve()
    columns = VIDEO_COLUMNS if task_type == "detection" else CLASSIFICATION_COLUMNS
    path_column = columns[0]
    inside_rows: Rows = []
    outside, present = [], set()
    for number, row in _read_csv(table, columns):
        if row[path_column]:
            target = (root / row[path_column]).resolve()
            if not target.is_relative_to(root):
                outside.append({"file": row[path_column], "reason": "outside the import directory"})
                continue
            row[path_column] = target.relative_to(root).as_posix()
            if target.is_file():
                present.add(row[path_column])
        inside_rows.append((number, row))
    parse = _videos_with_csv if task_type == "detection" else _images_with_csv
    discovery = parse(inside_rows, table.name, PathResolver(present, by_name=False).resolve)
    discovery.layout = "import_csv"
    discovery.rejected[:0] = outside
    return discovery
