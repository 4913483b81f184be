"""Reading a report's Document in tests: its sections, tables, rows and every text shown."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cvplatform.reports.document import (
    BarChart,
    BulletList,
    Document,
    KeyValues,
    Paragraph,
    ScatterChart,
    Section,
    Table,
)
from cvplatform.reports.inputs import ReportInput
from tests.reports.inputs_kit import example_input


def section(document: Document, heading: str) -> Section:
    return next(s for s in document.sections if s.heading == heading)


def blocks_of(document: Document, heading: str, kind: type) -> list[Any]:
    return [b for b in section(document, heading).blocks if isinstance(b, kind)]


def table(document: Document, heading: str, caption_start: str) -> Table:
    tables: list[Table] = blocks_of(document, heading, Table)
    return next(t for t in tables if t.caption.startswith(caption_start))


def column(table_: Table, name: str) -> int:
    return list(table_.columns).index(name)


def row_of(table_: Table, *lead: str) -> list[str]:
    return next(list(r) for r in table_.rows if tuple(r[: len(lead)]) == lead)


def texts(document: Document) -> Iterator[str]:
    """Every string a reader sees in ``document``."""
    yield from (document.title, document.subtitle, document.footer, *document.legend)
    for sec in document.sections:
        yield sec.heading
        for block in sec.blocks:
            if isinstance(block, Paragraph):
                yield block.text
            elif isinstance(block, KeyValues):
                yield from (text for row in block.rows for text in row)
            elif isinstance(block, BulletList):
                yield from block.items
            elif isinstance(block, Table):
                yield from (*block.columns, block.caption)
                yield from (cell for row in block.rows for cell in row)
            elif isinstance(block, BarChart):
                yield from (block.title, block.value_label, block.note)
                yield from (bar.label for group in block.groups for bar in group.bars)
                yield from (threshold.label for threshold in block.thresholds)
            elif isinstance(block, ScatterChart):
                yield from (block.title, block.x_label, block.y_label, block.note)
                yield from (point.label for point in block.points)


def changed(engine: str, batch_size: int, **metrics: Any) -> ReportInput:
    """The example with one row's metrics changed (an interval: ``<metric>_ci=(low, high)``),
    selected anew as the benchmark would."""
    values = {k: v for k, v in metrics.items() if not k.endswith("_ci")}
    intervals = {k[:-3]: v for k, v in metrics.items() if k.endswith("_ci")}
    return example_input(
        overrides={(engine, batch_size): {"metrics": values, "intervals": intervals}}
    )


def metric(report: ReportInput, engine: str, batch_size: int, name: str) -> float:
    row = next(
        r for r in report.benchmark.results if (r.engine, r.batch_size) == (engine, batch_size)
    )
    value = row.metrics[name]
    assert value is not None
    return value
