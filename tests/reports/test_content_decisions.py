"""The report's content, continued: constraints, the selection and recommendations, inputs where
nothing passes or nothing is known about accuracy, and the simple view."""

from __future__ import annotations

import json

import jsonschema

from cvplatform.reports.content import VIEWS, simple_view, technical_view
from cvplatform.reports.data_formats import report_json, report_json_schema
from cvplatform.reports.document import (
    BarChart,
    BulletList,
    KeyValues,
    Paragraph,
    ScatterChart,
    Table,
)
from cvplatform.reports.simple import model_slug
from tests.reports.document_kit import (
    blocks_of,
    changed,
    column,
    row_of,
    section,
    table,
)
from tests.reports.inputs_kit import (
    NO_GPU,
    example_input,
    interrupted_input,
    no_accuracy_input,
    nothing_passes_input,
)

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
        "engine host memory 400 MB, more than 312.4 MB",
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
