"""The colours every report renderer shares, so the HTML and the PDF look alike.

All colours come from the Okabe-Ito palette (Okabe & Ito, 2008), chosen because its eight colours
stay apart for the common kinds of colour blindness. Colour never carries meaning alone: tones
are always also said in words (:data:`TONE_WORDS`) and series are named in a legend.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from cvplatform.reports.document import Tone

# Okabe-Ito, as hex "#RRGGBB".
BLACK: Final = "#000000"
ORANGE: Final = "#E69F00"
SKY_BLUE: Final = "#56B4E9"
BLUISH_GREEN: Final = "#009E73"
YELLOW: Final = "#F0E442"
BLUE: Final = "#0072B2"
VERMILLION: Final = "#D55E00"
REDDISH_PURPLE: Final = "#CC79A7"

# Each engine keeps its colour in every chart of every report, whichever engines a run has.
ENGINE_COLOURS: Final[dict[str, str]] = {
    "onnxruntime_cpu": BLUE,
    "onnxruntime_cpu_int8": ORANGE,
    "onnxruntime_cuda": BLUISH_GREEN,
    "tensorrt_fp16": REDDISH_PURPLE,
}

# How people read each engine's name (cvplatform.engines' ``label``), for legends.
ENGINE_NAMES: Final[dict[str, str]] = {
    "onnxruntime_cpu": "ONNX Runtime CPU FP32",
    "onnxruntime_cpu_int8": "ONNX Runtime CPU INT8",
    "onnxruntime_cuda": "ONNX Runtime CUDA",
    "tensorrt_fp16": "TensorRT FP16",
}

# The engines' human labels (cvplatform.engines' ``label``): a chart may name bars either way.
ENGINE_LABELS: Final[dict[str, str]] = {
    "ONNX Runtime CPU FP32": "onnxruntime_cpu",
    "ONNX Runtime CPU INT8": "onnxruntime_cpu_int8",
    "ONNX Runtime CUDA": "onnxruntime_cuda",
    "TensorRT FP16": "tensorrt_fp16",
    # The short names charts use for candidates ("INT8 CPU, batch 8"):
    "FP32 CPU": "onnxruntime_cpu",
    "INT8 CPU": "onnxruntime_cpu_int8",
    "CUDA": "onnxruntime_cuda",
}

# For series that are not engines (constraints, batch sizes), in order of first appearance.
# Yellow comes last: on white it is the weakest of the eight.
FALLBACK_COLOURS: Final[tuple[str, ...]] = (
    SKY_BLUE,
    VERMILLION,
    BLUISH_GREEN,
    REDDISH_PURPLE,
    BLUE,
    ORANGE,
    BLACK,
    YELLOW,
)

TONE_COLOURS: Final[dict[Tone, str]] = {
    "good": BLUISH_GREEN,
    "bad": VERMILLION,
    "warning": ORANGE,
    "neutral": "#6B7280",
}

# A darker shade of each tone for text on a light background (contrast of 4.5:1 or more on white).
TONE_TEXT_COLOURS: Final[dict[Tone, str]] = {
    "good": "#00704F",
    "bad": "#A84300",
    "warning": "#8A5A00",
    "neutral": "#374151",
}

# A pale tint of each tone for a badge's or a table cell's background.
TONE_BACKGROUNDS: Final[dict[Tone, str]] = {
    "good": "#E0F3EC",
    "bad": "#FBE7DA",
    "warning": "#FDF1D6",
    "neutral": "#F1F2F4",
}

TONE_WORDS: Final[dict[Tone, str]] = {
    "good": "PASS",
    "bad": "FAIL",
    "warning": "WARN",
    "neutral": "",
}

# Words that already say a cell's tone: where the text says "fail" or "unavailable", no "FAIL" is
# put in front of it (both renderers ask here, so they badge the same cells).
_TONE_SYNONYMS: Final[dict[Tone, tuple[str, ...]]] = {
    "good": ("pass", "yes", "selected", "ok", "met"),
    "bad": ("fail", "no", "removed", "unavailable", "error"),
    "warning": ("warn", "noise", "caution"),
    "neutral": (),
}


def says_tone(text: str, tone: Tone) -> bool:
    """Whether ``text`` already says ``tone`` in words."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    return any(word in words for word in _TONE_SYNONYMS[tone])


# Chart furniture.
INK: Final = "#1F2933"  # text and axes
MUTED_INK: Final = "#52606D"  # secondary text: notes, tick labels
GRID: Final = "#E4E7EB"
THRESHOLD: Final = BLACK  # constraint lines are dashed, so they read apart from any bar


def engine_key(label: str) -> str | None:
    """The engine a series label names, by id or human label; ``None`` when it names none."""
    if label in ENGINE_COLOURS:
        return label
    return ENGINE_LABELS.get(label)


def engine_in(label: str) -> str | None:
    """The engine a label names or mentions ("onnxruntime_cpu_int8, batch 8"); the longest
    name wins, so INT8 is not taken for FP32. ``None`` when it mentions none."""
    exact = engine_key(label)
    if exact is not None:
        return exact
    names = sorted([*ENGINE_COLOURS, *ENGINE_LABELS], key=lambda name: (-len(name), name))
    mentioned = next((name for name in names if name in label), None)
    return None if mentioned is None else engine_key(mentioned)


def series_colours(labels: Iterable[str]) -> dict[str, str]:
    """A colour for each distinct label, deterministic in the labels' order.

    Engines get their fixed colour; other labels take the fallback colours in order of first
    appearance, skipping those an engine in the same chart already uses, and wrap around past eight.

    Args:
        labels: series labels, repeats allowed (bars of the same engine in several groups).

    Returns:
        Label → "#RRGGBB", in order of first appearance.
    """
    distinct = list(dict.fromkeys(labels))
    taken = {ENGINE_COLOURS[key] for key in map(engine_key, distinct) if key is not None}
    free = [colour for colour in FALLBACK_COLOURS if colour not in taken] or list(FALLBACK_COLOURS)
    colours: dict[str, str] = {}
    next_free = 0
    for label in distinct:
        key = engine_key(label)
        if key is not None:
            colours[label] = ENGINE_COLOURS[key]
        else:
            colours[label] = free[next_free % len(free)]
            next_free += 1
    return colours


def hex_to_rgb(colour: str) -> tuple[float, float, float]:
    """ "#RRGGBB" as three floats in 0..1 (what reportlab's ``Color`` takes)."""
    digits = colour.lstrip("#")
    red, green, blue = (int(digits[index : index + 2], 16) / 255 for index in (0, 2, 4))
    return red, green, blue


def tone_word(tone: Tone) -> str:
    """The word that says what a tone's colour says ("" for neutral)."""
    return TONE_WORDS[tone]
