"""The machine-readable exports: canonical JSON against its published schema, CSV, and the
same bytes for the same data whatever order the store hands it back in."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from cvplatform.reports.content import VIEWS, View, view_document
from cvplatform.reports.data_formats import (
    canonical_json,
    report_csv,
    report_json,
    report_json_schema,
)
from cvplatform.reports.inputs import ReportInput
from cvplatform.schemas.benchmarks import METRIC_NAMES
from tests.reports.inputs_kit import NO_GPU, every_input, example_input, nothing_passes_input

INPUTS = every_input()


def scrambled(report: ReportInput) -> ReportInput:
    """The same data with every stored object's keys and the result rows in reverse order, as a
    store that keeps neither (a JSONB column, an unordered query) might hand them back. Lists
    inside the result keep their order: it is their meaning (ranking, constraint order)."""

    def reverse(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: reverse(value[key]) for key in reversed(list(value))}
        if isinstance(value, list):
            return [reverse(item) for item in value]
        return value

    data = reverse(json.loads(report.model_dump_json()))
    data["benchmark"]["results"].reverse()
    return ReportInput.model_validate(data)


@pytest.mark.parametrize("name", sorted(INPUTS))
@pytest.mark.parametrize("view", VIEWS)
def test_same_data_gives_same_bytes_whatever_the_stored_order(name: str, view: View) -> None:
    report = INPUTS[name]()
    again = scrambled(report)
    assert view_document(report, view) == view_document(again, view)
    assert report_json(report, view) == report_json(again, view)
    assert report_csv(report, view) == report_csv(again, view)


def test_an_unknown_view_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown view 'pdf'"):
        view_document(example_input(), "pdf")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown view"):
        report_json(example_input(), "full")  # type: ignore[arg-type]


# --- JSON -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(INPUTS))
@pytest.mark.parametrize("view", VIEWS)
def test_json_is_canonical_and_valid_against_the_published_schema(name: str, view: View) -> None:
    schema = report_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    raw = report_json(INPUTS[name](), view)
    assert raw.endswith(b"}\n")
    data = json.loads(raw.decode("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(data)
    assert (canonical_json(data) + "\n").encode() == raw  # sorted keys, one way to write it
    assert data["view"] == view


def test_technical_json_has_the_raw_rows_with_numbers() -> None:
    report = example_input()
    data = json.loads(report_json(report, "technical"))
    results = data["sections"]["results"]
    assert len(results) == len(report.benchmark.results) == 8
    int8 = next(r for r in results if (r["engine"], r["batch_size"]) == ("onnxruntime_cpu_int8", 1))
    assert int8["metrics"]["latency_p95_ms"] == 3.02
    assert int8["metrics"]["throughput_fps"] == pytest.approx(1000 / 2.61, rel=1e-5)
    assert int8["intervals"]["latency_p95_ms"] == {"low": 2.93, "high": 3.12}
    assert int8["metrics"]["vram_mb"] is None
    cuda = next(r for r in results if r["engine"] == "onnxruntime_cuda")
    assert cuda["status"] == "unavailable" and cuda["error"] == NO_GPU
    assert data["decision"]["selected"] == {
        "key": "onnxruntime_cpu_int8@1",
        "engine": "onnxruntime_cpu_int8",
        "batch_size": 1,
    }
    kinds = {d["kind"] for d in data["sections"]["deltas"]}
    assert kinds == {"engine_vs_reference", "batch_vs_smallest"}
    assert len(data["sections"]["constraints"]["verdicts"]) == 8


def test_nothing_passes_json_has_no_selection_but_the_closest() -> None:
    data = json.loads(report_json(nothing_passes_input(), "simple"))
    assert data["decision"]["selected"] is None
    assert data["decision"]["closest"]["key"] == "onnxruntime_cpu@1"
    assert data["sections"]["deployment"]["engine"] == "onnxruntime_cpu"


def test_the_schema_rejects_a_broken_export() -> None:
    data = json.loads(report_json(example_input(), "technical"))
    del data["sections"]["results"][0]["metrics"]["latency_p95_ms"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, report_json_schema())


def test_canonical_json_writes_floats_with_six_significant_digits() -> None:
    assert canonical_json({"b": 1 / 3, "a": [1e-7, -0.0, 123456789.0]}) == (
        '{\n  "a": [1e-07, 0, 1.23457e+08],\n  "b": 0.333333\n}'
    )
    assert canonical_json([float("nan"), float("inf"), True, None, "\N{EN DASH}"]) == (
        '[null, null, true, null, "\N{EN DASH}"]'
    )
    with pytest.raises(TypeError):
        canonical_json({1, 2})


# --- CSV ------------------------------------------------------------------------------------------


def csv_blocks(raw: bytes) -> list[list[list[str]]]:
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
    blocks: list[list[list[str]]] = [[]]
    for row in rows:
        if row:
            blocks[-1].append(row)
        else:
            blocks.append([])
    return blocks


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_technical_csv_is_the_metrics_table_then_the_constraint_table(name: str) -> None:
    report = INPUTS[name]()
    raw = report_csv(report, "technical")
    assert b"\r" not in raw and raw.endswith(b"\n")
    metrics, constraints = csv_blocks(raw)
    header, *rows = metrics
    assert header[:3] == ["engine", "batch_size", "status"]
    assert len(rows) == len(report.benchmark.results)
    combos = {(r[0], int(r[1])) for r in rows}
    assert combos == {(r.engine, r.batch_size) for r in report.benchmark.results}
    stored_rows = {(r.engine, r.batch_size): r for r in report.benchmark.results}
    for row in rows:
        source = stored_rows[(row[0], int(row[1]))]
        assert row[2] == source.status
        for name in METRIC_NAMES:  # every number as stored, to 6 significant digits
            cell, value = row[header.index(name)], source.metrics.get(name)
            assert cell == "" if value is None else float(cell) == pytest.approx(value, rel=1e-5)
        for name, (low, _) in source.intervals.items():
            assert float(row[header.index(f"{name}_ci_low")]) == pytest.approx(low, rel=1e-5)
    constraint_header, *verdicts = constraints
    assert constraint_header[:4] == ["engine", "batch_size", "constraint", "metric"]
    stored_verdicts = report.benchmark.result.get("selection", {}).get("verdicts", {})
    assert len(verdicts) == sum(len(v) for v in stored_verdicts.values())
    assert {v[constraint_header.index("passed")] for v in verdicts} <= {"true", "false", ""}


def test_csv_numbers_are_the_stored_ones() -> None:
    report = example_input()
    (metrics, _) = csv_blocks(report_csv(report, "technical"))
    header, *rows = metrics
    int8 = next(r for r in rows if r[:2] == ["onnxruntime_cpu_int8", "8"])
    assert float(int8[header.index("latency_p95_ms")]) == 14.05
    assert float(int8[header.index("latency_p95_ms_ci_low")]) == 13.8
    assert int8[header.index("throughput_fps")] == "623.053"
    assert int8[header.index("vram_mb")] == ""


def test_simple_csv_is_the_key_figures_table() -> None:
    (block,) = csv_blocks(report_csv(example_input(), "simple"))
    header, *rows = block
    assert header == ["engine", "batch_size", "key", "label", "value", "unit", "text"]
    assert 3 <= len(rows) <= 5
    assert rows[0][:3] == ["onnxruntime_cpu_int8", "1", "latency_p95_ms"]
    assert float(rows[0][4]) == 3.02
    assert rows[-1][3] == "Against FP32 CPU, same batch"  # a comma inside: quoted, parsed back


def test_another_process_writes_the_same_bytes() -> None:
    """No hash-seed or process-state dependence: a fresh interpreter with another hash seed
    writes the same JSON and CSV."""
    script = (
        "import hashlib, sys\n"
        "from cvplatform.reports.data_formats import report_csv, report_json\n"
        "from tests.reports.inputs_kit import example_input\n"
        "report = example_input()\n"
        "for view in ('technical', 'simple'):\n"
        "    for write in (report_json, report_csv):\n"
        "        print(hashlib.sha256(write(report, view)).hexdigest())\n"
    )
    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    report = example_input()
    here = [
        hashlib.sha256(write(report, view)).hexdigest()
        for view in VIEWS
        for write in (report_json, report_csv)
    ]
    assert done.stdout.split() == here
