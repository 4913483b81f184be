"""The HTML renderer and its SVG charts: well-formed, self-contained, escaped, deterministic.

Documents are built by hand, shaped like the technical view (the content module has its own
tests): key figures, a wide raw metrics table with tones, bar charts with whiskers and constraint
lines, a margin chart with negative bars, and a crowded scatter chart.
"""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cvplatform.reports.chart_layout import Box, format_number, nice_ticks, place_labels
from cvplatform.reports.document import (
    Bar,
    BarChart,
    BarGroup,
    BulletList,
    Document,
    KeyValues,
    Paragraph,
    Point,
    ScatterChart,
    Section,
    Table,
    Threshold,
    Tone,
)
from cvplatform.reports.html import render_html
from cvplatform.reports.palette import ENGINE_COLOURS, series_colours
from cvplatform.reports.svg_charts import chart_svg

pytestmark = pytest.mark.unit

SVG = "{http://www.w3.org/2000/svg}"
XHTML_TEXT = "<script>alert('x') & \"y\"</script>"
ENGINES = ("onnxruntime_cpu", "onnxruntime_cpu_int8", "onnxruntime_cuda", "tensorrt_fp16")


def latency_chart() -> BarChart:
    groups = []
    for batch, scale in ((1, 1.0), (8, 5.5)):
        bars = [
            Bar(engine, 12.0 * scale * factor, 13.0 * scale * factor, 15.5 * scale * factor)
            for engine, factor in zip(ENGINES[:2], (1.0, 0.62), strict=True)
        ]
        groups.append(BarGroup(f"batch {batch}", bars))
    return BarChart(
        "p95 latency by engine and batch size",
        "p95 latency (ms)",
        groups,
        thresholds=(Threshold("p95 \u2264 20 ms", 20.0),),
        note="Bars: mean latency; whiskers: p95 to p99.",
    )


def margin_chart() -> BarChart:
    groups = [
        BarGroup(
            f"{engine}, batch 1",
            [
                Bar("latency", margin, tone="good" if margin >= 0 else "bad"),
                Bar("accuracy", accuracy, tone="good" if accuracy >= 0 else "bad"),
            ],
        )
        for engine, margin, accuracy in (
            ("onnxruntime_cpu", 35.0, 0.0),
            ("onnxruntime_cpu_int8", 58.0, -120.0),
        )
    ]
    return BarChart("Constraint margins", "margin (% of limit)", groups)


def crowded_scatter(count: int = 8) -> ScatterChart:
    # Points nearly on top of each other: their labels must still not pile up.
    points = [
        Point(f"{ENGINES[index % 4]}, batch {index + 1}", 10.0 + index * 0.01, 0.97, "neutral")
        for index in range(count)
    ]
    points[0] = Point(points[0].label, points[0].x, points[0].y, "good")
    points[1] = Point(points[1].label, points[1].x, points[1].y, "bad")
    return ScatterChart("Accuracy against speed", "p95 latency (ms)", "accuracy", points)


def sample_document(model_name: str = "resnet18-digits") -> Document:
    columns = ("engine", "batch", "status", "p95 (ms)", "throughput (img/s)", "margin")
    rows = [
        ("onnxruntime_cpu", "1", "ok", "13.0", "81.2", "+35.0%"),
        ("onnxruntime_cpu_int8", "1", "ok", "8.06", "130", "\u221212.0%"),
        (model_name, "8", "fail", "71.5", "112", "\u22123.0%"),
        ("onnxruntime_cuda", "1", "unavailable", "\u2014", "\u2014", "\u2014"),
    ]
    tones: list[tuple[Tone, ...]] = [
        ("neutral",) * 5 + ("good",),
        ("neutral",) * 5 + ("bad",),
        ("neutral", "neutral", "bad", "neutral", "neutral", "bad"),
        ("neutral",) * 6,
    ]
    return Document(
        title=f"Benchmark report: {model_name}",
        subtitle="Technical view \u00b7 created 2024-05-01 12:00 UTC",
        sections=(
            Section(
                "Summary",
                (
                    Paragraph("onnxruntime_cpu_int8 at batch 1 met every constraint.", "good"),
                    KeyValues((("model", model_name), ("p95 latency", "8.06 ms"))),
                ),
            ),
            Section("Results", (Table(columns, rows, tones=tones, caption="Raw metrics"),)),
            Section("Charts", (latency_chart(), margin_chart(), crowded_scatter())),
            Section("Recommendations", (BulletList(("Batch 8 pays for throughput.",)),)),
        ),
        footer=f"Report for {model_name}",
        legend=("ONNX Runtime CPU FP32", "ONNX Runtime CPU INT8"),
    )


def parse_xml(markup: str) -> ET.Element:
    """Our own output, not untrusted input: the standard parser is fine here."""
    return ET.fromstring(markup)  # noqa: S314


def parse_svg(markup: str) -> ET.Element:
    root = parse_xml(markup)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(element.itertext()) for element in root.iter(f"{SVG}text")]


# ---------------------------------------------------------------------------- layout arithmetic


@pytest.mark.parametrize(
    ("low", "high"), [(0, 17.3), (0, 0.93), (0.951, 0.987), (-120, 58), (0, 12345), (5, 5), (3, 1)]
)
def test_ticks_are_round_and_cover_the_range(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, allowed) for allowed in (1, 2, 5, 10))
    assert all(math.isclose(b - a, step) for a, b in itertools.pairwise(ticks))
    assert ticks[0] <= min(low, high) and ticks[-1] >= max(low, high)
    assert 3 <= len(ticks) <= 8


def test_numbers_never_show_minus_zero() -> None:
    assert format_number(-0.0001, 2) == "0.00"
    assert format_number(-1234.5, 1) == "\u22121,234.5"


def test_labels_of_points_on_the_same_spot_do_not_overlap() -> None:
    anchors = [(300.0, 150.0)] * 10
    placements = place_labels(anchors, [(90.0, 14.0)] * 10, Box(0, 0, 720, 300))
    boxes = [placement.box for placement in placements]
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    assert any(placement.displaced for placement in placements)  # the far ones get a leader line


def test_a_crowded_scatter_moves_far_labels_away_with_leader_lines() -> None:
    root = parse_svg(chart_svg(crowded_scatter(12)))
    leaders = [line for line in root.iter(f"{SVG}line") if line.get("class") == "leader"]
    assert leaders  # twelve labels around nearly one spot: some must move away


def test_engines_keep_their_colour_and_other_series_do_not_clash() -> None:
    colours = series_colours(["tensorrt_fp16", "latency", "onnxruntime_cpu", "accuracy"])
    assert colours["tensorrt_fp16"] == ENGINE_COLOURS["tensorrt_fp16"]
    assert colours["onnxruntime_cpu"] == ENGINE_COLOURS["onnxruntime_cpu"]
    assert len(set(colours.values())) == 4


# ---------------------------------------------------------------------------- charts


def test_bar_chart_has_legend_whiskers_threshold_and_units() -> None:
    root = parse_svg(chart_svg(latency_chart()))
    shown = texts(root)
    assert {
        "onnxruntime_cpu",
        "onnxruntime_cpu_int8",
        "p95 latency (ms)",
        "p95 \u2264 20 ms",
    } <= set(shown)
    assert {"batch 1", "batch 8"} <= set(shown)
    whiskers = [line for line in root.iter(f"{SVG}line") if line.get("class") == "whisker"]
    assert len(whiskers) == 4 * 3  # four bars, each a stem and two caps
    dashed = [line for line in root.iter(f"{SVG}line") if line.get("stroke-dasharray")]
    assert len(dashed) == 1
    tick_labels = [
        "".join(text.itertext())
        for text in root.iter(f"{SVG}text")
        if text.get("text-anchor") == "end" and text.get("fill") == "#52606D"
    ]
    ticks = [float(label.replace(",", "")) for label in tick_labels]
    steps = {b - a for a, b in itertools.pairwise(ticks)}
    assert ticks[0] == 0.0 and len(ticks) >= 4 and len(steps) == 1 and steps <= {10.0, 20.0, 50.0}


def test_margin_chart_draws_negative_bars_below_zero_with_words() -> None:
    root = parse_svg(chart_svg(margin_chart()))
    shown = texts(root)
    assert shown.count("FAIL") == 1 and shown.count("PASS") == 3
    assert "\u2212120" in shown  # the negative margin, labelled
    zero = next(line for line in root.iter(f"{SVG}line") if line.get("stroke") == "#1F2933")
    bars = [rect for rect in root.iter(f"{SVG}rect") if rect.find(f"{SVG}title") is not None]
    below = [
        bar
        for bar in bars
        if float(bar.get("y", "0")) >= float(zero.get("y1", "0")) and float(bar.get("height", "0"))
    ]
    assert len(bars) == 4 and len(below) == 1


def test_scatter_chart_labels_every_point_and_says_tones_in_words() -> None:
    chart = crowded_scatter()
    root = parse_svg(chart_svg(chart))
    shown = texts(root)
    for point in chart.points[2:]:
        assert point.label in shown
    assert f"{chart.points[0].label} PASS" in shown and f"{chart.points[1].label} FAIL" in shown
    assert "accuracy" in shown and "p95 latency (ms)" in shown


def test_a_lone_point_is_labelled_beside_it_without_a_leader_line() -> None:
    chart = ScatterChart("One", "x", "y", [Point("INT8 CPU, batch 1", 3.0, 96.9, "good")])
    root = parse_svg(chart_svg(chart))
    assert "INT8 CPU, batch 1 PASS" in texts(root)
    assert "ONNX Runtime CPU INT8" in texts(root)  # the short name is known: its engine's key
    assert not [line for line in root.iter(f"{SVG}line") if line.get("class") == "leader"]


def test_a_chart_without_data_says_so() -> None:
    assert "no data to draw" in texts(parse_svg(chart_svg(BarChart("Empty", "ms", ()))))
    assert "no data to draw" in texts(parse_svg(chart_svg(ScatterChart("Empty", "x", "y", ()))))


# ---------------------------------------------------------------------------- the HTML file


def test_html_is_well_formed_and_self_contained() -> None:
    html = render_html(sample_document()).decode("utf-8")
    root = parse_xml(html)  # the markup is XML-clean, DOCTYPE included
    assert root.tag == "html"
    assert html.startswith("<!DOCTYPE html>")
    references = html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in references and "https://" not in references
    assert " src=" not in html and "<link" not in html and "@import" not in html
    assert len(list(root.iter(f"{SVG}svg"))) == 3
    assert "@media print" in html


def test_the_engine_key_shows_each_engine_in_its_fixed_colour() -> None:
    root = parse_xml(render_html(sample_document()).decode("utf-8"))
    key = root.find(".//aside[@class='engine-key']")
    assert key is not None
    items = key.findall("span[@class='key-item']")
    assert ["".join(item.itertext()) for item in items] == [
        "ONNX Runtime CPU FP32",
        "ONNX Runtime CPU INT8",
    ]
    swatches = [item.find("span") for item in items]
    styles = [swatch.get("style") for swatch in swatches if swatch is not None]
    assert styles == [f"background: {ENGINE_COLOURS[engine]}" for engine in ENGINES[:2]]


def test_every_table_cell_is_shown_in_its_place_with_numbers_right_aligned() -> None:
    document = sample_document()
    table = document.sections[1].blocks[0]
    assert isinstance(table, Table)
    root = parse_xml(render_html(document).decode("utf-8"))
    rendered_rows = root.findall(".//table/tbody/tr")
    assert len(rendered_rows) == len(table.rows)
    for rendered, row in zip(rendered_rows, table.rows, strict=True):
        cells = rendered.findall("td")
        assert len(cells) == len(row)
        for cell, text in zip(cells, row, strict=True):
            assert "".join(cell.itertext()).endswith(text)
        assert cells[0].get("class", "").startswith("text")
        assert all(cell.get("class", "").startswith("num") for cell in cells[1:])


def test_tones_are_said_in_words_once() -> None:
    root = parse_xml(render_html(sample_document()).decode("utf-8"))
    rows = root.findall(".//table/tbody/tr")
    assert "".join(rows[0].findall("td")[5].itertext()) == "PASS +35.0%"
    assert "".join(rows[1].findall("td")[5].itertext()) == "FAIL \u221212.0%"
    assert "".join(rows[2].findall("td")[2].itertext()) == "fail"  # already says it: no badge
    callout = root.find(".//p[@class='callout tone-good']")
    assert callout is not None and "".join(callout.itertext()).startswith("PASS ")


def test_text_is_escaped_everywhere() -> None:
    document = sample_document(XHTML_TEXT)
    chart = BarChart(XHTML_TEXT, XHTML_TEXT, [BarGroup(XHTML_TEXT, [Bar(XHTML_TEXT, 1.0)])])
    point = ScatterChart(XHTML_TEXT, "x", "y", [Point(XHTML_TEXT, 1.0, 2.0)], note=XHTML_TEXT)
    document = Document(
        document.title,
        document.subtitle,
        (*document.sections, Section(XHTML_TEXT, (chart, point))),
        document.footer,
    )
    html = render_html(document).decode("utf-8")
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    root = parse_xml(html)
    title = root.find("./head/title")
    assert title is not None and title.text == f"Benchmark report: {XHTML_TEXT}"


def test_same_document_same_bytes_in_another_process() -> None:
    first = render_html(sample_document())
    assert render_html(sample_document()) == first
    script = (
        "import sys; from tests.reports.test_html import sample_document; "
        "from cvplatform.reports.html import render_html; "
        "sys.stdout.buffer.write(render_html(sample_document()))"
    )
    root = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=environment, capture_output=True, check=True
    )
    assert other.stdout == first
