"""Chart arithmetic that does not depend on the output format: round axis ticks, number labels,
text widths and label placement. Shared by the SVG (HTML) and the vector (PDF) charts so both
draw the same axes.

Everything is a pure function of its arguments: labels land in the same place on every run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MINUS = "\u2212"  # a typographic minus: as wide as a plus, unlike the hyphen

# Average advance of a glyph in a sans-serif face, in ems. No font metrics are available to a
# pure function, so widths are estimates; every use leaves some slack.
_EM_PER_CHAR = 0.62  # DejaVu Sans (Linux' usual system-ui) is wider than Helvetica
_NARROW = set("il.,:;|!'1 ()[]")
_WIDE = set("mwMW@%")


def nice_step(span: float, max_ticks: int) -> float:
    """The smallest step of 1, 2 or 5 times a power of ten that covers ``span`` in at most
    ``max_ticks - 1`` intervals."""
    raw = span / max(1, max_ticks - 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1.0, 2.0, 5.0, 10.0):
        if multiple * magnitude >= raw * (1 - 1e-9):
            return multiple * magnitude
    return 10.0 * magnitude  # unreachable: 10 * magnitude always covers raw


def nice_ticks(low: float, high: float, max_ticks: int = 6) -> list[float]:
    """Round ticks (steps of 1, 2 or 5 times 10^k) from at or below ``low`` to at or above ``high``.

    Args:
        low: the smallest value the axis must show.
        high: the largest value the axis must show.
        max_ticks: at most this many ticks (about; rounding the ends outward may add one).

    Returns:
        The ticks, ascending; the first is the axis' start and the last its end.

    Raises:
        ValueError: when either end is not a finite number.
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"axis ends must be finite, got {low!r} and {high!r}")
    low, high = min(low, high), max(low, high)
    if high == low:  # one value: give it room either side
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    step = nice_step(high - low, max_ticks)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    decimals = step_decimals(step) + 1  # one more than shown, to remove float noise only
    return [round(index * step, decimals) for index in range(first, last + 1)]


def step_decimals(step: float) -> int:
    """How many decimals a tick of this step needs (0.5 → 1, 0.02 → 2, 20 → 0)."""
    return max(0, -math.floor(math.log10(step) + 1e-9))


def format_number(value: float, decimals: int) -> str:
    """A fixed-point number with thousands separators and a typographic minus; never minus zero."""
    text = f"{abs(value):,.{decimals}f}"
    negative = value < 0 and any(digit not in "0.," for digit in text)
    return f"{MINUS}{text}" if negative else text


def format_tick(value: float, ticks: Sequence[float]) -> str:
    """A tick's label, with as many decimals as the axis' step needs."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    return format_number(value, step_decimals(step))


def format_value(value: float) -> str:
    """A data value's label: three significant digits, whole numbers from 100 up."""
    size = abs(value)
    if size >= 100 or size == 0:
        decimals = 0
    elif size >= 1:
        decimals = 2 - math.floor(math.log10(size))
    else:
        decimals = min(4, 2 - math.floor(math.log10(size)))
    return format_number(value, decimals)


def text_width(text: str, size: float, bold: bool = False) -> float:
    """An estimate of the width of ``text`` set at ``size`` in a sans-serif face."""
    ems = sum(0.3 if char in _NARROW else 0.85 if char in _WIDE else _EM_PER_CHAR for char in text)
    return ems * size * (1.12 if bold else 1.0)


def wrap_words(text: str, size: float, max_width: float, max_lines: int = 3) -> list[str]:
    """Break ``text`` at spaces into lines no wider than ``max_width`` (a word longer than the
    width keeps its own line); past ``max_lines`` the last line ends in an ellipsis."""
    lines: list[str] = []
    for word in text.split():
        if lines and text_width(f"{lines[-1]} {word}", size) <= max_width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], f"{lines[max_lines - 1]}\u2026"]
    return lines or [""]


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in drawing units, y growing downward (as in SVG)."""

    left: float
    top: float
    right: float
    bottom: float

    def overlaps(self, other: Box, pad: float = 0.0) -> bool:
        return not (
            self.right + pad <= other.left
            or other.right + pad <= self.left
            or self.bottom + pad <= other.top
            or other.bottom + pad <= self.top
        )

    def inside(self, bounds: Box) -> bool:
        return (
            self.left >= bounds.left
            and self.right <= bounds.right
            and self.top >= bounds.top
            and self.bottom <= bounds.bottom
        )


@dataclass(frozen=True)
class LabelPlacement:
    box: Box
    displaced: bool  # further from its point than the nearest ring: draw a leader line


# Directions tried around a point, in order: right, left, above, below, then the diagonals.
_DIRECTIONS: tuple[tuple[float, float], ...] = (
    (1, 0),
    (-1, 0),
    (0, -1),
    (0, 1),
    (0.7, -0.7),
    (0.7, 0.7),
    (-0.7, -0.7),
    (-0.7, 0.7),
)
_RINGS = 6


def _candidate(x: float, y: float, width: float, height: float, distance: float,
               direction: tuple[float, float]) -> Box:  # fmt: skip
    dx, dy = direction
    # The box's near edge or corner sits ``distance`` from the point in that direction.
    left = x + dx * distance - (width if dx < 0 else 0 if dx > 0 else width / 2)
    top = y + dy * distance - (height if dy < 0 else 0 if dy > 0 else height / 2)
    return Box(left, top, left + width, top + height)


def place_labels(
    anchors: Sequence[tuple[float, float]],
    sizes: Sequence[tuple[float, float]],
    bounds: Box,
    obstacles: Iterable[Box] = (),
    gap: float = 7.0,
) -> list[LabelPlacement]:
    """Place one label per point so that no two labels overlap, nor a label and an obstacle.

    Greedy in the points' order: each label takes the first free spot among eight directions
    around its point, on rings further and further out. When none is free, it takes the nearest
    spot inside ``bounds`` and may overlap (rare: only for very crowded charts).

    Args:
        anchors: the points, in drawing units.
        sizes: each label's (width, height).
        bounds: where labels may go.
        obstacles: what labels must not cover (the point markers, a legend).
        gap: the distance of the first ring from its point.

    Returns:
        One placement per anchor, in the anchors' order.
    """
    taken = list(obstacles)
    placements: list[LabelPlacement] = []
    for (x, y), (width, height) in zip(anchors, sizes, strict=True):
        placement = _first_free(x, y, width, height, bounds, taken, gap)
        taken.append(placement.box)
        placements.append(placement)
    return placements


def _first_free(x: float, y: float, width: float, height: float, bounds: Box,
                taken: Sequence[Box], gap: float) -> LabelPlacement:  # fmt: skip
    for ring in range(_RINGS):
        distance = gap + ring * (height + 2)
        for direction in _DIRECTIONS:
            box = _candidate(x, y, width, height, distance, direction)
            if box.inside(bounds) and not any(box.overlaps(other, 1.0) for other in taken):
                return LabelPlacement(box, displaced=ring > 0)
    return LabelPlacement(_clamp(_candidate(x, y, width, height, gap, (1, 0)), bounds), False)


def _clamp(box: Box, bounds: Box) -> Box:
    width, height = box.right - box.left, box.bottom - box.top
    left = min(max(box.left, bounds.left), bounds.right - width)
    top = min(max(box.top, bounds.top), bounds.bottom - height)
    return Box(left, top, left + width, top + height)
