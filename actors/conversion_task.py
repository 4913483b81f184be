"""The Ray shells for models: the conversion task (CPU) and preset registration.

Both are plain functions run with ``ray.remote(...)`` where they are submitted; the work is in
:mod:`actors.models`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import traceback
import uuid
from pathlib import Path
from typing import Any

import ray

from actors.models.conversion import ConversionRequest, convert
from actors.supervision import run_watched, submit_supervised
from cvplatform.archives import ExtractLimits
from cvplatform.config import Settings
from cvplatform.errors import ConversionFailed, InvalidModel
from cvplatform.jsonlog import configure_logging
from store import queries
from store.actor import StoreClient
from store.artifacts import CHUNK_BYTES, write_artifact
from store.connections import reading

log = logging.getLogger("cvp.conversion")


def _prepare_process(settings: Settings) -> None:
    configure_logging(settings, f"worker-{os.getpid()}")
    # ultralytics keeps settings in the user's home unless told otherwise, and must not go online.
    os.environ.setdefault("YOLO_CONFIG_DIR", str(settings.data_dir / "ultralytics"))
    os.environ.setdefault("YOLO_OFFLINE", "1")


def _file_chunks(path: Path) -> Any:
    with path.open("rb") as source:
        while chunk := source.read(CHUNK_BYTES):
            yield chunk


def _request_for(settings: Settings, model: dict[str, Any]) -> ConversionRequest:
    graph = model["details"].get("graph_names", {})
    return ConversionRequest(
        source_path=settings.artifacts_dir / model["source"]["path"],
        source_format=model["source_format"],
        task_type=model["task_type"],
        architecture=model["architecture"],
        num_classes=model["num_classes"],
        input_shape=model["input_shape"],
        graph_inputs=graph.get("inputs", []),
        graph_outputs=graph.get("outputs", []),
        extract_limits=ExtractLimits(settings.max_extract_bytes, settings.max_extract_ratio),
    )


def run_conversion(settings: Settings, model_id: str) -> str:
    """Convert one model and record the outcome; returns the model's final status."""
    _prepare_process(settings)
    store = StoreClient()
    with reading(settings.db_path) as reader:
        model = queries.model_by_id(reader, model_id)
    if model is None:
        return "deleted"
    store.call_sync("set_model_status", model_id=model_id, status="converting")
    settings.staging_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.staging_dir) as workdir:
        try:
            result = convert(_request_for(settings, model), Path(workdir))
        except InvalidModel as error:
            return _end(store, model_id, "invalid", error.message)
        except ConversionFailed as error:
            return _end(store, model_id, "failed", error.message)
        except Exception as error:
            log.error("conversion of %s crashed:\n%s", model_id, traceback.format_exc())
            return _end(store, model_id, "failed", f"the conversion crashed: {error}")
        onnx = None
        if result.onnx_path is not None:
            stored = write_artifact(
                settings.artifacts_dir,
                f"models/{model_id}/model.onnx",
                _file_chunks(result.onnx_path),
            )
            onnx = {
                "path": stored.relative_path,
                "sha256": stored.sha256,
                "size_bytes": stored.size_bytes,
            }
    store.call_sync("finish_conversion", model_id=model_id, onnx=onnx, details=result.details)
    log.info("model %s is ready", model_id)
    return "ready"


def _end(store: StoreClient, model_id: str, status: str, reason: str) -> str:
    log.warning("model %s is %s: %s", model_id, status, reason)
    store.call_sync("set_model_status", model_id=model_id, status=status, reason=reason)
    return status


def supervise_conversion(settings: Settings, model_id: str) -> str:
    """Run the conversion; the model ends in a final status even if its process dies."""

    def record_death(reason: str) -> None:
        StoreClient().call_sync(
            "set_model_status",
            model_id=model_id,
            status="failed",
            reason=f"the conversion failed: {reason}",
        )

    # max_calls=1: a fresh process per conversion. TensorFlow and PyTorch loaded into one
    # process can crash each other's native code, and a conversion's memory is given back.
    return run_watched(
        run_conversion,
        (settings, model_id),
        f"convert-model-{model_id[:8]}",
        record_death,
        num_cpus=1,
        max_calls=1,
    )


def submit_conversion(settings: Settings, model_id: str) -> Any:
    """Start the conversion on a CPU worker; returns at once (the model's status tells the rest)."""
    return submit_supervised(
        supervise_conversion, (settings, model_id), f"supervise-conversion-{model_id[:8]}"
    )


def register_presets(settings: Settings) -> list[str]:
    """Register the configured presets that are not registered yet, and convert them.

    Idempotent: a preset is created once, whoever asks first. Returns the ids it created.
    """
    from actors.models.presets import PRESETS, preset_weights

    _prepare_process(settings)
    store = StoreClient()
    created = []
    for key in settings.preset_names:
        preset = PRESETS[key]
        with reading(settings.db_path) as reader:
            exists = reader.execute("SELECT 1 FROM models WHERE preset = ?", [key]).fetchone()
        if exists:
            continue
        weights = preset_weights(preset, settings.weights_dir)
        model_id = uuid.uuid4().hex
        stored = write_artifact(
            settings.artifacts_dir, f"models/{model_id}/source.pth", [weights.state_dict_bytes]
        )
        details = {"weights_note": weights.note} if weights.note else {}
        row = store.call_sync(
            "create_model",
            model={
                "id": model_id,
                "name": preset.name,
                "description": preset.description,
                "framework": "pytorch",
                "source_format": "torch_state_dict",
                "task_type": preset.task_type,
                "architecture": preset.architecture,
                "num_classes": preset.num_classes,
                "input_shape": json_list(preset.input_shape),
                "preset": key,
                "weights_origin": weights.origin,
                "source_filename": f"{key}.pth",
                "details": details,
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
        submit_conversion(settings, model_id)
        created.append(model_id)
    return created


def json_list(values: tuple[int, ...] | list[int]) -> str:
    import json

    return json.dumps(list(values))


def start_model_work(settings: Settings) -> None:
    """At platform start: resume conversions cut short by a stop, then register the presets."""
    with reading(settings.db_path) as reader:
        pending = queries.models_awaiting_conversion(reader)
    for model_id in pending:
        submit_conversion(settings, model_id)
    if settings.preset_names:
        ray.remote(num_cpus=1, max_retries=0, max_calls=1)(register_presets).options(
            name="register-presets"
        ).remote(settings)
