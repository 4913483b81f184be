"""The report's charts as reportlab vector drawings, in the look of the HTML's SVG charts.

Everything is placed by arithmetic on the chart's own numbers (no reportlab chart widgets, whose
layout heuristics we would have to second-guess), so the same chart always gives the same
drawing. Colours come from :mod:`cvplatform.reports.palette`; a tone is always also written as a
word next to the mark it colours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from reportlab.graphics.shapes import Drawing, Group, Line, Rect, String
from reportlab.lib.colors import Color, HexColor
from reportlab.pdfbase.pdfmetrics import stringWidth

from cvplatform.reports import palette
from cvplatform.reports.document import Bar, BarChart

FONT = "Helvetica"
BOLD = "Helvetica-Bold"
TICK_SIZE = 7.0
LABEL_SIZE = 7.5
MAX_BAR_WIDTH = 44.0
# Glyphs the built-in fonts lack (WinAnsi), said with ones they have.
_PLAIN_GLYPHS = str.maketrans({"≤": "<=", "≥": ">=", "→": "->", "\u2212": "-", "≈": "~", "≠": "!="})


def plain_text(text: str) -> str:
    """``text`` with the characters Helvetica cannot show replaced by ASCII equivalents."""
    return text.translate(_PLAIN_GLYPHS)


def colour(hex_colour: str) -> Color:
    """A palette colour ("#RRGGBB") as reportlab's colour."""
    return HexColor(hex_colour)


@dataclass(frozen=True)
class Axis:
    """A value axis: round-number ticks covering the data, and how to write them."""

    ticks: tuple[float, ...]
    decimals: int

    @property
    def low(self) -> float:
        return self.ticks[0]

    @property
    def high(self) -> float:
        return self.ticks[-1]

    def label(self, value: float) -> str:
        text = f"{value:.{self.decimals}f}"
        return "0" if text.strip("-0.") == "" else text


def nice_axis(low: float, high: float, target_ticks: int = 5) -> Axis:
    """Ticks at 1, 2, 2.5 or 5 times a power of ten that span ``low``..``high``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        low, high = 0.0, 1.0
    if high <= low:
        high = low + (abs(low) * 0.1 or 1.0)
    raw_step = (high - low) / target_ticks
    exponent = math.floor(math.log10(raw_step))
    multiple = next(m for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * 10.0**exponent >= raw_step)
    step = multiple * 10.0**exponent
    # 2.5 needs one decimal more than its power of ten; 10 one fewer.
    decimals = max(0, -exponent + (1 if multiple == 2.5 else 0) - (1 if multiple == 10 else 0))
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    ticks = tuple(round(index * step, decimals + 3) for index in range(first, last + 1))
    return Axis(ticks, decimals)


def value_text(value: float) -> str:
    """A bar's value in three significant digits, fixed notation."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else "n/a"
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def label_string(
    x: float,
    y: float,
    text: str,
    size: float = LABEL_SIZE,
    anchor: str = "start",
    ink: str = palette.INK,
    font: str = FONT,
) -> String:
    """A line of chart text in the report's font, in glyphs the font has."""
    return String(
        x,
        y,
        plain_text(text),
        fontName=font,
        fontSize=size,
        fillColor=colour(ink),
        textAnchor=anchor,
    )


def _vertical_text(x: float, y: float, text: str) -> Group:
    # Rotated a quarter turn anticlockwise about (x, y): read bottom to top, like a y-axis label.
    return Group(label_string(0, 0, text, anchor="middle"), transform=(0, 1, -1, 0, x, y))


def text_width(text: str, size: float = LABEL_SIZE, font: str = FONT) -> float:
    """How many points ``text`` takes on one line in ``font`` at ``size``."""
    return float(stringWidth(plain_text(text), font, size))


@dataclass(frozen=True)
class Plot:
    """The data rectangle of a chart and the value axis mapped onto its height."""

    left: float
    bottom: float
    right: float
    top: float
    axis: Axis

    def y(self, value: float) -> float:
        span = self.axis.high - self.axis.low
        return self.bottom + (value - self.axis.low) / span * (self.top - self.bottom)


def value_axis(drawing: Drawing, plot: Plot, label: str) -> None:
    """The vertical axis: grid lines and labels at the ticks, and its name read upwards."""
    for tick in plot.axis.ticks:
        y = plot.y(tick)
        drawing.add(Line(plot.left, y, plot.right, y, strokeColor=colour(palette.GRID)))
        drawing.add(
            label_string(
                plot.left - 4, y - 2.5, plot.axis.label(tick), TICK_SIZE, "end", palette.MUTED_INK
            )
        )
    drawing.add(Line(plot.left, plot.bottom, plot.left, plot.top, strokeColor=colour(palette.INK)))
    drawing.add(_vertical_text(16, (plot.bottom + plot.top) / 2, label))


def _legend_rows(labels: Sequence[str], width: float) -> list[list[tuple[str, float]]]:
    """The legend's entries flowed into rows: (label, x offset) each."""
    rows: list[list[tuple[str, float]]] = [[]]
    x = 0.0
    for label in labels:
        entry_width = 12 + text_width(label) + 14
        if rows[-1] and x + entry_width > width:
            rows.append([])
            x = 0.0
        rows[-1].append((label, x))
        x += entry_width
    return rows


def _draw_legend(
    drawing: Drawing, rows: list[list[tuple[str, float]]], colours: dict[str, str], left: float
) -> None:
    for row_index, row in enumerate(rows):
        y = 2 + (len(rows) - 1 - row_index) * 13
        for label, x in row:
            drawing.add(Rect(left + x, y, 8, 8, fillColor=colour(colours[label]), strokeColor=None))
            drawing.add(label_string(left + x + 12, y + 1, label))


def engine_key_drawing(labels: Sequence[str], width: float) -> Drawing:
    """The engines the charts draw, each with its colour: "Engines" and one swatch per engine,
    flowed into as many rows as the width needs (the key to every chart at once)."""
    title_width = text_width("Engines", LABEL_SIZE, BOLD) + 10
    rows = _legend_rows(list(labels), width - title_width)
    drawing = Drawing(width, 13 * len(rows) + 2)
    drawing.add(label_string(0, 13 * (len(rows) - 1) + 3, "Engines", font=BOLD))
    _draw_legend(drawing, rows, palette.series_colours(labels), title_width)
    return drawing


def bar_chart_drawing(chart: BarChart, width: float, height: float = 230) -> Drawing:
    """Grouped bars (one group per label, one bar per series), whiskers from ``low`` to ``high``
    with caps, dashed threshold lines labelled at their right end, and a legend of the series.

    Args:
        chart: the bars; bars with a tone get an outline in the tone's colour and its word.
        width: the drawing's width in points (the frame's width).
        height: the drawing's height in points.

    Returns:
        A :class:`Drawing` that a story can hold as a flowable.
    """
    bars = [bar for group in chart.groups for bar in group.bars]
    colours = palette.series_colours(bar.label for bar in bars)
    left, right = 54.0, width - 10
    legend = _legend_rows(list(colours), right - left)
    values = [0.0, *(threshold.value for threshold in chart.thresholds)]
    for bar in bars:
        values += [v for v in (bar.value, bar.low, bar.high) if v is not None and math.isfinite(v)]
    top_room = 22.0 if any(bar.tone != "neutral" for bar in bars) else 12.0
    plot = Plot(left, 20 + 13 * len(legend), right, height - top_room, _spanning(values))
    drawing = Drawing(width, height)
    value_axis(drawing, plot, chart.value_label)
    zero = plot.y(max(plot.axis.low, min(0.0, plot.axis.high)))
    drawing.add(Line(left, zero, right, zero, strokeColor=colour(palette.INK), strokeWidth=0.8))
    group_width = (right - left) / max(1, len(chart.groups))
    for index, group in enumerate(chart.groups):
        group_left = left + index * group_width
        centre = group_left + group_width / 2
        drawing.add(label_string(centre, plot.bottom - 11, group.label, anchor="middle"))
        # Bars of a group touch (a small gap apart) and stay under 44 pt, however few there are.
        slot = min(group_width * 0.72 / max(1, len(group.bars)), MAX_BAR_WIDTH / 0.82)
        first = centre - slot * len(group.bars) / 2
        for position, bar in enumerate(group.bars):
            _draw_bar(drawing, plot, bar, first + position * slot, slot, colours[bar.label])
    for threshold in chart.thresholds:
        _draw_threshold(drawing, plot, threshold.label, threshold.value)
    _draw_legend(drawing, legend, colours, left)
    return drawing


def _spanning(values: Sequence[float]) -> Axis:
    low, high = min(values), max(values)
    # Headroom so the tallest whisker and its value label stay inside the plot.
    return nice_axis(low - 0.04 * (high - low) if low < 0 else low, high + 0.04 * (high - low))


def _draw_bar(
    drawing: Drawing, plot: Plot, bar: Bar, slot_left: float, slot: float, fill: str
) -> None:
    if not math.isfinite(bar.value):
        return  # nothing was measured: the tables say why
    bar_width = slot * 0.82
    x = slot_left + (slot - bar_width) / 2
    centre = x + bar_width / 2
    base = plot.y(max(plot.axis.low, min(0.0, plot.axis.high)))
    end = plot.y(bar.value)
    outline = palette.TONE_TEXT_COLOURS[bar.tone] if bar.tone != "neutral" else None
    drawing.add(
        Rect(
            x,
            min(base, end),
            bar_width,
            abs(end - base),
            fillColor=colour(fill),
            strokeColor=colour(outline) if outline else None,
            strokeWidth=1.4,
        )
    )
    reach = end
    if bar.low is not None and bar.high is not None and math.isfinite(bar.low + bar.high):
        low, high = plot.y(bar.low), plot.y(bar.high)
        cap = min(bar_width * 0.5, 8.0) / 2
        ink = colour(palette.INK)
        drawing.add(Line(centre, low, centre, high, strokeColor=ink, strokeWidth=0.9))
        for y in (low, high):
            drawing.add(Line(centre - cap, y, centre + cap, y, strokeColor=ink, strokeWidth=0.9))
        reach = max(end, high) if bar.value >= 0 else min(end, low)
    _label_bar(drawing, bar, centre, reach, slot)


def _label_bar(drawing: Drawing, bar: Bar, centre: float, reach: float, slot: float) -> None:
    """The value (when it fits its slot) and the tone's word past the end of the bar."""
    upward = bar.value >= 0
    step = 8.0 if upward else -8.0
    y = reach + (3.0 if upward else -9.0)
    text = value_text(bar.value)
    if text_width(text, 6.5) <= slot * 1.15:
        drawing.add(label_string(centre, y, text, 6.5, "middle", palette.MUTED_INK))
        y += step
    word = palette.tone_word(bar.tone)
    if word:
        ink = palette.TONE_TEXT_COLOURS[bar.tone]
        drawing.add(label_string(centre, y, word, 6.0, "middle", ink, BOLD))


def _draw_threshold(drawing: Drawing, plot: Plot, label: str, value: float) -> None:
    y = plot.y(value)
    ink = colour(palette.THRESHOLD)
    drawing.add(
        Line(plot.left, y, plot.right, y, strokeColor=ink, strokeWidth=1, strokeDashArray=[4, 3])
    )
    label_width = text_width(label, 7.0, BOLD)
    # A white backing so the label stays readable where it crosses a bar.
    drawing.add(
        Rect(
            plot.right - label_width - 4,
            y + 1.5,
            label_width + 4,
            9,
            fillColor=colour("#FFFFFF"),
            strokeColor=None,
            fillOpacity=0.85,
        )
    )
    drawing.add(label_string(plot.right - 2, y + 3, label, 7.0, "end", palette.THRESHOLD, BOLD))
