"""The report's content: both views, their numbers, and the JSON and CSV exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from cvplatform.reports import formatting as fmt
from cvplatform.reports.content import VIEWS, View, simple_view, technical_view, view_document
from cvplatform.reports.data_formats import (
    report_json,
    report_json_schema,
)
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
from cvplatform.reports.simple import model_slug
from tests.reports.inputs_kit import (
    NO_GPU,
    every_input,
    example_input,
    interrupted_input,
    no_accuracy_input,
    nothing_passes_input,
)

INPUTS = every_input()


# --- helpers -------------------------------------------------------------------------------------


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


# --- the technical view --------------------------------------------------------------------------


def test_technical_view_has_every_section_in_order() -> None:
    document = technical_view(example_input())
    assert [s.heading for s in document.sections] == [
        "Summary",
        "Metadata",
        "Results",
        "Charts",
        "Deltas",
        "Constraints",
        "Selection",
        "Recommendations",
    ]
    assert all(s.blocks for s in document.sections)
    assert document.title == "Benchmark report: ResNet18 digits"
    assert "2025-06-02 09:30:00 UTC" in document.subtitle
    assert document.legend == ("ONNX Runtime CPU FP32", "ONNX Runtime CPU INT8")


def test_summary_states_the_decision_with_its_numbers() -> None:
    document = technical_view(example_input())
    lead = blocks_of(document, "Summary", Paragraph)[0]
    assert lead.tone == "good"
    assert lead.text.startswith("Deploy ONNX Runtime CPU INT8 at batch size 1.")
    assert "35.9% faster than FP32 CPU (p95 3.02 ms vs 4.71 ms)" in lead.text
    figures = dict(blocks_of(document, "Summary", KeyValues)[0].rows)
    assert figures["Selected"] == "ONNX Runtime CPU INT8, batch size 1"
    assert figures["p95 latency per batch of 1"] == "3.02 ms (95% CI 2.93\N{EN DASH}3.12)"
    assert figures["Throughput"].startswith(f"{1000 / 2.61:.1f} samples/s")


def test_metadata_names_the_model_data_and_machine() -> None:
    report = example_input()
    rows = [dict(b.rows) for b in blocks_of(technical_view(report), "Metadata", KeyValues)]
    merged = {key: value for block in rows for key, value in block.items()}
    assert merged["Report"] == report.report_id
    assert merged["Source SHA-256"] == report.model.source_sha256
    assert merged["ONNX SHA-256"] == report.model.onnx_sha256
    assert report.dataset is not None and report.dataset.content_hash is not None
    assert merged["Dataset content hash"] == report.dataset.content_hash
    assert merged["Split seed, validation share"] == "0, 20.0%"
    assert merged["Final validation accuracy"] == "97.2%"
    assert merged["Constraints"] == "p95 latency < 10 ms; accuracy drop <= 1 pp"
    assert merged["ONNX Runtime"] == "1.20.1"
    # Without a GPU its three fields share one reason: said once.
    assert merged["GPU"] == f"unavailable: {NO_GPU}"
    assert "GPU driver" not in merged


def test_results_table_has_every_measured_combination_with_its_numbers() -> None:
    report = example_input()
    latency = table(technical_view(report), "Results", "Latency per batch")
    assert [(r[0], r[1]) for r in latency.rows] == [
        ("ONNX Runtime CPU FP32", "1"),
        ("ONNX Runtime CPU FP32", "8"),
        ("ONNX Runtime CPU INT8", "1"),
        ("ONNX Runtime CPU INT8", "8"),
    ]
    int8 = row_of(latency, "ONNX Runtime CPU INT8", "1")
    assert int8[column(latency, "p95")] == "3.02"
    assert int8[column(latency, "p95 CI")] == "2.93\N{EN DASH}3.12"
    assert int8[column(latency, "p99")] == "3.49"
    assert int8[column(latency, "Mean")] == "2.61"
    assert len(latency.tones) == len(latency.rows)
    throughput = table(technical_view(report), "Results", "Throughput")
    fp32_8 = row_of(throughput, "ONNX Runtime CPU FP32", "8")
    assert fp32_8[2] == f"{8000 / 21.35:.1f}"
    assert fp32_8[column(throughput, "VRAM (MB)")] == "n/a"
    assert fp32_8[column(throughput, "Host memory (MB)")] == "341.7"


def test_unavailable_engines_are_listed_with_their_reason() -> None:
    missing = table(technical_view(example_input()), "Results", "Not measured")
    assert [tuple(r) for r in missing.rows] == [
        ("ONNX Runtime CUDA", "1, 8", "unavailable", NO_GPU),
        ("TensorRT FP16", "1, 8", "unavailable", NO_GPU),
    ]


def test_accuracy_table_has_one_row_per_engine() -> None:
    accuracy = table(technical_view(example_input()), "Results", "Accuracy")
    assert [tuple(r) for r in accuracy.rows] == [
        ("ONNX Runtime CPU FP32", "97.2", "0.00", "100.0"),
        ("ONNX Runtime CPU INT8", "96.9", "0.28", "98.9"),
    ]


# --- charts ---------------------------------------------------------------------------------------


def test_latency_chart_bars_are_p95_with_p50_to_p99_whiskers_and_the_limit() -> None:
    report = example_input()
    charts = blocks_of(technical_view(report), "Charts", BarChart)
    latency = charts[0]
    assert "p95" in latency.note and "p99" in latency.note and "p50" in latency.note
    assert [g.label for g in latency.groups] == ["batch 1", "batch 8"]
    bar = latency.groups[1].bars[1]
    assert bar.label == "ONNX Runtime CPU INT8"
    assert (bar.value, bar.low, bar.high) == (14.05, 12.7, 15.2)
    assert [t.value for t in latency.thresholds] == [10.0]
    assert latency.groups[0].bars[1].tone == "good"  # the selected one
    throughput = charts[1]
    fp32 = throughput.groups[0].bars[0]
    assert fp32.value == pytest.approx(1000 / 4.12)
    assert fp32.low is not None and fp32.high is not None and fp32.low < fp32.value < fp32.high


def test_constraint_margin_chart_caps_wide_margins_and_says_so() -> None:
    charts = blocks_of(technical_view(example_input()), "Charts", BarChart)
    margins = charts[-1]
    assert margins.title == "Constraint margins by candidate"
    assert len(margins.groups) == 4
    fp32_8 = margins.groups[1]
    assert fp32_8.bars[0].value == -100.0  # -134.2% drawn at the cap
    assert fp32_8.bars[0].tone == "bad"
    assert "100%" in margins.note


def test_accuracy_speed_scatter_has_a_point_per_measured_candidate() -> None:
    scatter = blocks_of(technical_view(example_input()), "Charts", ScatterChart)[0]
    assert [(p.label, p.x, p.y) for p in scatter.points][2] == ("INT8 CPU, batch 1", 3.02, 96.94)
    assert len(scatter.points) == 4


# --- deltas ---------------------------------------------------------------------------------------


def test_engine_deltas_have_signs_and_words() -> None:
    deltas = table(technical_view(example_input()), "Deltas", "Each engine against")
    int8 = row_of(deltas, "ONNX Runtime CPU INT8", "1")
    expected = (3.02 - 4.71) / 4.71 * 100
    assert int8[column(deltas, "p95 latency")] == f"{expected:.1f}%"
    assert int8[column(deltas, "Throughput")].startswith("+")
    assert int8[column(deltas, "Accuracy")] == "-0.28 pp"
    words = int8[column(deltas, "In words")]
    assert words.startswith(f"INT8 CPU is {-expected:.1f}% faster than FP32 CPU")
    assert "(p95 3.02 ms vs 4.71 ms)" in words
    assert "0.28 pp less accurate (96.9% vs 97.2%)" in words
    assert deltas.tones == ()  # better or worse in words: a coloured badge would read PASS/FAIL


def test_a_slower_engine_gets_a_plus_sign_and_says_slower() -> None:
    report = changed("onnxruntime_cpu_int8", 1, latency_p95_ms=5.65, latency_p95_ms_ci=(5.5, 5.8))
    deltas = table(technical_view(report), "Deltas", "Each engine against")
    int8 = row_of(deltas, "ONNX Runtime CPU INT8", "1")
    assert int8[column(deltas, "p95 latency")] == "+20.0%"
    assert "20.0% slower than FP32 CPU" in int8[column(deltas, "In words")]


def test_overlapping_intervals_are_called_noise_not_faster() -> None:
    report = changed("onnxruntime_cpu_int8", 1, latency_p95_ms=4.6, latency_p95_ms_ci=(4.5, 4.75))
    deltas = table(technical_view(report), "Deltas", "Each engine against")
    int8 = row_of(deltas, "ONNX Runtime CPU INT8", "1")
    assert int8[column(deltas, "p95 latency")] == "-2.3% (noise)"
    assert "about as fast as FP32 CPU, within noise" in int8[column(deltas, "In words")]


def test_batch_deltas_compare_with_batch_one_of_the_same_engine() -> None:
    deltas = table(technical_view(example_input()), "Deltas", "Each batch size")
    fp32 = row_of(deltas, "ONNX Runtime CPU FP32", "8 vs 1")
    gain = (8000 / 21.35 - 1000 / 4.12) / (1000 / 4.12) * 100
    assert fp32[column(deltas, "Throughput")] == f"+{gain:.1f}%"
    assert f"Batch 8 gives {gain:.1f}% more throughput than batch 1" in fp32[-1]
    assert "Accuracy" not in deltas.columns  # the same at every batch size: not repeated


# --- constraints, selection, recommendations ------------------------------------------------------


def test_constraint_table_has_every_constraint_for_every_candidate() -> None:
    constraints = table(technical_view(example_input()), "Constraints", "Margin")
    assert len(constraints.rows) == 4 * 2
    fp32_8 = row_of(constraints, "ONNX Runtime CPU FP32", "8", "p95 latency < 10 ms")
    assert fp32_8[3:7] == ["23.42 ms", "fail", "-13.42 ms", "-134.2%"]
    int8_1 = row_of(constraints, "ONNX Runtime CPU INT8", "1", "accuracy drop <= 1 pp")
    assert int8_1[4:8] == ["pass", "+0.72 pp", "+72.0%", "no"]
    tones = constraints.tones[constraints.rows.index(tuple(fp32_8))]
    assert tones[column(constraints, "Verdict")] == "bad"


def test_within_noise_verdicts_are_flagged_and_recommended_against() -> None:
    report = example_input(constraints=(("latency_p95_ms", "<", 3.1),))
    document = technical_view(report)
    constraints = table(document, "Constraints", "Margin")
    int8 = row_of(constraints, "ONNX Runtime CPU INT8", "1")
    assert int8[column(constraints, "Within noise")] == "yes"
    advice = blocks_of(document, "Recommendations", BulletList)[0].items
    assert any("only within measurement noise" in item for item in advice)


def test_selection_lists_each_step_and_what_it_removed_in_words() -> None:
    document = technical_view(example_input())
    steps = blocks_of(document, "Selection", BulletList)[0]
    assert steps.ordered
    assert steps.items[0] == "Constraints: 2 of 4 candidates meet all 2 constraints."
    assert "ONNX Runtime CPU INT8 at batch 1 is best at 3.02 ms" in steps.items[1]
    removed = table(document, "Selection", "What each step removed")
    assert ("1", "ONNX Runtime CPU FP32 at batch 8") in [(r[0], r[1]) for r in removed.rows]
    summary = blocks_of(document, "Selection", Paragraph)[-1]
    assert "@" not in summary.text and "onnxruntime_cpu_int8" not in summary.text


def test_recommendations_cover_gpu_batching_and_int8() -> None:
    advice = blocks_of(technical_view(example_input()), "Recommendations", BulletList)[0].items
    joined = "\n".join(advice)
    assert f"ONNX Runtime CUDA and TensorRT FP16 could not run here ({NO_GPU})" in joined
    assert "Batching pays on ONNX Runtime CPU FP32: batch 8 gives" in joined
    assert "INT8 costs 0.28 pp of accuracy (96.9% vs 97.2% for FP32), within the 1.00 pp" in joined


def test_batching_that_does_not_pay_is_said_so() -> None:
    report = changed("onnxruntime_cpu", 8, throughput_fps=1000 / 4.12 * 1.05)
    advice = blocks_of(technical_view(report), "Recommendations", BulletList)[0].items
    assert any(item.startswith("Batching does not pay on ONNX Runtime CPU FP32") for item in advice)


def test_a_tie_within_noise_is_explained_by_memory() -> None:
    report = changed(
        "onnxruntime_cpu_int8",
        1,
        latency_p95_ms=4.6,
        latency_p95_ms_ci=(4.5, 4.75),
        host_memory_mb=400.0,
    )
    document = technical_view(report)
    lead = blocks_of(document, "Summary", Paragraph)[0].text
    assert lead.startswith("Deploy ONNX Runtime CPU FP32 at batch size 1.")
    assert "within measurement noise of the best of the 2 candidates that do" in lead
    assert "ONNX Runtime CPU INT8 at batch 1, and it uses less memory" in lead
    removed = table(document, "Selection", "What each step removed")
    assert [
        "3",
        "ONNX Runtime CPU INT8 at batch 1",
        "peak host memory 400 MB, more than 312.4 MB",
    ] in [list(r) for r in removed.rows]


def test_a_throughput_objective_shows_throughput_first() -> None:
    report = example_input((("throughput_fps", ">", 300.0),), objective="throughput")
    document = simple_view(report)
    assert blocks_of(document, "Recommendation", Paragraph)[0].text == (
        "Deploy ONNX Runtime CPU INT8 at batch size 8."
    )
    why = blocks_of(document, "Why", Paragraph)[0].text
    assert why.startswith("It meets the constraint (throughput > 300 samples/s) and has the ")
    assert "highest throughput of the 3 candidates that do" in why
    chart = blocks_of(document, "Throughput at a glance", BarChart)[0]
    assert [t.value for t in chart.thresholds] == [300.0]
    assert (
        "Group requests into batches of 8"
        in blocks_of(document, "Deploy it", BulletList)[0].items[-1]
    )


# --- nothing passes, no accuracy ------------------------------------------------------------------


def test_nothing_passes_names_the_closest_and_what_to_change() -> None:
    document = technical_view(nothing_passes_input())
    lead = blocks_of(document, "Summary", Paragraph)[0]
    assert lead.tone == "bad"
    assert lead.text.startswith("No engine and batch size met every constraint.")
    assert "The closest is ONNX Runtime CPU FP32 at batch 1" in lead.text
    figures = dict(blocks_of(document, "Summary", KeyValues)[0].rows)
    assert figures["Closest (fails a constraint)"] == "ONNX Runtime CPU FP32, batch size 1"
    advice = "\n".join(blocks_of(document, "Recommendations", BulletList)[0].items)
    assert "fails 'p95 latency < 2.5 ms' with 4.71 ms" in advice
    assert "INT8 costs too much accuracy: 0.28 pp" in advice
    assert advice.count("could not run here") == 1  # the GPU advice once, not twice
    assert blocks_of(document, "Constraints", Paragraph)[0].text.startswith("0 of 4")


def test_nothing_passes_simple_view_warns_before_the_deployment_steps() -> None:
    document = simple_view(nothing_passes_input())
    assert blocks_of(document, "Recommendation", Paragraph)[0].tone == "bad"
    deploy = section(document, "Deploy it").blocks
    assert isinstance(deploy[0], Paragraph) and deploy[0].tone == "warning"
    assert isinstance(deploy[1], BulletList)
    assert '"engine": "onnxruntime_cpu"' in deploy[1].items[0]


def test_without_accuracy_nothing_about_accuracy_is_invented() -> None:
    document = technical_view(no_accuracy_input())
    captions = [t.caption for t in blocks_of(document, "Results", Table)]
    assert not any(c.startswith("Accuracy") for c in captions)
    warning = blocks_of(document, "Results", Paragraph)[-1]
    assert warning.tone == "warning" and "not trained here" in warning.text
    assert not blocks_of(document, "Charts", ScatterChart)
    figures = dict(blocks_of(document, "Summary", KeyValues)[0].rows)
    assert not any("Accuracy" in label for label in figures)
    assert 3 <= len(figures) - 1 <= 5
    deltas = table(document, "Deltas", "Each engine against")
    assert "Accuracy" not in deltas.columns
    advice = "\n".join(blocks_of(document, "Recommendations", BulletList)[0].items)
    assert "Accuracy was not measured" in advice
    metadata = [k for b in blocks_of(document, "Metadata", KeyValues) for k, _ in b.rows]
    assert "Dataset" not in metadata and "Training job" not in metadata


def test_an_interrupted_benchmark_still_reports_what_it_has() -> None:
    report = interrupted_input()
    document = technical_view(report)
    assert blocks_of(document, "Summary", Paragraph)[0].text.startswith("Nothing is selected.")
    latency = table(document, "Results", "Latency per batch")
    assert row_of(latency, "ONNX Runtime CPU FP32", "8")[2] == "cancelled"
    missing = table(document, "Results", "Not measured")
    assert row_of(missing, "ONNX Runtime CPU INT8")[1:3] == ["1, 8", "failed"]
    assert "no verdicts" in blocks_of(document, "Constraints", Paragraph)[0].text
    deploy = section(simple_view(report), "Deploy it").blocks
    assert [type(b) for b in deploy] == [Paragraph]
    for view in VIEWS:
        jsonschema.validate(json.loads(report_json(report, view)), report_json_schema())


# --- the simple view ------------------------------------------------------------------------------


def test_simple_view_says_what_to_deploy_why_and_how() -> None:
    report = example_input()
    document = simple_view(report)
    assert [s.heading for s in document.sections] == [
        "Recommendation",
        "Key figures",
        "Why",
        "Latency at a glance",
        "Deploy it",
    ]
    figures = blocks_of(document, "Key figures", KeyValues)[0].rows
    assert 3 <= len(figures) - 1 <= 5
    why = blocks_of(document, "Why", Paragraph)[0].text
    assert "lowest p95 latency of the 2 candidates that do" in why
    steps = blocks_of(document, "Deploy it", BulletList)[0].items
    body = json.dumps(
        {"engine": "onnxruntime_cpu_int8", "model_id": report.model.id, "version": "v1.0.0"}
    )
    assert "POST /api/v1/packages with " + body in steps[0]
    assert "later release" in steps[0]
    assert steps[1].endswith("docker build -t cv-platform-resnet18-digits:v1.0.0 .")
    assert steps[2].endswith("docker run -d -p 8080:8080 cv-platform-resnet18-digits:v1.0.0")


def test_model_slug_is_docker_safe() -> None:
    assert model_slug("ResNet18 digits", "m1") == "resnet18-digits"
    assert model_slug("  My_Model v2!! ", "m1") == "my-model-v2"
    assert model_slug("\N{GREEK CAPITAL LETTER OMEGA}", "mdl_01") == "mdl-01"


# --- text hygiene and determinism -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(INPUTS))
@pytest.mark.parametrize("view", VIEWS)
def test_text_has_fixed_decimals_and_ascii_minus(name: str, view: View) -> None:
    for text in texts(view_document(INPUTS[name](), view)):
        assert "\N{MINUS SIGN}" not in text
        assert not re.search(r"\d\.\d{4,}", text), text  # no float written by repr
        assert "nan" not in text.lower().split()


def test_number_formatting_rules() -> None:
    assert (fmt.ms(3.456), fmt.ms(99.994), fmt.ms(100.0), fmt.ms(152.34)) == (
        "3.46",
        "99.99",
        "100.0",
        "152.3",
    )
    assert (fmt.fps(383.14), fmt.percent(97.22)) == ("383.1", "97.2")
    assert (fmt.signed_percent(12.34), fmt.signed_percent(-4.0)) == ("+12.3%", "-4.0%")
    assert fmt.signed_percent(-0.04) == "0.0%"
    assert fmt.signed_pp(-0.284) == "-0.28 pp"
