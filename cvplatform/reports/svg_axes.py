"""What every SVG chart has: a title, a legend, a value axis with round ticks and its label."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cvplatform.reports.chart_layout import format_tick, text_width
from cvplatform.reports.document import Tone
from cvplatform.reports.palette import GRID, INK, MUTED_INK
from cvplatform.reports.svg_primitives import LegendEntry, SvgCanvas, draw_legend, legend_height

TITLE_SIZE = 15.0
TICK_SIZE = 11.0
LABEL_SIZE = 12.0
VALUE_SIZE = 10.0
POINT_SIZE = 11.0
MARGIN = 12.0

# A white outline behind text keeps it legible where it crosses a gridline, a bar or a line.
HALO: dict[str, str | float] = {
    "stroke": "#FFFFFF",
    "stroke-width": 3.5,
    "paint-order": "stroke",
    "stroke-linejoin": "round",
}
# The shape that says a point's tone, so that tone never rests on colour alone.
TONE_MARKERS: dict[Tone, str] = {
    "good": "circle",
    "bad": "cross",
    "warning": "triangle",
    "neutral": "ring",
}


@dataclass(frozen=True)
class ValueAxis:
    """A linear axis from ``ticks[0]`` to ``ticks[-1]``, drawn from ``start`` to ``end`` px."""

    ticks: Sequence[float]
    start: float
    end: float

    def at(self, value: float) -> float:
        """The drawing coordinate of ``value``."""
        low, high = self.ticks[0], self.ticks[-1]
        return self.start + (value - low) / (high - low) * (self.end - self.start)


def draw_frame(canvas: SvgCanvas, title: str, legend: Sequence[LegendEntry]) -> float:
    """Draws the title and the legend; returns where the plot may begin (its top, in px)."""
    canvas.text(MARGIN, 22, title, TITLE_SIZE, **{"font-weight": "600"})
    right = canvas.width - MARGIN
    draw_legend(canvas, legend, MARGIN, 32, right)
    return 32 + legend_height(legend, MARGIN, right) + 14


def finish_empty(canvas: SvgCanvas, top: float, message: str = "no data to draw") -> str:
    """A chart with nothing to plot says so in place of the plot."""
    middle = (top + canvas.height) / 2
    canvas.text(canvas.width / 2, middle, message, LABEL_SIZE, "middle", fill=MUTED_INK)
    return canvas.render()


def plot_left(ticks: Sequence[float]) -> float:
    """Where the plot starts: past the rotated axis label and the widest tick label."""
    widest = max(text_width(format_tick(tick, ticks), TICK_SIZE) for tick in ticks)
    return MARGIN + 18 + widest + 10


def tick_count(length: float, spacing: float) -> int:
    """About one tick per ``spacing`` px, never fewer than three."""
    return max(3, int(length // spacing) + 1)


def draw_value_gridlines(canvas: SvgCanvas, axis: ValueAxis, left: float, right: float) -> None:
    """Horizontal gridlines at the ticks, labelled on the left; zero gets a darker line."""
    for tick in axis.ticks:
        y = axis.at(tick)
        canvas.line(left, y, right, y, stroke=INK if tick == 0 else GRID, **{"stroke-width": 1.0})
        label = format_tick(tick, axis.ticks)
        canvas.text(left - 8, y + 4, label, TICK_SIZE, "end", fill=MUTED_INK, **{"class": "tick"})


def draw_vertical_label(canvas: SvgCanvas, text: str, top: float, bottom: float) -> None:
    """The value axis' name (with its unit), read bottom to top along the axis."""
    x, middle = MARGIN + 8, (top + bottom) / 2
    rotation = f"rotate(-90 {x:.1f} {middle:.1f})"
    canvas.text(x, middle, text, LABEL_SIZE, "middle", transform=rotation)
