"""The machine-readable exports of a report view: canonical JSON (with its JSON Schema) and CSV.

Canonical JSON: keys sorted, two-space indentation, UTF-8 (not ASCII-escaped), a trailing newline,
and every float written with 6 significant digits by this module (never ``repr``), so the same
input gives the same bytes on every machine. Non-finite floats, which JSON cannot hold, are null.

CSV (RFC 4180 quoting, "\\n" line ends): the technical view is the raw metrics table (one row per
engine x batch size, every metric and interval) then a blank line then the constraint table (one
row per constraint x candidate); the simple view is its key figures table.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from cvplatform.reports.content import View, view_document
from cvplatform.reports.export_data import (
    VERDICT_FIELDS,
    decision_data,
    report_data,
    result_data,
    verdict_rows,
)
from cvplatform.reports.facts import read_facts
from cvplatform.reports.inputs import ReportInput
from cvplatform.reports.json_schema import report_json_schema
from cvplatform.schemas.benchmarks import METRIC_NAMES

__all__ = ["canonical_json", "report_csv", "report_json", "report_json_schema"]

SIGNIFICANT_DIGITS = 6
INTERVAL_METRICS = ("latency_p95_ms", "latency_p99_ms", "throughput_fps")


def report_json(report: ReportInput, view: View) -> bytes:
    """The view's content as canonical JSON; valid against :func:`report_json_schema`.

    Raises:
        ValueError: an unknown view.
    """
    document = view_document(report, view)
    data = report_data(read_facts(report), view, document.title, document.subtitle)
    return (canonical_json(data) + "\n").encode("utf-8")


def report_csv(report: ReportInput, view: View) -> bytes:
    """The view's tables as CSV.

    Raises:
        ValueError: an unknown view.
    """
    view_document(report, view)  # checks the view's name, with the same message
    facts = read_facts(report)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if view == "technical":
        _write(writer, _metrics_header(), (_metrics_row(result_data(facts, r)) for r in facts.rows))
        writer.writerow([])
        columns = ["engine", "batch_size", *VERDICT_FIELDS]
        _write(writer, columns, ([v[name] for name in columns] for v in verdict_rows(facts)))
    else:
        figures = decision_data(facts)["key_figures"]
        columns = ["engine", "batch_size", "key", "label", "value", "unit", "text"]
        _write(writer, columns, ([f[name] for name in columns] for f in figures))
    return buffer.getvalue().encode("utf-8")


def canonical_json(value: Any, indent: int = 0) -> str:
    """``value`` as canonical JSON text: sorted keys, floats to 6 significant digits.

    Raises:
        TypeError: a value JSON cannot hold (a set, bytes, an object).
    """
    if value is None or isinstance(value, bool):
        return "null" if value is None else "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return number_text(value) or "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        keys = sorted(value)
        if not all(isinstance(key, str) for key in keys):
            raise TypeError("JSON object keys must be strings")
        items = [
            f"{inner}{json.dumps(k, ensure_ascii=False)}: {canonical_json(value[k], indent + 1)}"
            for k in keys
        ]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        if not any(isinstance(item, dict | list | tuple) for item in value):
            # A list of plain values ([3, 64, 64], a short list of names) stays on one line.
            return "[" + ", ".join(canonical_json(item) for item in value) + "]"
        items = [f"{inner}{canonical_json(item, indent + 1)}" for item in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def number_text(value: float) -> str:
    """A float with 6 significant digits as JSON writes numbers ("12.3457", "1e-07"); "" when
    it is not finite."""
    if not math.isfinite(value):
        return ""
    text = f"{value:.{SIGNIFICANT_DIGITS}g}"
    return "0" if text == "-0" else text


def _metrics_header() -> list[str]:
    bounds = [f"{metric}_ci_{end}" for metric in INTERVAL_METRICS for end in ("low", "high")]
    return ["engine", "batch_size", "status", *METRIC_NAMES, *bounds, "error"]


def _metrics_row(row: dict[str, Any]) -> list[Any]:
    intervals = row["intervals"]
    bounds = [
        intervals[metric][end] if metric in intervals else None
        for metric in INTERVAL_METRICS
        for end in ("low", "high")
    ]
    metrics = [row["metrics"].get(name) for name in METRIC_NAMES]
    return [row["engine"], row["batch_size"], row["status"], *metrics, *bounds, row["error"]]


def _write(writer: Any, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return number_text(value)
    return str(value)
