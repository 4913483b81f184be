"""A view's content as plain data, for the JSON and CSV exports.

The same facts the documents are built from, with numbers as numbers (not formatted text), names
as stored (engine names, metric names) next to the labels people read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cvplatform.reports.decision import KeyFigure, decision_key, headline, key_figures, why_text
from cvplatform.reports.deltas import Delta, batch_deltas, engine_deltas
from cvplatform.reports.facts import ReportFacts, constraint_words, split_key
from cvplatform.reports.inputs import ResultRow
from cvplatform.reports.recommendations import recommendations
from cvplatform.reports.simple import deployment
from cvplatform.schemas.benchmarks import METRIC_NAMES

FORMAT_NAME = "cv-platform-report"
FORMAT_VERSION = 1


def report_data(facts: ReportFacts, view: str, title: str, subtitle: str) -> dict[str, Any]:
    report = facts.report
    sections = technical_sections(facts) if view == "technical" else simple_sections(facts)
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "view": view,
        "report": {
            "id": report.report_id,
            "created_at": report.created_at,
            "platform_version": report.platform_version,
            "title": title,
            "subtitle": subtitle,
            "benchmark_id": report.benchmark.id,
        },
        "model": report.model.model_dump(mode="json"),
        "decision": decision_data(facts),
        "sections": sections,
    }


def decision_data(facts: ReportFacts) -> dict[str, Any]:
    head, _ = headline(facts)
    return {
        "selected": _candidate(facts.selected),
        "closest": _candidate(facts.closest),
        "objective": facts.objective,
        "headline": head,
        "why": why_text(facts),
        "key_figures": [figure_data(facts, f) for f in key_figures(facts)],
    }


def figure_data(facts: ReportFacts, figure: KeyFigure) -> dict[str, Any]:
    key = decision_key(facts)
    engine, batch_size = split_key(key) if key else (None, None)
    return {
        "engine": engine,
        "batch_size": batch_size,
        "key": figure.key,
        "label": figure.label,
        "value": figure.value,
        "unit": figure.unit,
        "text": figure.text,
    }


def technical_sections(facts: ReportFacts) -> dict[str, Any]:
    report = facts.report
    benchmark = report.benchmark
    result = benchmark.result
    return {
        "metadata": {
            "dataset": None if report.dataset is None else report.dataset.model_dump(mode="json"),
            "training": None
            if report.training is None
            else report.training.model_dump(mode="json"),
            "benchmark": {
                "id": benchmark.id,
                "started_at": benchmark.started_at,
                "finished_at": benchmark.finished_at,
                "duration_s": result.get("duration_s"),
                "request": benchmark.request,
                "input_shape": result.get("input_shape"),
                "percentile_method": result.get("percentile_method"),
                "accuracy_source": result.get("accuracy_source"),
            },
            "environment": result.get("environment") or {},
            "engines": [_engine(facts, engine) for engine in facts.engines],
        },
        "results": [result_data(facts, row) for row in facts.rows],
        "deltas": [delta_data(d) for d in (*engine_deltas(facts), *batch_deltas(facts))],
        "constraints": {
            "given": [
                {"metric": c.metric, "op": c.op, "value": c.value, "text": constraint_words(c)}
                for c in facts.constraints
            ],
            "verdicts": verdict_rows(facts),
        },
        "selection": {
            "objective": facts.objective,
            "selected": facts.selected,
            "closest": facts.closest,
            "summary": facts.summary,
            "steps": [
                {
                    "rule": step.rule,
                    "kept": list(step.kept),
                    "removed": [{"candidate": key, "why": why} for key, why in step.removed],
                    "note": step.note,
                }
                for step in facts.steps
            ],
            "suggestions": list(facts.suggestions),
        },
        "recommendations": list(recommendations(facts)),
    }


def simple_sections(facts: ReportFacts) -> dict[str, Any]:
    plan = deployment(facts)
    return {
        "deployment": None
        if plan is None
        else {
            "engine": plan.engine,
            "batch_size": plan.batch_size,
            "package_request": {
                "method": "POST",
                "path": "/api/v1/packages",
                "body": plan.package_request,
            },
            "image": plan.image,
            "docker_build": plan.docker_build,
            "docker_run": plan.docker_run,
        }
    }


def result_data(facts: ReportFacts, row: ResultRow) -> dict[str, Any]:
    """One engine at one batch size: every metric name present (null: not measured)."""
    return {
        "engine": row.engine,
        "label": facts.label(row.engine),
        "batch_size": row.batch_size,
        "status": row.status,
        "error": row.error,
        "metrics": {name: row.metrics.get(name) for name in _metric_names(row)},
        "intervals": {
            name: {"low": low, "high": high} for name, (low, high) in sorted(row.intervals.items())
        },
        "details": row.details,
    }


def delta_data(delta: Delta) -> dict[str, Any]:
    return {
        "kind": delta.kind,
        "engine": delta.engine,
        "batch_size": delta.batch_size,
        "base_engine": delta.base_engine,
        "base_batch_size": delta.base_batch_size,
        "changes": [
            {
                "metric": c.metric,
                "base": c.base,
                "value": c.value,
                "change": c.change,
                "unit": c.unit,
                "within_noise": c.within_noise,
            }
            for c in delta.changes
        ],
        "words": delta.words,
    }


VERDICT_FIELDS = (
    "constraint",
    "metric",
    "op",
    "threshold",
    "measured",
    "passed",
    "margin",
    "margin_percent",
    "within_noise",
    "note",
)


def verdict_rows(facts: ReportFacts) -> list[dict[str, Any]]:
    """Every constraint x candidate, by candidate then constraint as requested."""
    rows = []
    for key, verdicts in facts.verdicts.items():
        engine, batch_size = split_key(key)
        for verdict in verdicts:
            fields = {name: verdict.get(name) for name in VERDICT_FIELDS}
            rows.append({"engine": engine, "batch_size": batch_size, **fields})
    return rows


def _metric_names(row: ResultRow) -> list[str]:
    # Every known metric, then any the row has beyond them (a newer benchmark), by name.
    extra = sorted(name for name in row.metrics if name not in METRIC_NAMES)
    return [*METRIC_NAMES, *extra]


def _candidate(key: str | None) -> dict[str, Any] | None:
    if key is None:
        return None
    engine, batch_size = split_key(key)
    return {"key": key, "engine": engine, "batch_size": batch_size}


def _engine(facts: ReportFacts, engine: str) -> dict[str, Any]:
    info: Mapping[str, Any] = facts.engine_info(engine)
    return {
        "name": engine,
        "label": facts.label(engine),
        "precision": info.get("precision"),
        "device": info.get("device"),
        "available": info.get("available"),
        "reason": info.get("reason"),
        "versions": info.get("versions") or {},
    }
