"""The report's content: both views, their numbers, and the JSON and CSV exports."""

from __future__ import annotations

import re

import pytest

from cvplatform.reports import formatting as fmt
from cvplatform.reports.content import VIEWS, View, technical_view, view_document
from cvplatform.reports.document import (
    BarChart,
    KeyValues,
    Paragraph,
    ScatterChart,
)
from tests.reports.document_kit import (
    blocks_of,
    changed,
    column,
    row_of,
    table,
    texts,
)
from tests.reports.inputs_kit import (
    NO_GPU,
    every_input,
    example_input,
)

INPUTS = every_input()


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
