"""Toy datasets for the dataset tests, made on the spot."""

from __future__ import annotations

import csv
import io
import stat
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def png(color: tuple[int, int, int], size: tuple[int, int] = (24, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def noise_png(seed: int, size: tuple[int, int] = (24, 20)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_zip(path: Path, entries: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return path


def class_folders(
    path: Path,
    classes: int = 3,
    per_class: int = 10,
    corrupt: tuple[str, ...] = (),
    prefix: str = "img",
) -> Path:
    entries: dict[str, bytes | str] = {}
    for label in range(classes):
        for index in range(per_class):
            entries[f"set/class_{label}/{prefix}{index}.png"] = noise_png(label * 1000 + index)
    for name in corrupt:
        entries[name] = png((1, 2, 3))[:40]  # a PNG cut short
    return write_zip(path, entries)


def images_with_metadata(folder: Path) -> tuple[Path, Path]:
    images = {f"pics/{i}.png": noise_png(500 + i) for i in range(8)}
    archive = write_zip(folder / "pics.zip", images)
    table = folder / "labels.csv"
    with table.open("w", newline="") as sink:
        writer = csv.writer(sink)
        writer.writerow(["path", "label"])
        for index in range(8):
            writer.writerow([f"pics/{index}.png", "cat" if index % 2 else "dog"])
        writer.writerow(["pics/missing.png", "dog"])
    return archive, table


def yolo(path: Path) -> Path:
    entries: dict[str, bytes | str] = {"classes.txt": "car\nperson\n"}
    for index in range(6):
        entries[f"images/{index}.png"] = noise_png(900 + index, (40, 30))
        entries[f"labels/{index}.txt"] = f"{index % 2} 0.5 0.5 0.25 0.3\n"
    entries["labels/5.txt"] = "7 0.5 0.5 0.2 0.2\n"  # an unknown class
    return write_zip(path, entries)


def video_rows(rows: list[list[object]]) -> str:
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["video", "frame", "label", "x1", "y1", "x2", "y2"])
    writer.writerows(rows)
    return table.getvalue()


def video(path: Path, rows: list[list[object]] | None = None, frames: int = 12) -> Path:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=6)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in range(frames):
            pixels = np.full((48, 64, 3), frame * 10, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    if rows is None:
        rows = [["clip.mp4", f, "ball" if f % 2 else "box", 5, 5, 30, 30] for f in range(frames)]
    return write_zip(path, {"clip.mp4": buffer.getvalue(), "boxes.csv": video_rows(rows)})


def with_symlink(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a/ok.png", png((9, 9, 9)))
        link = zipfile.ZipInfo("a/link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return path


def bomb(path: Path, unpacked_bytes: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/zeros.png", b"\0" * unpacked_bytes)
    return path
