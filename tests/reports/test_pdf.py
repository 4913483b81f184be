"""The PDF renderer: valid, deterministic across renders and processes, tables that span pages.

Documents are built by hand here (the content module has its own tests), shaped like the
technical view: key figures, a raw metrics table wider than a portrait page, charts of every kind.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from reportlab.platypus import LongTable
from reportlab.platypus import Paragraph as PdfParagraph

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
)
from cvplatform.reports.pdf import render_pdf
from cvplatform.reports.pdf_charts import bar_chart_drawing, nice_axis
from cvplatform.reports.pdf_scatter import scatter_chart_drawing
from cvplatform.reports.pdf_tables import column_widths, data_table

pytestmark = pytest.mark.unit

ENGINES = ("onnxruntime_cpu", "onnxruntime_cpu_int8", "onnxruntime_cuda", "tensorrt_fp16")
RAW_COLUMNS = (
    "engine", "batch", "status", "mean (ms)", "p50 (ms)", "p95 (ms)", "p99 (ms)", "min (ms)",
    "max (ms)", "std (ms)", "p95 95% CI (ms)", "throughput (img/s)", "throughput 95% CI",
    "CPU %", "host memory (MB)", "GPU %", "VRAM (MB)", "setup (s)", "cold run (ms)",
    "accuracy", "accuracy drop (pp)", "agreement",
)  # fmt: skip


def _raw_row(engine: str, batch: int) -> list[str]:
    if engine in ("onnxruntime_cuda", "tensorrt_fp16"):
        reason = "unavailable: no NVIDIA GPU on this machine (NVML could not start)"
        return [engine, str(batch), reason, *([""] * (len(RAW_COLUMNS) - 3))]
    base = 19.6 if engine == "onnxruntime_cpu" else 12.1
    p50 = base * batch * 0.62
    rate = 1000 * batch / p50
    latencies = [f"{p50 * factor:.2f}" for factor in (1.02, 1.0, 1.1, 1.3, 0.9, 1.6)]
    int8 = engine.endswith("int8")
    return [
        engine, str(batch), "ok", *latencies, f"{base * 0.05:.2f}",
        f"[{p50 * 1.05:.2f}, {p50 * 1.15:.2f}]", f"{rate:.1f}",
        f"[{rate * 0.9:.1f}, {rate * 1.1:.1f}]", "181.0", "412", "", "", "0.84",
        f"{base * 3:.1f}", "0.9611" if int8 else "0.9722", "1.11" if int8 else "0.00", "0.9833",
    ]  # fmt: skip


def _latency_chart() -> BarChart:
    groups = []
    for batch in (1, 8):
        p95s = {"onnxruntime_cpu": 13.37 * batch * 0.8, "onnxruntime_cpu_int8": 8.25 * batch * 0.8}
        bars = [Bar(engine, p95, low=p95, high=p95 * 1.18) for engine, p95 in p95s.items()]
        groups.append(BarGroup(f"batch {batch}", bars))
    return BarChart(
        "p95 latency by engine and batch size",
        "latency (ms)",
        groups,
        thresholds=(Threshold("p95 ≤ 80 ms", 80.0),),
        note="Bars show p95; whiskers run from p95 to p99.",
    )


def _margin_chart() -> BarChart:
    groups = [
        BarGroup(
            f"{engine} b{batch}",
            [
                Bar("p95 latency", 40.0 - 10 * batch, tone="good" if batch == 1 else "bad"),
                Bar("throughput", -15.0 + 5 * batch, tone="bad" if batch == 1 else "good"),
                Bar("accuracy drop", 12.0, tone="good"),
            ],
        )
        for engine in ENGINES[:2]
        for batch in (1, 8)
    ]
    return BarChart(
        "Constraint margins", "margin (%)", groups, note="Above 0: the constraint holds."
    )


def _scatter() -> ScatterChart:
    points = [
        Point("onnxruntime_cpu b1", 51.0, 97.22, tone="good"),
        Point("onnxruntime_cpu b8", 62.0, 97.22),
        Point("onnxruntime_cpu_int8 b1", 82.6, 96.11),
        Point("onnxruntime_cpu_int8 b8", 88.0, 96.11, tone="bad"),
    ]
    return ScatterChart(
        "Accuracy against speed", "throughput (images/s)", "top-1 accuracy (%)", points,
        note="Up and to the right is better.",
    )  # fmt: skip


def sample_document(raw_rows: int | None = None) -> Document:
    """A technical-view-like document; ``raw_rows`` repeats the raw table's rows that many
    times over (to make it span pages)."""
    rows = [_raw_row(engine, batch) for engine in ENGINES for batch in (1, 8)]
    if raw_rows is not None:
        rows = [rows[index % len(rows)] for index in range(raw_rows)]
    constraints = Table(
        ("constraint", "candidate", "limit", "measured", "margin", "result", "within noise"),
        [
            ("p95 latency", "onnxruntime_cpu b1", "≤ 80 ms", "21.56 ms", "+73.1%", "pass", "no"),
            ("p95 latency", "onnxruntime_cpu b8", "≤ 80 ms", "107.3 ms", "-34.1%", "fail", "no"),
            ("accuracy drop", "onnxruntime_cpu_int8 b1", "≤ 1.0 pp", "1.11 pp", "-11.0%",
             "fail", "yes: the difference is inside the 95% interval"),
        ],
        align=("left", "left", "right", "right", "right", "left", "left"),
        tones=(
            ("neutral",) * 4 + ("good", "good", "neutral"),
            ("neutral",) * 4 + ("bad", "bad", "neutral"),
            ("neutral",) * 4 + ("bad", "bad", "warning"),
        ),
        caption="Every constraint against every candidate",
    )  # fmt: skip
    return Document(
        title="Benchmark report: resnet18-digits <v3> & friends",
        subtitle="Technical view · report rpt-0001 · created 2025-01-02 03:04:05 UTC",
        sections=(
            Section("Summary", (
                Paragraph("onnxruntime_cpu at batch 1 meets every constraint: p95 21.6 ms "
                          "against a limit of 80 ms.", tone="good"),
                Paragraph("INT8 costs 1.11 points of accuracy, more than the 1.0 allowed.",
                          tone="bad"),
                KeyValues((("selected", "onnxruntime_cpu, batch 1"), ("p95 latency", "21.56 ms"),
                           ("model checksum", "sha256:" + "ab12" * 16))),
            )),
            Section("Results", (Table(RAW_COLUMNS, rows, caption="Raw metrics"),)),
            Section("Charts", (_latency_chart(), _margin_chart(), _scatter())),
            Section("Constraints", (constraints,)),
            Section("Recommendations", (
                BulletList(("Batching pays: batch 8 gives 1.6x the throughput of batch 1.",
                            "A GPU would help: the CUDA and TensorRT engines were unavailable.")),
                BulletList(("Build the image.", "Run it."), ordered=True),
            )),
        ),
        footer="cv-platform · report rpt-0001 · resnet18-digits",
        legend=("PASS / FAIL: the constraint holds / does not hold.",),
    )  # fmt: skip


def _page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


def _content_streams(pdf: bytes) -> list[bytes]:
    """The decoded drawing operators of each page, in order (reportlab's ASCII85 + Flate)."""
    pattern = rb"/Filter \[ /ASCII85Decode /FlateDecode \][^>]*>>\s*stream\r?\n(.*?)endstream"
    return [
        zlib.decompress(base64.a85decode(match.group(1).strip(), adobe=True))
        for match in re.finditer(pattern, pdf, re.DOTALL)
    ]


def test_renders_a_pdf_with_the_document_metadata() -> None:
    pdf = render_pdf(sample_document())
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert b"/Title (Benchmark report: resnet18-digits <v3> & friends)" in pdf
    # Title block and summary on one portrait page, the wide raw table on a landscape one.
    assert b"/MediaBox [ 0 0 595.2756 841.8898 ]" in pdf
    assert b"/MediaBox [ 0 0 841.8898 595.2756 ]" in pdf


def test_two_renders_give_identical_bytes() -> None:
    assert render_pdf(sample_document()) == render_pdf(sample_document())


def test_a_render_in_another_process_gives_the_same_bytes(tmp_path: Path) -> None:
    out = tmp_path / "other.pdf"
    script = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[2]);"
        "from tests.reports.test_pdf import sample_document;"
        "from cvplatform.reports.pdf import render_pdf;"
        "Path(sys.argv[1]).write_bytes(render_pdf(sample_document()))"
    )
    root = Path(__file__).resolve().parents[2]
    # Another hash seed too: no set or dict order may leak into the bytes.
    environment = {**os.environ, "PYTHONHASHSEED": "4242"}
    subprocess.run(
        [sys.executable, "-c", script, str(out), str(root)],
        check=True,
        cwd=tmp_path,
        env=environment,
        timeout=60,
    )
    assert out.read_bytes() == render_pdf(sample_document())


def test_a_table_of_200_rows_spans_pages_with_its_header_on_each() -> None:
    short = _page_count(render_pdf(sample_document(raw_rows=4)))
    long_pdf = render_pdf(sample_document(raw_rows=200))
    # 200 rows of 7 pt type are several landscape pages more than 4 rows.
    assert _page_count(long_pdf) >= short + 4
    pages_with_header = [page for page in _content_streams(long_pdf) if b"(agreement)" in page]
    assert len(pages_with_header) >= 5
    # Every page of the table shows rows too, not the header alone.
    assert all(page.count(b"(onnxruntime_cpu)") >= 2 for page in pages_with_header)


def test_every_page_says_its_number_of_the_total_and_the_footer() -> None:
    pdf = render_pdf(sample_document(raw_rows=60))
    pages = _content_streams(pdf)
    assert len(pages) == _page_count(pdf) >= 3
    for number, page in enumerate(pages, start=1):
        assert f"(page {number} of {len(pages)})".encode() in page
        assert rb"(cv-platform \267 report rpt-0001" in page  # "·" is octal 267 in WinAnsi


def test_only_built_in_fonts_are_used() -> None:
    fonts = set(re.findall(rb"/BaseFont /([\w-]+)", render_pdf(sample_document())))
    assert fonts <= {b"Helvetica", b"Helvetica-Bold", b"Helvetica-Oblique"}


def test_different_documents_give_different_bytes() -> None:
    changed = sample_document()
    other = Document(changed.title + " (2)", changed.subtitle, changed.sections, changed.footer)
    assert render_pdf(other) != render_pdf(changed)


def test_tables_repeat_their_header_and_wrap_long_cells_inside_the_frame() -> None:
    long_text = "unavailable: <b>no</b> NVIDIA GPU & no driver " * 4
    block = Table(RAW_COLUMNS, [[*_raw_row("onnxruntime_cpu", 1)[:2], long_text, *[""] * 19]])
    flowables = data_table(block, 480.0)
    table = next(f for f in flowables if isinstance(f, LongTable))
    assert table.repeatRows == 1
    width, _ = table.wrap(480.0, 800.0)
    assert width <= 480.0 + 0.01
    (status,) = table._cellvalues[1][2]  # reportlab holds flowable cells as a tuple
    assert isinstance(status, PdfParagraph)  # too long for one line: it wraps
    assert "&lt;b&gt;" in status.text  # cell text is text, never markup
    assert table._cellvalues[1][1] == "1"  # short cells stay plain strings


def test_empty_parts_still_render() -> None:
    document = Document(
        title="Empty",
        subtitle="",
        sections=(
            Section("Nothing", ()),
            Section("Empty blocks", (
                Table(("engine", "p95 (ms)"), ()), KeyValues(()), BulletList(()),
                BarChart("No bars", "latency (ms)", ()),
                BarChart("Unmeasured", "latency (ms)", (
                    BarGroup("batch 1", (Bar("onnxruntime_cpu", float("nan")),)),
                )),
                ScatterChart("No points", "x", "y", ()),
            )),
        ),
    )  # fmt: skip
    assert render_pdf(document).startswith(b"%PDF-")


def test_wide_tables_fit_the_frame_and_keep_their_longest_words() -> None:
    table = Table(RAW_COLUMNS, [_raw_row("onnxruntime_cpu", 1)])
    widths = column_widths(table, 7.0, 500.0)
    assert sum(widths) == pytest.approx(500.0)
    narrow = Table(("engine", "p95 (ms)"), [("onnxruntime_cpu", "21.56")])
    narrow_widths = column_widths(narrow, 8.5, 500.0)
    assert sum(narrow_widths) < 250  # a two-column table is not stretched to the margins
    assert narrow_widths[0] > narrow_widths[1]


@pytest.mark.parametrize(
    ("low", "high", "ticks", "labels"),
    [
        (0.0, 87.3, (0.0, 20.0, 40.0, 60.0, 80.0, 100.0), ("0", "20", "40", "60", "80", "100")),
        (-34.1, 73.1, (-50.0, -25.0, 0.0, 25.0, 50.0, 75.0), ("-50", "-25", "0", "25")),
        (0.0, 1.2, (0.0, 0.25, 0.5, 0.75, 1.0, 1.25), ("0", "0.25", "0.50", "0.75")),
        (0.955, 0.975, (0.955, 0.96, 0.965, 0.97, 0.975), ("0.955", "0.960", "0.965")),
    ],
)
def test_axis_ticks_are_round_numbers(
    low: float, high: float, ticks: tuple[float, ...], labels: tuple[str, ...]
) -> None:
    axis = nice_axis(low, high)
    assert axis.ticks == ticks
    assert tuple(axis.label(tick) for tick in axis.ticks)[: len(labels)] == labels


def test_bar_chart_draws_whiskers_thresholds_and_tone_words() -> None:
    drawing = bar_chart_drawing(_latency_chart(), 480)
    texts = [getattr(shape, "text", "") for shape in drawing.getContents()]
    assert "p95 <= 80 ms" in texts  # the threshold's label, in glyphs Helvetica has
    assert {"batch 1", "batch 8", "onnxruntime_cpu", "onnxruntime_cpu_int8"} <= set(texts)
    dashed = [s for s in drawing.getContents() if getattr(s, "strokeDashArray", None)]
    assert len(dashed) == 1
    margins = [
        getattr(s, "text", "") for s in bar_chart_drawing(_margin_chart(), 480).getContents()
    ]
    assert margins.count("PASS") == 8
    assert margins.count("FAIL") == 4


def test_scatter_labels_say_the_tone_in_words_and_do_not_overlap() -> None:
    drawing = scatter_chart_drawing(_scatter(), 480)
    labels = [s for s in drawing.getContents() if getattr(s, "text", "").startswith("onnx")]
    assert [label.text for label in labels] == [
        "onnxruntime_cpu b1 (PASS)",
        "onnxruntime_cpu b8",
        "onnxruntime_cpu_int8 b1",
        "onnxruntime_cpu_int8 b8 (FAIL)",
    ]
    boxes = [label.getBounds() for label in labels]
    for index, box in enumerate(boxes):
        for other in boxes[index + 1 :]:
            assert not (box[0] < other[2] and other[0] < box[2] and box[1] < other[3]
                        and other[1] < box[3])  # fmt: skip
