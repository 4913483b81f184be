"""Every sample checked for real: images decoded, videos probed, labels and boxes checked against
what the files hold. Works on any slice of the candidates, so that slices run in parallel."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from PIL import Image

from actors.datasets.layouts import VIDEO_EXTENSIONS, Candidate
from cvplatform.scrub import ServerPath, scrub_paths

# A decompression bomb is refused (PIL warns past this many pixels; we make it an error).
MAX_IMAGE_PIXELS = 64 * 1024 * 1024
REJECTED_SHOWN = 1000
_PIXEL_TOLERANCE = 0.5


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def image_size(path: Path) -> tuple[int, int]:
    """Decode the whole image; raises on anything that is not a sound image."""
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:  # verify() leaves the image unusable: open it again
            image.load()
            return image.size


def video_probe(path: Path) -> tuple[int, int, int, float]:
    """(width, height, frame count, frames per second) of the first video stream."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        frames = sum(1 for packet in container.demux(stream) if packet.size)
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        return stream.codec_context.width, stream.codec_context.height, frames, rate


def _pixel_boxes(
    candidate: Candidate, width: int, height: int
) -> list[tuple[str, float, float, float, float]]:
    if not candidate.normalized:
        return list(candidate.boxes)
    return [
        (name, x1 * width, y1 * height, x2 * width, y2 * height)
        for name, x1, y1, x2, y2 in candidate.boxes
    ]


def _outside(box: tuple[str, float, float, float, float], width: int, height: int) -> bool:
    _, x1, y1, x2, y2 = box
    slack = _PIXEL_TOLERANCE
    return (
        x1 < -slack
        or y1 < -slack
        or x2 > width + slack
        or y2 > height + slack
        or x1 >= x2
        or y1 >= y2
    )


def check_candidates(
    root: Path, candidates: list[Candidate]
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Check a slice of candidates; returns (manifest entries, rejected files with reasons)."""
    by_file: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        by_file[candidate.file].append(candidate)
    entries: list[dict[str, Any]] = []
    rejected: list[dict[str, str]] = []
    for file, claims in by_file.items():
        path = root / file
        try:
            if Path(file).suffix.lower() in VIDEO_EXTENSIONS:
                width, height, frames, rate = video_probe(path)
            else:
                (width, height), frames, rate = image_size(path), 1, 0.0
            digest, size = _sha256(path), path.stat().st_size
        except Exception as error:
            kind = "video" if Path(file).suffix.lower() in VIDEO_EXTENSIONS else "image"
            # Decoders name the file by its full path; the user knows it by its dataset path.
            detail = scrub_paths(str(error), [ServerPath(str(root))])[:200]
            rejected.append({"file": file, "reason": f"corrupt {kind}: {detail}"})
            continue
        for claim in claims:
            if claim.frame is not None and claim.frame >= frames:
                rejected.append(
                    {
                        "file": claim.sample_id,
                        "reason": f"frame {claim.frame} is past the video's {frames} frames",
                    }
                )
                continue
            boxes = _pixel_boxes(claim, width, height)
            outside = [box for box in boxes if _outside(box, width, height)]
            if outside:
                corners = [round(v, 1) for v in outside[0][1:]]
                reason = f"box {corners} outside the frame ({width}x{height})"
                rejected.append({"file": claim.sample_id, "reason": reason})
                continue
            entries.append(
                {
                    "id": claim.sample_id,
                    "file": file,
                    "frame": claim.frame,
                    "label": claim.label,
                    "boxes": [[name, *(round(v, 2) for v in coords)] for name, *coords in boxes],
                    "width": width,
                    "height": height,
                    "sha256": digest,
                    "bytes": size,
                    "fps": rate,
                }
            )
    return entries, rejected


def summarize(
    entries: list[dict[str, Any]],
    rejected: list[dict[str, str]],
    layout: str,
    class_names: list[str] | None = None,
) -> dict[str, Any]:
    """What validation records: counts, classes, sizes, the content hash, the rejected files.

    Class indices follow ``class_names`` when given (a YOLO names file), else the sorted names
    of the classes that have a sample. Each entry's ``label`` / box class becomes its index.
    """
    if class_names is None:
        names = {entry["label"] for entry in entries if entry["label"] is not None}
        names |= {box[0] for entry in entries for box in entry["boxes"]}
        class_names = sorted(names)
    index = {name: position for position, name in enumerate(class_names)}
    counts: Counter[str] = Counter()
    for entry in entries:
        if entry["label"] is not None:
            counts[entry["label"]] += 1
            entry["label"] = index[entry["label"]]
        for box in entry["boxes"]:
            counts[box[0]] += 1
            box[0] = index[box[0]]
    entries.sort(key=lambda entry: entry["id"])
    lines = sorted(
        f"{e['sha256']}|{e['frame']}|{e['label']}|{json.dumps(e['boxes'])}" for e in entries
    )
    sizes = {(e["width"], e["height"]) for e in entries}
    files = {e["file"]: e["bytes"] for e in entries}
    return {
        "layout": layout,
        "num_samples": len(entries),
        "num_classes": len(class_names),
        "class_names": class_names,
        "total_bytes": sum(files.values()),
        # Of the contents: renaming files does not change it, changing a pixel or a label does.
        "content_hash": hashlib.sha256("\n".join(lines).encode()).hexdigest(),
        "reason": None if entries else _why_empty(rejected),
        "details": {
            "class_counts": {name: counts.get(name, 0) for name in class_names},
            "counts_are": "boxes" if any(e["boxes"] for e in entries) else "images",
            "image_size_range": {
                "min": [min(w for w, _ in sizes), min(h for _, h in sizes)] if sizes else None,
                "max": [max(w for w, _ in sizes), max(h for _, h in sizes)] if sizes else None,
            },
            "files": len(files),
            "rejected": rejected[:REJECTED_SHOWN],
            "rejected_count": len(rejected),
        },
    }


def _why_empty(rejected: list[dict[str, str]]) -> str:
    if not rejected:
        return "no usable sample: the layout names no samples"
    first = rejected[0]
    return f"no usable sample ({len(rejected)} rejected; first: {first['file']}: {first['reason']})"
