"""What the inference pool reads about a model before it serves it: the model itself, the
preprocessing it was trained with, its class names and its latest benchmark's engine selection.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlite_utils

from cvplatform.benchmarking.plan import onnx_input_dims
from cvplatform.engines.base import ModelFile
from cvplatform.inference.served import ServingInput
from store import queries
from store.records import ModelRecord, decode_json


def serving_input(
    db: sqlite_utils.Database, artifacts_dir: Path, model_id: str
) -> ServingInput | None:
    """The model as serving needs it; None when no model has this id."""
    model = queries.model_by_id(db, model_id)
    if model is None:
        return None
    dims = onnx_input_dims(model.details.get("summary"))
    selected, benchmark_id = _latest_selection(db, model_id)
    names = model.details.get("class_names")
    return ServingInput(
        model_id=model.id,
        name=model.name,
        status=model.status,
        task_type=model.task_type,
        onnx=None
        if model.onnx is None
        else ModelFile(artifacts_dir / model.onnx.path, model.onnx.sha256),
        # An unnamed dynamic dim (None) reads as a named one: both are "any size".
        input_dims=None if dims is None else tuple("?" if dim is None else dim for dim in dims),
        preprocessing=_trained_preprocessing(db, model),
        class_names=tuple(str(name) for name in names) if isinstance(names, list) else None,
        selected_engine=selected,
        selected_by=benchmark_id,
    )


def _trained_preprocessing(
    db: sqlite_utils.Database, model: ModelRecord
) -> Mapping[str, Any] | None:
    """The size and normalization the model was trained with (its training job's preprocessing);
    None for an uploaded model (its input shape and the task's usual normalization apply)."""
    job_id = model.details.get("job_id")
    job = queries.job_by_id(db, str(job_id)) if job_id else None
    key = (job.result or {}).get("preprocessing_cache_key") if job else None
    prepared = queries.preprocessing_by_key(db, str(key)) if key else None
    if prepared is None:
        return None
    return {
        name: prepared.config[name]
        for name in ("image_size", "mean", "std")
        if name in prepared.config
    }


def _latest_selection(db: sqlite_utils.Database, model_id: str) -> tuple[str | None, str | None]:
    """The engine the model's latest completed benchmark selected, and that benchmark's id."""
    rows = db.query(
        "SELECT id, result FROM jobs WHERE kind = 'benchmark' AND model_id = ? "
        "AND status = 'completed' ORDER BY finished_at DESC, rowid DESC LIMIT 1",
        [model_id],
    )
    for row in rows:
        result = decode_json(row["result"], {})
        selected = result.get("selected") if isinstance(result, dict) else None
        if isinstance(selected, str):
            return selected.split("@", 1)[0], str(row["id"])
        return None, str(row["id"])
    return None, None
