"""The published JSON Schema (draft 2020-12) of a report view's JSON export.

Both views share the envelope (format, view, report identity, model, decision); ``sections`` holds
the technical view's data (metadata, raw results, deltas, constraints, selection, recommendations)
or the simple view's (deployment), chosen by ``view``. Charts are not exported: they are drawn
from ``results``.
"""

from __future__ import annotations

import copy
from typing import Any

from cvplatform.schemas.benchmarks import METRIC_NAMES

SCHEMA_ID = "urn:cv-platform:report:1"

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_STRING_OR_NULL = {"type": ["string", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}


def _object(properties: dict[str, Any], *, closed: bool = True) -> dict[str, Any]:
    """An object whose listed properties are all required (null where not known)."""
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": not closed,
    }


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


_CANDIDATE = {
    "oneOf": [
        {"type": "null"},
        _object(
            {
                "key": {"type": "string"},
                "engine": {"type": "string"},
                "batch_size": {"type": "integer"},
            }
        ),
    ]
}
_KEY_FIGURE = _object(
    {
        "engine": _STRING_OR_NULL,
        "batch_size": _INT_OR_NULL,
        "key": {"type": "string", "description": "a metric name, or speed_vs_reference"},
        "label": {"type": "string"},
        "value": _NUMBER_OR_NULL,
        "unit": {"type": "string"},
        "text": {"type": "string", "description": "the value as the report shows it"},
    }
)
_DECISION = _object(
    {
        "selected": _CANDIDATE,
        "closest": {**_CANDIDATE, "description": "when nothing met every constraint"},
        "objective": {"enum": ["latency", "throughput"]},
        "headline": {"type": "string"},
        "why": {"type": "string"},
        "key_figures": {**_array(_KEY_FIGURE), "maxItems": 5},
    }
)
_RESULT = _object(
    {
        "engine": {"type": "string"},
        "label": {"type": "string"},
        "batch_size": {"type": "integer", "minimum": 1},
        "status": {"enum": ["completed", "failed", "unavailable", "cancelled"]},
        "error": _STRING_OR_NULL,
        "metrics": {
            "type": "object",
            "description": "every metric name; null where not measured",
            "properties": {name: _NUMBER_OR_NULL for name in METRIC_NAMES},
            "required": list(METRIC_NAMES),
            "additionalProperties": _NUMBER_OR_NULL,
        },
        "intervals": {
            "type": "object",
            "description": "95% bootstrap confidence intervals by metric name",
            "additionalProperties": _object(
                {"low": {"type": "number"}, "high": {"type": "number"}}
            ),
        },
        "details": {"type": "object", "description": "as the benchmark stored them"},
    }
)
_CHANGE = _object(
    {
        "metric": {"type": "string"},
        "base": {"type": "number"},
        "value": {"type": "number"},
        "change": {**_NUMBER_OR_NULL, "description": "% (unit %) or a difference (unit pp)"},
        "unit": {"enum": ["%", "pp"]},
        "within_noise": {"type": "boolean"},
    }
)
_DELTA = _object(
    {
        "kind": {"enum": ["engine_vs_reference", "batch_vs_smallest"]},
        "engine": {"type": "string"},
        "batch_size": {"type": "integer"},
        "base_engine": {"type": "string"},
        "base_batch_size": {"type": "integer"},
        "changes": _array(_CHANGE),
        "words": {"type": "string"},
    }
)
_VERDICT = _object(
    {
        "engine": {"type": "string"},
        "batch_size": {"type": "integer"},
        "constraint": {"type": "string"},
        "metric": {"type": "string"},
        "op": {"enum": ["<", "<=", ">", ">="]},
        "threshold": {"type": "number"},
        "measured": _NUMBER_OR_NULL,
        "passed": {"type": ["boolean", "null"], "description": "null: not measured"},
        "margin": _NUMBER_OR_NULL,
        "margin_percent": _NUMBER_OR_NULL,
        "within_noise": {"type": "boolean"},
        "note": {"type": "string"},
    }
)
_STEP = _object(
    {
        "rule": {"type": "string"},
        "kept": _array({"type": "string"}),
        "removed": _array(_object({"candidate": {"type": "string"}, "why": {"type": "string"}})),
        "note": {"type": "string"},
    }
)
_ENGINE = _object(
    {
        "name": {"type": "string"},
        "label": {"type": "string"},
        "precision": _STRING_OR_NULL,
        "device": _STRING_OR_NULL,
        "available": {"type": ["boolean", "null"]},
        "reason": _STRING_OR_NULL,
        "versions": {"type": "object", "additionalProperties": {"type": "string"}},
    }
)
_METADATA = _object(
    {
        "dataset": {"type": ["object", "null"]},
        "training": {"type": ["object", "null"]},
        "benchmark": _object(
            {
                "id": {"type": "string"},
                "started_at": _STRING_OR_NULL,
                "finished_at": _STRING_OR_NULL,
                "duration_s": _NUMBER_OR_NULL,
                "request": {"type": "object"},
                "input_shape": {"type": ["array", "null"], "items": {"type": "integer"}},
                "percentile_method": _STRING_OR_NULL,
                "accuracy_source": _STRING_OR_NULL,
            }
        ),
        "environment": {"type": "object"},
        "engines": _array(_ENGINE),
    }
)
_TECHNICAL = _object(
    {
        "metadata": _METADATA,
        "results": _array(_RESULT),
        "deltas": _array(_DELTA),
        "constraints": _object(
            {
                "given": _array(
                    _object(
                        {
                            "metric": {"type": "string"},
                            "op": {"enum": ["<", "<=", ">", ">="]},
                            "value": {"type": "number"},
                            "text": {"type": "string"},
                        }
                    )
                ),
                "verdicts": _array(_VERDICT),
            }
        ),
        "selection": _object(
            {
                "objective": {"type": "string"},
                "selected": _STRING_OR_NULL,
                "closest": _STRING_OR_NULL,
                "summary": {"type": "string"},
                "steps": _array(_STEP),
                "suggestions": _array({"type": "string"}),
            }
        ),
        "recommendations": {**_array({"type": "string"}), "minItems": 1},
    }
)
_DEPLOYMENT = _object(
    {
        "engine": {"type": "string"},
        "batch_size": {"type": "integer"},
        "package_request": _object(
            {
                "method": {"const": "POST"},
                "path": {"const": "/api/v1/packages"},
                "body": _object(
                    {
                        "model_id": {"type": "string"},
                        "engine": {"type": "string"},
                        "version": {"type": "string"},
                    }
                ),
            }
        ),
        "image": {"type": "string"},
        "docker_build": {"type": "string"},
        "docker_run": {"type": "string"},
    }
)
_SIMPLE = _object({"deployment": {"oneOf": [{"type": "null"}, _DEPLOYMENT]}})


def report_json_schema() -> dict[str, Any]:
    """The JSON Schema of :func:`cvplatform.reports.data_formats.report_json`'s output."""
    envelope = _object(
        {
            "format": {"const": "cv-platform-report"},
            "format_version": {"const": 1},
            "view": {"enum": ["technical", "simple"]},
            "report": _object(
                {
                    "id": {"type": "string"},
                    "created_at": {"type": "string", "description": "ISO 8601, UTC"},
                    "platform_version": {"type": "string"},
                    "title": {"type": "string"},
                    "subtitle": {"type": "string"},
                    "benchmark_id": {"type": "string"},
                }
            ),
            "model": {"type": "object", "required": ["id", "name", "source_sha256"]},
            "decision": _DECISION,
            "sections": {"type": "object"},
        }
    )
    by_view = [
        {
            "if": {"properties": {"view": {"const": view}}},
            "then": {"properties": {"sections": sections}},
        }
        for view, sections in (("technical", _TECHNICAL), ("simple", _SIMPLE))
    ]
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "cv-platform report view",
        "description": (
            "One view of a benchmark report: canonical JSON (sorted keys, floats to 6 significant "
            "digits). Names are as stored (engine and metric names), beside labels people read."
        ),
        **envelope,
        "allOf": by_view,
    }
    return copy.deepcopy(schema)  # the parts are shared module constants: hand out a copy
