"""The model jobs on the kernel: converting an upload to ONNX, and registering the presets.

``run_conversion`` is plain code; the kernel runs it in a fresh process (see
:mod:`actors.jobs.registry`) and ``end_conversion`` writes how it ended onto the model.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from actors.jobs.registry import Job, Outcome
from actors.jobs.reporter import JobReporter
from cvplatform.archives import ExtractLimits
from cvplatform.config import Settings
from cvplatform.errors import ConversionFailed, InvalidModel
from store import queries
from store.artifacts import CHUNK_BYTES
from store.records import ModelRecord


def conversion_job(model_id: str) -> Job:
    return Job(kind="conversion", subject_id=model_id, name=f"convert-model-{model_id[:8]}")


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(CHUNK_BYTES):
            yield chunk


def _conversion_request(settings: Settings, model: ModelRecord) -> Any:
    from actors.models.conversion import ConversionRequest

    graph = model.details.get("graph_names", {})
    return ConversionRequest(
        source_path=settings.artifacts_dir / model.source.path,
        source_format=model.source_format,
        task_type=model.task_type,
        architecture=model.architecture,
        num_classes=model.num_classes,
        input_shape=model.input_shape,
        graph_inputs=graph.get("inputs", []),
        graph_outputs=graph.get("outputs", []),
        extract_limits=ExtractLimits(settings.max_extract_bytes, settings.max_extract_ratio),
    )


def run_conversion(job: Job, reporter: JobReporter) -> Outcome:
    """Convert one model to ONNX and check it in a sandboxed process of its own; the ONNX file
    is written as an artifact."""
    from actors.models.sandbox_run import convert_in_sandbox

    settings, model_id = reporter.settings, job.subject_id
    model = queries.model_by_id(reporter.reader, model_id)
    if model is None:
        return Outcome("skipped", "the model was deleted before its conversion started")
    reporter.ops.set_model_status(model_id=model_id, status="converting")
    settings.staging_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.staging_dir) as workdir:
        try:
            converted = convert_in_sandbox(
                _conversion_request(settings, model), Path(workdir), settings
            )
        except InvalidModel as error:
            return Outcome("invalid", error.message)
        except ConversionFailed as error:
            return Outcome.failed(error.message)
        onnx = None
        if converted.onnx_path is not None:
            stored = reporter.write_artifact(
                f"models/{model_id}/model.onnx", _file_chunks(converted.onnx_path)
            )
            onnx = {
                "path": stored.relative_path,
                "sha256": stored.sha256,
                "size_bytes": stored.size_bytes,
            }
    return Outcome("ready", result={"onnx": onnx, "details": converted.details})


def end_conversion(job: Job, outcome: Outcome, reporter: JobReporter) -> None:
    reporter.log_end(outcome)
    if outcome.status == "ready":
        reporter.ops.finish_conversion(
            model_id=job.subject_id,
            onnx=outcome.result["onnx"],
            details=outcome.result["details"],
        )
        return
    reporter.ops.set_model_status(
        model_id=job.subject_id, status=outcome.status, reason=outcome.reason
    )


def register_presets(job: Job, reporter: JobReporter) -> Outcome:
    """Register the configured presets not registered yet, and submit their conversions.

    Idempotent: a preset is created once, whoever asks first.
    """
    from actors.models.presets import PRESETS, preset_weights

    settings = reporter.settings
    created = []
    for key in settings.preset_names:
        preset = PRESETS[key]
        exists = reporter.reader.execute("SELECT 1 FROM models WHERE preset = ?", [key]).fetchone()
        if exists:
            continue
        weights = preset_weights(preset, settings.weights_dir)
        model_id = uuid.uuid4().hex
        stored = reporter.write_artifact(
            f"models/{model_id}/source.pth", [weights.state_dict_bytes]
        )
        row = reporter.ops.create_model(
            model={
                "id": model_id,
                "name": preset.name,
                "description": preset.description,
                "framework": "pytorch",
                "source_format": "torch_state_dict",
                "task_type": preset.task_type,
                "architecture": preset.architecture,
                "num_classes": preset.num_classes,
                "input_shape": json.dumps(list(preset.input_shape)),
                "preset": key,
                "weights_origin": weights.origin,
                "source_filename": f"{key}.pth",
                "details": {"weights_note": weights.note} if weights.note else {},
            },
            source={
                "path": stored.relative_path,
                "sha256": stored.sha256,
                "size_bytes": stored.size_bytes,
            },
        )
        if row is None:  # registered meanwhile by another process: drop our file
            (settings.artifacts_dir / stored.relative_path).unlink(missing_ok=True)
            continue
        reporter.submit(conversion_job(model_id))
        created.append(model_id)
    return Outcome("completed", result={"created": created})
