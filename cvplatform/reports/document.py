"""A report as a document: sections of paragraphs, key-value lists, tables and charts.

The content (:mod:`cvplatform.reports.content`) decides what a view says; the renderers
(HTML, PDF) decide only how it looks, so the two formats cannot drift apart. Everything here is
plain data: frozen, ordered, with text already formatted, so rendering makes no decision that
could differ between two runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

Tone = Literal["neutral", "good", "bad", "warning"]
Align = Literal["left", "right"]


@dataclass(frozen=True)
class Paragraph:
    text: str
    tone: Tone = "neutral"  # a verdict the renderer may colour (and must also say in words)


@dataclass(frozen=True)
class KeyValues:
    """Two columns: a label and its value (metadata, key figures)."""

    rows: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class BulletList:
    items: Sequence[str]
    ordered: bool = False


@dataclass(frozen=True)
class Table:
    """Cells are text already formatted; ``tones`` (same shape as ``rows``, or empty) marks
    pass/fail cells for colour."""

    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    align: Sequence[Align] = ()  # per column; empty: the first left, the rest right
    tones: Sequence[Sequence[Tone]] = ()
    caption: str = ""


@dataclass(frozen=True)
class Bar:
    """One bar: a value and, optionally, a whisker from ``low`` to ``high`` (p95 to p99, or a
    confidence interval)."""

    label: str
    value: float
    low: float | None = None
    high: float | None = None
    tone: Tone = "neutral"


@dataclass(frozen=True)
class BarGroup:
    """Bars drawn side by side under one label (one batch size, the engines in it)."""

    label: str
    bars: Sequence[Bar]


@dataclass(frozen=True)
class Point:
    label: str
    x: float
    y: float
    tone: Tone = "neutral"


@dataclass(frozen=True)
class Threshold:
    """A constraint's line across a chart: ``value`` on the value axis."""

    label: str
    value: float


@dataclass(frozen=True)
class BarChart:
    title: str
    value_label: str  # the axis, with its unit: "latency (ms)"
    groups: Sequence[BarGroup]
    thresholds: Sequence[Threshold] = ()
    note: str = ""  # what the whiskers mean, in words


@dataclass(frozen=True)
class ScatterChart:
    title: str
    x_label: str
    y_label: str
    points: Sequence[Point]
    note: str = ""


Chart = BarChart | ScatterChart
Block = Paragraph | KeyValues | BulletList | Table | BarChart | ScatterChart


@dataclass(frozen=True)
class Section:
    heading: str
    blocks: Sequence[Block]


@dataclass(frozen=True)
class Document:
    """One view of one report."""

    title: str
    subtitle: str
    sections: Sequence[Section]
    footer: str = ""  # on every page of the PDF, at the end of the HTML
    legend: Sequence[str] = field(default_factory=tuple)
