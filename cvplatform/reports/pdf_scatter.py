"""The scatter chart (accuracy against speed) as a reportlab drawing.

Each point is named by a label set beside it, so no legend is needed; labels move around their
point to keep clear of other points and of labels already set, trying the same places in the
same order every time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from reportlab.graphics.shapes import Circle, Drawing, Line

from cvplatform.reports import palette
from cvplatform.reports.document import Point, ScatterChart
from cvplatform.reports.pdf_charts import (
    LABEL_SIZE,
    TICK_SIZE,
    Axis,
    Plot,
    colour,
    label_string,
    nice_axis,
    text_width,
    value_axis,
)

Box = tuple[float, float, float, float]  # left, bottom, right, top
MARKER_RADIUS = 4.0
# Where a point's label may go, tried in order: right and up, right and down, left, further out.
_LABEL_OFFSETS: tuple[tuple[float, float], ...] = tuple(
    (dx, dy) for dy in (3, -9, 12, -18, 21, -27, 30) for dx in (7, -7)
)


def scatter_chart_drawing(chart: ScatterChart, width: float, height: float = 240) -> Drawing:
    """Points on round-number axes, each with its label beside it.

    Args:
        chart: the points; a point with a tone gets a ring in the tone's colour and its word
            in its label ("... (PASS)").
        width: the drawing's width in points.
        height: the drawing's height in points.

    Returns:
        A :class:`Drawing` that a story can hold as a flowable.
    """
    xs = [point.x for point in chart.points if math.isfinite(point.x)] or [0.0, 1.0]
    ys = [point.y for point in chart.points if math.isfinite(point.y)] or [0.0, 1.0]
    x_axis = _padded_axis(xs)
    plot = Plot(54.0, 34.0, width - 12, height - 10, _padded_axis(ys))
    drawing = Drawing(width, height)
    value_axis(drawing, plot, chart.y_label)
    _x_axis(drawing, plot, x_axis, chart.x_label)

    def x_of(value: float) -> float:
        return plot.left + (value - x_axis.low) / (x_axis.high - x_axis.low) * (
            plot.right - plot.left
        )

    drawn = [p for p in chart.points if math.isfinite(p.x) and math.isfinite(p.y)]
    centres = [(x_of(point.x), plot.y(point.y)) for point in drawn]
    # Every marker is an obstacle from the start, so no label is set over a later point.
    taken: list[Box] = [
        (x - MARKER_RADIUS, y - MARKER_RADIUS, x + MARKER_RADIUS, y + MARKER_RADIUS)
        for x, y in centres
    ]
    fallback = palette.series_colours(point.label for point in drawn)
    for point, (x, y) in zip(drawn, centres, strict=True):
        _marker(drawing, point, x, y, _engine_colour(point.label) or fallback[point.label])
        word = palette.tone_word(point.tone)
        text = f"{point.label} ({word})" if word else point.label
        label_x, label_y, anchor = _label_place(plot, taken, x, y, text_width(text))
        ink = palette.TONE_TEXT_COLOURS[point.tone] if word else palette.INK
        drawing.add(label_string(label_x, label_y, text, anchor=anchor, ink=ink))
    return drawing


def _x_axis(drawing: Drawing, plot: Plot, axis: Axis, name: str) -> None:
    ink = colour(palette.INK)
    drawing.add(Line(plot.left, plot.bottom, plot.right, plot.bottom, strokeColor=ink))
    span = axis.high - axis.low
    for tick in axis.ticks:
        x = plot.left + (tick - axis.low) / span * (plot.right - plot.left)
        drawing.add(Line(x, plot.bottom, x, plot.bottom - 3, strokeColor=ink))
        drawing.add(
            label_string(
                x, plot.bottom - 11, axis.label(tick), TICK_SIZE, "middle", palette.MUTED_INK
            )
        )
    drawing.add(label_string((plot.left + plot.right) / 2, 6, name, anchor="middle"))


def _marker(drawing: Drawing, point: Point, x: float, y: float, fill: str) -> None:
    if point.tone == "neutral":
        ring, ring_width = "#FFFFFF", 0.8
    else:
        ring, ring_width = palette.TONE_TEXT_COLOURS[point.tone], 2.0
    drawing.add(
        Circle(
            x,
            y,
            MARKER_RADIUS,
            fillColor=colour(fill),
            strokeColor=colour(ring),
            strokeWidth=ring_width,
        )
    )


def _engine_colour(label: str) -> str | None:
    """The colour of the engine a point's label starts with ("onnxruntime_cpu_int8 b8")."""
    names = {**{key: key for key in palette.ENGINE_COLOURS}, **palette.ENGINE_LABELS}
    # Longest first: "onnxruntime_cpu_int8 ..." must not be taken for "onnxruntime_cpu".
    for name in sorted(names, key=lambda name: (-len(name), name)):
        if label.startswith(name):
            return palette.ENGINE_COLOURS[names[name]]
    return None


def _padded_axis(values: Sequence[float]) -> Axis:
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or abs(high) * 0.1 or 1.0
    return nice_axis(low - pad, high + pad)


def _label_place(
    plot: Plot, taken: list[Box], x: float, y: float, width: float
) -> tuple[float, float, str]:
    """The first offset whose box stays in the plot and clear of what is already there; the box
    is then taken too."""
    choices: list[tuple[float, float, str, Box]] = []
    for dx, dy in _LABEL_OFFSETS:
        left = x + dx if dx > 0 else x + dx - width
        box = (left, y + dy - 2, left + width, y + dy + LABEL_SIZE)
        choices.append((x + dx, y + dy, "start" if dx > 0 else "end", box))
    inside = [choice for choice in choices if _within(choice[3], plot)] or choices
    # The first place clear of everything; where none is, the one that covers least.
    label_x, label_y, anchor, box = min(
        inside, key=lambda choice: sum(_overlap(choice[3], other) for other in taken)
    )
    taken.append(box)
    return label_x, label_y, anchor


def _within(box: Box, plot: Plot) -> bool:
    # Labels may reach a little past the plot's right and top edges, into the drawing's margin.
    return (
        box[0] >= plot.left
        and box[2] <= plot.right + 8
        and box[1] >= plot.bottom
        and box[3] <= plot.top + 6
    )


def _overlap(a: Box, b: Box) -> float:
    """The area two boxes share."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
