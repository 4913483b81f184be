"""Running jobs of the kernel in the test's own process: a synchronous store over a real
``StoreWriter``, and a reporter with an in-process fan-out (no Ray)."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from actors.jobs.registry import Job
from actors.jobs.reporter import InProcess, JobReporter
from cvplatform.config import Settings
from cvplatform.errors import InvalidInput
from store.artifacts import write_artifact
from store.writer import StoreWriter, sqlite_errors_translated


class WriterStore:
    """The store actor's synchronous contract (``call_sync``) over a writer in this process."""

    def __init__(self, writer: StoreWriter) -> None:
        self.writer = writer
        self.calls: Counter[str] = Counter()

    def call_sync(self, operation: str, timeout_s: float | None = 60.0, **kwargs: Any) -> Any:
        if operation not in StoreWriter.OPERATIONS:
            raise InvalidInput(f"the store has no operation {operation!r}")
        self.calls[operation] += 1
        with sqlite_errors_translated():
            return getattr(self.writer, operation)(**kwargs)


class Submitted(list[Job]):
    """Jobs a job started: recorded for the test, which may run them itself."""

    def __call__(self, job: Job) -> object:
        self.append(job)
        return None


def settings_in(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(**{"data_dir": data_dir, "presets": "", "samples": "", **overrides})


def reporter_for(
    settings: Settings, job: Job, store: WriterStore, submitted: Submitted | None = None
) -> JobReporter:
    return JobReporter(settings, job, store, fan_out=InProcess(), submit=submitted)


def ready_onnx_model(
    settings: Settings, store: WriterStore, onnx_file: Path, task_type: str = "classification"
) -> str:
    """An uploaded ONNX model, made ``ready`` as its conversion would (its real summary)."""
    from actors.models.onnx_inspect import inspect_onnx

    model_id = uuid.uuid4().hex
    stored = write_artifact(
        settings.artifacts_dir, f"models/{model_id}/source.onnx", [onnx_file.read_bytes()]
    )
    store.writer.create_model(
        {
            "id": model_id,
            "name": onnx_file.stem,
            "framework": "onnx",
            "source_format": "onnx",
            "task_type": task_type,
            "weights_origin": "uploaded",
            "source_filename": onnx_file.name,
        },
        {"path": stored.relative_path, "sha256": stored.sha256, "size_bytes": stored.size_bytes},
    )
    store.writer.finish_conversion(model_id, None, {"summary": inspect_onnx(onnx_file)})
    return model_id
