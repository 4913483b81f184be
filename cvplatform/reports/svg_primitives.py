"""The few SVG elements the charts draw, written as text with every string escaped and every
coordinate formatted to one decimal, so the same chart is always the same bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from cvplatform.reports.chart_layout import text_width
from cvplatform.reports.palette import INK

FONT_STACK = (
    "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Noto Sans', "
    "'Liberation Sans', sans-serif"
)
SVG_NAMESPACE = "http://www.w3.org/2000/svg"
LEGEND_SIZE = 11.0
LEGEND_LINE = 17.0


def num(value: float) -> str:
    """A coordinate: one decimal, never "-0.0"."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _attributes(attributes: dict[str, str | float]) -> str:
    parts = []
    for name, value in attributes.items():  # insertion order: fixed by the caller's code
        shown = num(value) if isinstance(value, float | int) else escape(value, quote=True)
        parts.append(f' {name}="{shown}"')
    return "".join(parts)


@dataclass
class SvgCanvas:
    """An SVG drawing built element by element."""

    width: int
    height: int
    title: str
    parts: list[str] = field(default_factory=list)

    def rect(self, x: float, y: float, width: float, height: float, tooltip: str = "",
             **style: str | float) -> None:  # fmt: skip
        attributes = {"x": x, "y": y, "width": max(width, 0.0), "height": max(height, 0.0), **style}
        inner = f"<title>{escape(tooltip)}</title>" if tooltip else ""
        self.parts.append(f"<rect{_attributes(attributes)}>{inner}</rect>")

    def line(self, x1: float, y1: float, x2: float, y2: float, **style: str | float) -> None:
        self.parts.append(
            f"<line{_attributes({'x1': x1, 'y1': y1, 'x2': x2, 'y2': y2, **style})}/>"
        )

    def circle(self, x: float, y: float, radius: float, tooltip: str = "",
               **style: str | float) -> None:  # fmt: skip
        inner = f"<title>{escape(tooltip)}</title>" if tooltip else ""
        attributes = _attributes({"cx": x, "cy": y, "r": radius, **style})
        self.parts.append(f"<circle{attributes}>{inner}</circle>")

    def polygon(self, points: Sequence[tuple[float, float]], tooltip: str = "",
                **style: str | float) -> None:  # fmt: skip
        inner = f"<title>{escape(tooltip)}</title>" if tooltip else ""
        shape = " ".join(f"{num(x)},{num(y)}" for x, y in points)
        self.parts.append(f"<polygon{_attributes({'points': shape, **style})}>{inner}</polygon>")

    def text(self, x: float, y: float, content: str, size: float = 11.0,
             anchor: str = "start", **style: str | float) -> None:  # fmt: skip
        attributes = {"x": x, "y": y, "font-size": size, "text-anchor": anchor, **style}
        attributes.setdefault("fill", INK)
        self.parts.append(f"<text{_attributes(attributes)}>{escape(content)}</text>")

    def rich_text(self, x: float, y: float, runs: Sequence[tuple[str, str, str]],
                  size: float = 11.0, **style: str | float) -> None:  # fmt: skip
        """One line of text in runs of (text, colour, weight): a label and its tone word."""
        spans = "".join(
            f'<tspan fill="{escape(colour)}" font-weight="{escape(weight)}">{escape(text)}</tspan>'
            for text, colour, weight in runs
        )
        self.parts.append(
            f"<text{_attributes({'x': x, 'y': y, 'font-size': size, **style})}>{spans}</text>"
        )

    def raw(self, element: str) -> None:
        self.parts.append(element)

    def render(self, description: str = "") -> str:
        label = escape(self.title, quote=True)
        head = (
            f'<svg xmlns="{SVG_NAMESPACE}" width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}" role="img" aria-label="{label}" '
            f'font-family="{escape(FONT_STACK, quote=True)}">'
        )
        titles = f"<title>{escape(self.title)}</title>"
        if description:
            titles += f"<desc>{escape(description)}</desc>"
        background = f'<rect width="{self.width}" height="{self.height}" fill="#FFFFFF"/>'
        return head + titles + background + "".join(self.parts) + "</svg>"


# A legend entry: its label and how to draw its key ("swatch", "circle", "ring", "cross",
# "triangle") in which colour.
LegendEntry = tuple[str, str, str]


def legend_height(entries: Sequence[LegendEntry], left: float, right: float) -> float:
    """How tall :func:`draw_legend` will be for these entries between ``left`` and ``right``."""
    return len(_legend_rows(entries, left, right)) * LEGEND_LINE if entries else 0.0


def _entry_width(label: str) -> float:
    return 14 + text_width(label, LEGEND_SIZE) + 18


def _legend_rows(entries: Sequence[LegendEntry], left: float, right: float) -> list[list[int]]:
    rows: list[list[int]] = [[]]
    x = left
    for index, (label, _, _) in enumerate(entries):
        width = _entry_width(label)
        if rows[-1] and x + width > right:
            rows.append([])
            x = left
        rows[-1].append(index)
        x += width
    return rows


def draw_legend(canvas: SvgCanvas, entries: Sequence[LegendEntry], left: float, top: float,
                right: float) -> None:  # fmt: skip
    """Keys and labels left to right, wrapping onto more rows when they do not fit."""
    for row_index, row in enumerate(_legend_rows(entries, left, right)):
        x, middle = left, top + row_index * LEGEND_LINE + LEGEND_LINE / 2
        for index in row:
            label, key, colour = entries[index]
            draw_marker(canvas, key, x + 5, middle, 5.0, colour)
            canvas.text(x + 14, middle + 4, label, LEGEND_SIZE)
            x += _entry_width(label)


def draw_marker(canvas: SvgCanvas, key: str, x: float, y: float, size: float, colour: str,
                tooltip: str = "") -> None:  # fmt: skip
    """A legend key or a scatter point: the shape carries the tone, the colour the engine."""
    if key == "swatch":
        canvas.rect(x - size, y - size, 2 * size, 2 * size, tooltip, fill=colour, rx=2.0)
    elif key == "ring":
        canvas.circle(
            x, y, size - 1, tooltip, fill="#FFFFFF", stroke=colour, **{"stroke-width": 2.0}
        )
    elif key == "cross":
        arm = size * 0.9
        canvas.line(x - arm, y - arm, x + arm, y + arm, stroke=colour, **{"stroke-width": 2.5})
        canvas.line(x - arm, y + arm, x + arm, y - arm, stroke=colour, **{"stroke-width": 2.5})
        if tooltip:  # a transparent hit area carries the tooltip of the two strokes
            canvas.circle(x, y, size, tooltip, fill="#FFFFFF", **{"fill-opacity": 0.0})
    elif key == "triangle":
        points = (
            (x, y - size * 1.15),
            (x + size * 1.05, y + size * 0.8),
            (x - size * 1.05, y + size * 0.8),
        )
        canvas.polygon(points, tooltip, fill=colour)
    else:
        canvas.circle(x, y, size, tooltip, fill=colour, stroke="#FFFFFF", **{"stroke-width": 1.0})
