"""A report's charts as inline SVG: grouped bars with whiskers and constraint lines, and
scatter plots with labelled points (:mod:`cvplatform.reports.svg_scatter`).

Readable at 720 px: round ticks (1-2-5 steps), the unit on the value axis, a legend, dashed and
labelled constraint lines, and tones said in words (PASS/FAIL) as well as in colour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cvplatform.reports.chart_layout import format_value, nice_ticks, text_width, wrap_words
from cvplatform.reports.document import Bar, BarChart, ScatterChart, Threshold, Tone
from cvplatform.reports.palette import (
    INK,
    MUTED_INK,
    THRESHOLD,
    TONE_TEXT_COLOURS,
    TONE_WORDS,
    series_colours,
)
from cvplatform.reports.svg_axes import (
    HALO,
    MARGIN,
    TICK_SIZE,
    VALUE_SIZE,
    ValueAxis,
    draw_frame,
    draw_value_gridlines,
    draw_vertical_label,
    finish_empty,
    plot_left,
    tick_count,
)
from cvplatform.reports.svg_primitives import LegendEntry, SvgCanvas
from cvplatform.reports.svg_scatter import scatter_chart_svg

_TONE_GLYPHS: dict[Tone, str] = {"good": "\u2713", "bad": "\u2717", "warning": "!", "neutral": ""}
_DASHED: dict[str, str | float] = {
    "stroke": THRESHOLD,
    "stroke-width": 1.5,
    "stroke-dasharray": "6 4",
}
_GUTTER_TEXT = 120.0  # the widest a constraint's label may be, right of the plot
_LINE = 13.0


def chart_svg(chart: BarChart | ScatterChart, width: int = 720, height: int = 320) -> str:
    """One chart as a self-contained ``<svg>`` element (no external references).

    Args:
        chart: what to draw; its text is shown as given, escaped.
        width: the drawing's width in px (and of its viewBox).
        height: the drawing's height in px.

    Returns:
        The SVG markup, the same for the same chart.
    """
    if isinstance(chart, BarChart):
        return _bar_chart(chart, width, height)
    return scatter_chart_svg(chart, width, height)


def _finite(values: Sequence[float | None]) -> list[float]:
    return [value for value in values if value is not None and math.isfinite(value)]


def _bar_range(chart: BarChart) -> tuple[float, float]:
    values: list[float | None] = [0.0, *(threshold.value for threshold in chart.thresholds)]
    for group in chart.groups:
        for bar in group.bars:
            values += [bar.value, bar.low, bar.high]
    finite = _finite(values)
    low, high = min(finite), max(finite)
    headroom = (high - low) * 0.1 or 1.0  # room for the value labels and tone words
    return (low - headroom if low < 0 else low), (high + headroom if high > 0 else high)


def _threshold_lines(chart: BarChart) -> list[list[str]]:
    return [wrap_words(item.label, TICK_SIZE * 1.12, _GUTTER_TEXT, 3) for item in chart.thresholds]


def _bar_chart(chart: BarChart, width: int, height: int) -> str:
    canvas = SvgCanvas(width, height, chart.title)
    colours = series_colours(bar.label for group in chart.groups for bar in group.bars)
    legend: list[LegendEntry] = [(label, "swatch", colour) for label, colour in colours.items()]
    top = draw_frame(canvas, chart.title, legend)
    if not colours:
        return finish_empty(canvas, top)
    low, high = _bar_range(chart)
    ticks = nice_ticks(low, high, tick_count(height - top - 60, 34))
    left = plot_left(ticks)
    # Constraint labels go in a gutter right of the plot, where no bar can hide them.
    label_lines = _threshold_lines(chart)
    widest = max(
        (text_width(line, TICK_SIZE) for lines in label_lines for line in lines), default=0
    )
    right = width - MARGIN / 2 - (widest + 8 if label_lines else MARGIN / 2 + 4)
    slot = (right - left) / len(chart.groups)
    group_lines = [wrap_words(group.label, TICK_SIZE, slot - 6, 2) for group in chart.groups]
    bottom = height - 10 - max(len(lines) for lines in group_lines) * 14
    axis = ValueAxis(ticks, bottom, top)
    draw_value_gridlines(canvas, axis, left, right)
    draw_vertical_label(canvas, chart.value_label, top, bottom)
    for index, group in enumerate(chart.groups):
        centre = left + slot * (index + 0.5)
        _draw_group(canvas, group.bars, centre, slot, axis, colours, group.label)
        for line_index, line in enumerate(group_lines[index]):
            canvas.text(centre, bottom + 18 + line_index * 14, line, TICK_SIZE, "middle")
    _draw_thresholds(canvas, chart.thresholds, label_lines, axis, left, right)
    return canvas.render(chart.note)


def _draw_group(canvas: SvgCanvas, bars: Sequence[Bar], centre: float, slot: float,
                axis: ValueAxis, colours: dict[str, str], group_label: str) -> None:  # fmt: skip
    if not bars:
        return
    bar_width = min(slot * 0.8 / len(bars), 56.0)
    first = centre - bar_width * len(bars) / 2
    for index, bar in enumerate(bars):
        x = first + index * bar_width
        _draw_bar(canvas, bar, x + 1, bar_width - 2, axis, colours[bar.label], group_label)


def _draw_bar(canvas: SvgCanvas, bar: Bar, x: float, width: float, axis: ValueAxis,
              colour: str, group_label: str) -> None:  # fmt: skip
    middle = x + width / 2
    zero = axis.at(0.0)
    if not math.isfinite(bar.value):
        canvas.text(middle, zero - 4, "n/a", VALUE_SIZE, "middle", fill=MUTED_INK)
        return
    end = axis.at(bar.value)
    tooltip = f"{bar.label}, {group_label}: {format_value(bar.value)}"
    canvas.rect(x, min(zero, end), width, abs(zero - end), tooltip, fill=colour)
    if bar.low is not None and bar.high is not None:
        _draw_whisker(canvas, middle, axis.at(bar.low), axis.at(bar.high), width)
    extremes = [axis.at(value) for value in _finite([bar.value, bar.low, bar.high])]
    upward = bar.value >= 0
    edge = min(extremes) if upward else max(extremes)
    for step, (text, fill, weight) in enumerate(_bar_labels(bar, width)):
        y = edge - 5 - step * 12 if upward else edge + 13 + step * 12
        style = {**HALO, "fill": fill, "font-weight": weight}
        canvas.text(middle, y, text, VALUE_SIZE, "middle", **style)


def _bar_labels(bar: Bar, width: float) -> list[tuple[str, str, str]]:
    """The value, then the tone's word (a glyph where the word is wider than the bar)."""
    labels = []
    value = format_value(bar.value)
    if text_width(value, VALUE_SIZE) <= width + 10:  # else left to the tooltip and the tables
        labels.append((value, INK, "400"))
    if bar.tone != "neutral":
        word = TONE_WORDS[bar.tone]
        shown = word if text_width(word, VALUE_SIZE) <= width + 6 else _TONE_GLYPHS[bar.tone]
        labels.append((shown, TONE_TEXT_COLOURS[bar.tone], "700"))
    return labels


def _draw_whisker(canvas: SvgCanvas, x: float, low: float, high: float, bar_width: float) -> None:
    cap = min(bar_width * 0.5, 14.0) / 2
    style: dict[str, str | float] = {"stroke": INK, "stroke-width": 1.5, "class": "whisker"}
    canvas.line(x, low, x, high, **style)
    canvas.line(x - cap, low, x + cap, low, **style)
    canvas.line(x - cap, high, x + cap, high, **style)


def _draw_thresholds(canvas: SvgCanvas, thresholds: Sequence[Threshold],
                     label_lines: Sequence[list[str]], axis: ValueAxis, left: float,
                     right: float) -> None:  # fmt: skip
    """Dashed lines across the plot, each labelled in the gutter at its height; labels of
    lines close together are pushed down so that they never overlap."""
    order = sorted(range(len(thresholds)), key=lambda i: (axis.at(thresholds[i].value), i))
    free_from = -math.inf  # the first y a label may take, below the one placed before
    for index in order:
        y = axis.at(thresholds[index].value)
        canvas.line(left, y, right + 4, y, **_DASHED)
        lines = label_lines[index]
        first = max(y + 4 - (len(lines) - 1) * _LINE / 2, free_from)
        for line_index, line in enumerate(lines):
            baseline = first + line_index * _LINE
            # Anchored at the drawing's edge: a label wider than estimated runs onto its own
            # line's end, under a halo, instead of off the drawing.
            style = {**HALO, "font-weight": "600"}
            canvas.text(canvas.width - MARGIN / 2, baseline, line, TICK_SIZE, "end", **style)
        free_from = first + len(lines) * _LINE + 2
