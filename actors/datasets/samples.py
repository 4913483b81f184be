"""The two sample datasets, built from what this machine has (nothing is downloaded):

- ``digits``: scikit-learn's bundled handwritten digits (1,797 real 8x8 images, 10 classes),
  upscaled to 32x32 RGB PNGs in class folders;
- ``shapes-video``: a generated video of moving shapes with their exact boxes (synthetic).
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class SampleDataset:
    key: str
    name: str
    description: str
    task_type: str
    filename: str


SAMPLES: dict[str, SampleDataset] = {
    sample.key: sample
    for sample in (
        SampleDataset(
            "digits",
            "digits",
            "scikit-learn's handwritten digits: 1,797 real 8x8 scans of 0-9, upscaled to 32x32 RGB",
            "classification",
            "digits.zip",
        ),
        SampleDataset(
            "shapes-video",
            "shapes-video",
            "Synthetic: a generated video of a moving circle, square and triangle with exact boxes",
            "detection",
            "shapes-video.zip",
        ),
    )
}


def build_digits(path: Path) -> Path:
    from sklearn.datasets import load_digits

    digits = load_digits()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for index, (pixels, target) in enumerate(zip(digits.images, digits.target, strict=True)):
            gray = np.clip(pixels * 255.0 / 16.0, 0, 255).astype(np.uint8)
            image = Image.fromarray(gray).resize((32, 32), Image.Resampling.BILINEAR).convert("RGB")
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            archive.writestr(f"digits/{target}/{index:04d}.png", buffer.getvalue())
    return path


_WIDTH, _HEIGHT, _FPS, _FRAMES = 160, 120, 8, 96
_SHAPES = ("circle", "square", "triangle")


def _shape_boxes(frame: int) -> list[tuple[str, int, int, int, int]]:
    """Where each shape is in a frame: three shapes on their own straight, bouncing paths."""
    boxes = []
    for number, shape in enumerate(_SHAPES):
        size = 18 + 6 * number
        span_x, span_y = _WIDTH - size, _HEIGHT - size
        x = abs((frame * (3 + number) + 40 * number) % (2 * span_x) - span_x)
        y = abs((frame * (2 + number) + 25 * number) % (2 * span_y) - span_y)
        boxes.append((shape, x, y, x + size, y + size))
    return boxes


def _draw(frame: int) -> np.ndarray:
    from PIL import ImageDraw

    image = Image.new("RGB", (_WIDTH, _HEIGHT), (30, 30, 40))
    draw = ImageDraw.Draw(image)
    colors = {"circle": (230, 80, 60), "square": (60, 200, 90), "triangle": (70, 120, 240)}
    for shape, x1, y1, x2, y2 in _shape_boxes(frame):
        if shape == "circle":
            draw.ellipse((x1, y1, x2 - 1, y2 - 1), fill=colors[shape])
        elif shape == "square":
            draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=colors[shape])
        else:
            draw.polygon([((x1 + x2) // 2, y1), (x1, y2 - 1), (x2 - 1, y2 - 1)], fill=colors[shape])
    return np.asarray(image)


def build_shapes_video(path: Path) -> Path:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=_FPS)
        stream.width, stream.height, stream.pix_fmt = _WIDTH, _HEIGHT, "yuv420p"
        stream.bit_rate = 2_000_000
        for frame in range(_FRAMES):
            video_frame = av.VideoFrame.from_ndarray(_draw(frame), format="rgb24")
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["video", "frame", "label", "x1", "y1", "x2", "y2"])
    for frame in range(_FRAMES):
        for shape, x1, y1, x2, y2 in _shape_boxes(frame):
            writer.writerow(["shapes.mp4", frame, shape, x1, y1, x2, y2])
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("shapes.mp4", buffer.getvalue())
        archive.writestr("annotations.csv", table.getvalue())
    return path


BUILDERS = {"digits": build_digits, "shapes-video": build_shapes_video}


def build_sample(key: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return BUILDERS[key](folder / SAMPLES[key].filename)
