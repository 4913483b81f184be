"""The technical view: the decision, then everything it rests on, measured number by number."""

from __future__ import annotations

from cvplatform.reports import charts, tables
from cvplatform.reports import formatting as fmt
from cvplatform.reports.decision import candidate_row, headline, key_figures, why_text
from cvplatform.reports.deltas import batch_deltas, engine_deltas
from cvplatform.reports.document import (
    Block,
    BulletList,
    Document,
    KeyValues,
    Paragraph,
    Section,
    Tone,
)
from cvplatform.reports.facts import REFERENCE_ENGINE, ReportFacts, read_facts
from cvplatform.reports.inputs import ReportInput
from cvplatform.reports.metadata import metadata_blocks
from cvplatform.reports.recommendations import recommendations

_RULE_NAMES = {
    "constraints": "Constraints",
    "objective": "Objective",
    "noise_tie_break": "Tie within noise",
    "closest": "Closest to passing",
}


def technical_view(report: ReportInput) -> Document:
    """Every section of the technical view of ``report``: a pure function of it."""
    facts = read_facts(report)
    return Document(
        title=f"Benchmark report: {report.model.name}",
        subtitle=subtitle("Technical", report),
        sections=(
            Section("Summary", summary_blocks(facts)),
            Section("Metadata", metadata_blocks(facts)),
            Section("Results", _results(facts)),
            Section("Charts", _charts(facts)),
            Section("Deltas", _deltas(facts)),
            Section("Constraints", _constraints(facts)),
            Section("Selection", _selection(facts)),
            Section("Recommendations", (BulletList(recommendations(facts)),)),
        ),
        footer=footer(report),
        legend=legend(facts),
    )


def legend(facts: ReportFacts) -> tuple[str, ...]:
    """The engines drawn in the charts, in the platform's order (renderers colour by it)."""
    measured = {row.engine for row in facts.measured()}
    return tuple(facts.label(engine) for engine in facts.engines if engine in measured)


def key_values(facts: ReportFacts) -> KeyValues | None:
    """The decided candidate and its key figures, or None when nothing was measured."""
    figures = key_figures(facts)
    candidate = candidate_row(facts)
    if not figures or candidate is None:
        return None
    return KeyValues((candidate, *((f.label, f.text) for f in figures)))


def subtitle(view: str, report: ReportInput) -> str:
    created = fmt.timestamp_text(report.created_at)
    return f"{view} view. Created {created}. Report {report.report_id}."


def footer(report: ReportInput) -> str:
    checksum = (report.model.onnx_sha256 or report.model.source_sha256)[:12]
    return (
        f"cv-platform {report.platform_version} | report {report.report_id} | benchmark "
        f"{report.benchmark.id} | model {report.model.name} ({checksum})"
    )


def summary_blocks(facts: ReportFacts) -> tuple[Block, ...]:
    head, tone = headline(facts)
    blocks: list[Block] = [Paragraph(f"{head} {why_text(facts)}", tone)]
    figures = key_values(facts)
    if figures is not None:
        blocks.append(figures)
    return tuple(blocks)


def _results(facts: ReportFacts) -> tuple[Block, ...]:
    measured = len(facts.measured())
    total = len(facts.rows)
    blocks: list[Block] = [
        Paragraph(
            f"{measured} of {fmt.count_text(total, 'engine and batch-size combination')} "
            "were measured. Latency is per batch, around the engine's run call."
        )
    ]
    if measured:
        blocks += [tables.latency_table(facts), tables.throughput_table(facts)]
    accuracy = tables.accuracy_table(facts)
    if accuracy is not None:
        blocks.append(accuracy)
    elif measured:
        source = facts.accuracy_not_measured_because()
        blocks.append(
            Paragraph(f"Accuracy was not measured{f': {source}' if source else ''}.", "warning")
        )
    missing = tables.not_measured_table(facts)
    if missing is not None:
        blocks.append(missing)
    return tuple(blocks)


def _charts(facts: ReportFacts) -> tuple[Block, ...]:
    found = (
        charts.latency_chart(facts),
        charts.throughput_chart(facts),
        charts.accuracy_speed_chart(facts),
        charts.margin_chart(facts),
    )
    blocks = tuple(chart for chart in found if chart is not None)
    return blocks or (Paragraph("Nothing was measured, so there is nothing to chart.", "warning"),)


def _deltas(facts: ReportFacts) -> tuple[Block, ...]:
    blocks: list[Block] = []
    by_engine = engine_deltas(facts)
    if by_engine:
        caption = f"Each engine against {facts.label(REFERENCE_ENGINE)} at the same batch size"
        blocks.append(tables.delta_table(facts, by_engine, by_engine=True, caption=caption))
    else:
        blocks.append(
            Paragraph(
                f"No engine comparison: it needs {facts.label(REFERENCE_ENGINE)} and another "
                "engine completed at the same batch size.",
                "warning",
            )
        )
    by_batch = batch_deltas(facts)
    if by_batch:
        caption = "Each batch size against the smallest measured batch size of the same engine"
        blocks.append(tables.delta_table(facts, by_batch, by_engine=False, caption=caption))
    blocks.append(
        Paragraph(
            "Changes are relative to the base (latency and memory: negative is better; "
            "throughput: positive is better); accuracy is the difference in percentage points. "
            "'(noise)': the two 95% confidence intervals overlap, so the change is not measurable."
        )
    )
    return tuple(blocks)


def _constraints(facts: ReportFacts) -> tuple[Block, ...]:
    if not facts.constraints:
        return (Paragraph("No constraints were given: every measured candidate was eligible."),)
    if not facts.verdicts:
        why = (
            "the benchmark stored no verdicts"
            if facts.measured()
            else "no candidate was measured, so no constraint could be judged"
        )
        return (Paragraph(f"No constraint verdicts: {why}.", "warning"),)
    passing = sum(1 for v in facts.verdicts.values() if all(x.get("passed") is True for x in v))
    tone: Tone = "good" if passing else "bad"
    count = len(facts.verdicts)
    lead = Paragraph(
        f"{passing} of {fmt.count_text(count, 'candidate')} meet every constraint.", tone
    )
    return lead, tables.constraint_table(facts)


def _selection(facts: ReportFacts) -> tuple[Block, ...]:
    steps = [
        f"{_RULE_NAMES.get(step.rule, step.rule)}: {facts.readable(step.note)}."
        for step in facts.steps
    ]
    blocks: list[Block] = []
    if steps:
        blocks.append(BulletList(tuple(steps), ordered=True))
    removed = tables.removed_table(facts)
    if removed is not None:
        blocks.append(removed)
    tone: Tone = "good" if facts.selected is not None else "bad"
    blocks.append(Paragraph(facts.readable(facts.summary), tone))
    return tuple(blocks)
