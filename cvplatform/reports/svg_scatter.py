"""Scatter charts as SVG (accuracy against speed): every point labelled, no two labels on top
of each other, the tone of a point said by its shape and a word as well as by colour."""

from __future__ import annotations

import math
from collections.abc import Sequence

from cvplatform.reports.chart_layout import (
    Box,
    format_tick,
    format_value,
    nice_ticks,
    place_labels,
    text_width,
)
from cvplatform.reports.document import Point, ScatterChart
from cvplatform.reports.palette import (
    BLUE,
    ENGINE_COLOURS,
    ENGINE_NAMES,
    GRID,
    INK,
    MUTED_INK,
    TONE_TEXT_COLOURS,
    TONE_WORDS,
    engine_in,
)
from cvplatform.reports.svg_axes import (
    HALO,
    LABEL_SIZE,
    MARGIN,
    POINT_SIZE,
    TICK_SIZE,
    TONE_MARKERS,
    ValueAxis,
    draw_frame,
    draw_value_gridlines,
    draw_vertical_label,
    finish_empty,
    plot_left,
    tick_count,
)
from cvplatform.reports.svg_primitives import LegendEntry, SvgCanvas, draw_marker


def scatter_chart_svg(chart: ScatterChart, width: int, height: int) -> str:
    """The chart as an ``<svg>`` element; points with a non-finite coordinate are left out."""
    canvas = SvgCanvas(width, height, chart.title)
    points = [p for p in chart.points if math.isfinite(p.x) and math.isfinite(p.y)]
    top = draw_frame(canvas, chart.title, _legend(points))
    if not points:
        return finish_empty(canvas, top)
    bottom = height - 44
    y_axis = _axis([p.y for p in points], bottom, top, tick_count(bottom - top, 40))
    left = plot_left(y_axis.ticks)
    right = width - MARGIN - 4
    x_axis = _axis([p.x for p in points], left, right, tick_count(right - left, 100))
    draw_value_gridlines(canvas, y_axis, left, right)
    for tick in x_axis.ticks:
        x = x_axis.at(tick)
        canvas.line(x, top, x, bottom, stroke=GRID, **{"stroke-width": 1.0})
        label = format_tick(tick, x_axis.ticks)
        canvas.text(x, bottom + 16, label, TICK_SIZE, "middle", fill=MUTED_INK)
    canvas.line(left, bottom, right, bottom, stroke=INK, **{"stroke-width": 1.0})
    canvas.text((left + right) / 2, height - 10, chart.x_label, LABEL_SIZE, "middle")
    draw_vertical_label(canvas, chart.y_label, top, bottom)
    anchors = [(x_axis.at(p.x), y_axis.at(p.y)) for p in points]
    _draw_labels(canvas, points, anchors, Box(left + 2, top, right, bottom - 2))
    for point, (x, y) in zip(points, anchors, strict=True):
        tooltip = f"{point.label}: {format_value(point.x)}, {format_value(point.y)}"
        draw_marker(canvas, TONE_MARKERS[point.tone], x, y, 5.5, _colour(point), tooltip)
    return canvas.render(chart.note)


def _axis(values: Sequence[float], start: float, end: float, count: int) -> ValueAxis:
    low, high = min(values), max(values)
    # Keep points off the frame; a single value gets a narrow band (an accuracy of 0.97 should
    # not stretch the axis past 1).
    pad = (high - low) * 0.08 or abs(low) * 0.02 or 1.0
    return ValueAxis(nice_ticks(low - pad, high + pad, count), start, end)


def _colour(point: Point) -> str:
    engine = engine_in(point.label)
    return BLUE if engine is None else ENGINE_COLOURS[engine]


def _legend(points: Sequence[Point]) -> list[LegendEntry]:
    mentioned = (engine_in(point.label) for point in points)
    engines = list(dict.fromkeys(engine for engine in mentioned if engine is not None))
    entries: list[LegendEntry] = [
        (ENGINE_NAMES[engine], "swatch", ENGINE_COLOURS[engine]) for engine in engines
    ]
    for tone in ("good", "warning", "bad"):
        if any(point.tone == tone for point in points):
            entries.append((TONE_WORDS[tone], TONE_MARKERS[tone], MUTED_INK))
    return entries


def _runs(point: Point) -> list[tuple[str, str, str]]:
    runs = [(point.label, INK, "400")]
    if point.tone != "neutral":
        runs.append((f" {TONE_WORDS[point.tone]}", TONE_TEXT_COLOURS[point.tone], "700"))
    return runs


def _draw_labels(canvas: SvgCanvas, points: Sequence[Point],
                 anchors: Sequence[tuple[float, float]], bounds: Box) -> None:  # fmt: skip
    # Marker boxes stay inside the first ring (``gap``), so a label beside its own point fits.
    markers = [Box(x - 6.5, y - 6.5, x + 6.5, y + 6.5) for x, y in anchors]
    runs = [_runs(point) for point in points]
    widths = [sum(text_width(text, POINT_SIZE) for text, _, _ in run) + 2 for run in runs]
    sizes = [(width, POINT_SIZE + 3) for width in widths]
    placements = place_labels(anchors, sizes, bounds, markers, gap=9.0)
    for (x, y), placement, run in zip(anchors, placements, runs, strict=True):
        box = placement.box
        if placement.displaced:  # a leader line ties a pushed-away label to its point
            near_x = min(max(x, box.left), box.right)
            near_y = min(max(y, box.top), box.bottom)
            leader: dict[str, str | float] = {
                "stroke": MUTED_INK,
                "stroke-width": 0.75,
                "class": "leader",
            }
            canvas.line(x, y, near_x, near_y, **leader)
        canvas.rich_text(box.left + 1, box.bottom - 4, run, POINT_SIZE, **HALO)
