"""A model as the inference pool serves it: which engine runs it, its preprocessing, its class
names, and running several requests' images through it as one batch.

``ServingInput`` is what the store knows about a model (built by ``store.inference_inputs``);
``open_served_model`` turns it into a ``ServedModel`` with an open engine session. The engine is
the one the model's latest benchmark selected, when it can run here, else ONNX Runtime on CUDA
when there is a GPU, else ONNX Runtime on the CPU; the answer says which and why.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cvplatform.clock import to_iso, utc_now
from cvplatform.engines import EngineContext, engine_for
from cvplatform.engines.base import EngineFailed, ModelFile, Session, fixed_size
from cvplatform.errors import Conflict, InvalidModel, NotFound
from cvplatform.inference.preprocessing import PreprocessSpec, spec_for

CPU_ENGINE = "onnxruntime_cpu"
CUDA_ENGINE = "onnxruntime_cuda"


@dataclass(frozen=True)
class ServingInput:
    """What the store knows about a model that serving needs."""

    model_id: str
    name: str
    status: str
    task_type: str
    onnx: ModelFile | None
    input_dims: tuple[int | str, ...] | None  # N, C, H, W; a name is a dynamic dim
    preprocessing: Mapping[str, Any] | None  # {"image_size", "mean", "std"} as training recorded
    class_names: tuple[str, ...] | None
    selected_engine: str | None  # the latest completed benchmark's selection, if any
    selected_by: str | None  # that benchmark's id


@runtime_checkable
class Cancellable(Protocol):
    def cancel(self) -> None: ...


@dataclass
class ServedModel:
    model_id: str
    task_type: str
    engine: str
    engine_reason: str
    spec: PreprocessSpec
    class_names: tuple[str, ...] | None
    session: Session
    fixed_batch: int | None  # the model's batch dimension, when the graph fixes it
    loaded_at: str
    load_seconds: float
    last_used_at: str = field(default="")
    # A second session on every core, for a run that has the replica to itself (see
    # ``runs_alone``); None where the session above has every core already, or on a GPU.
    alone_session: Session | None = None

    def check_tensor(self, tensor: np.ndarray) -> None:
        """Refuse a raw tensor whose C, H, W the model does not take (before it is queued)."""
        expected = (3, self.spec.height, self.spec.width)
        if tuple(tensor.shape[1:]) != expected:
            raise InvalidModel(
                f"the tensor has shape {list(tensor.shape)}; this model takes "
                f"(N, {', '.join(map(str, expected))})"
            )

    def run(self, batch: np.ndarray, max_run: int, alone: bool = False) -> list[np.ndarray]:
        """Run ``batch`` (N, C, H, W) in chunks the model takes; the outputs joined along N.
        ``alone``: on the session of every core, where the model has one."""
        session = self.alone_session if alone and self.alone_session else self.session
        chunk = self.fixed_batch or max_run
        parts = [
            self._run_chunk(session, batch[start : start + chunk])
            for start in range(0, len(batch), chunk)
        ]
        return [np.concatenate([part[index] for part in parts]) for index in range(len(parts[0]))]

    def _run_chunk(self, session: Session, chunk: np.ndarray) -> list[np.ndarray]:
        if self.fixed_batch is None or len(chunk) == self.fixed_batch:
            return session.run(chunk)
        # A model with a fixed batch of N gets a last, shorter chunk padded to N.
        padding = np.zeros((self.fixed_batch - len(chunk), *chunk.shape[1:]), chunk.dtype)
        outputs = session.run(np.concatenate([chunk, padding]))
        return [output[: len(chunk)] for output in outputs]

    def cancel(self) -> None:
        """Stop the runs in progress where the engine can (ONNX Runtime); others run to the end."""
        for session in self._sessions():
            if isinstance(session, Cancellable):
                session.cancel()

    def release(self) -> None:
        for session in self._sessions():
            session.release()

    def _sessions(self) -> list[Session]:
        return [self.session] if self.alone_session is None else [self.session, self.alone_session]

    def describe(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "engine": self.engine,
            "engine_reason": self.engine_reason,
            "loaded_at": self.loaded_at,
            "last_used_at": self.last_used_at or self.loaded_at,
            "load_seconds": self.load_seconds,
        }


def check_servable(model: ServingInput | None, model_id: str) -> ServingInput:
    """The model, if it exists and is ready.

    Raises:
        NotFound: no model has this id (or it was deleted).
        Conflict: the model exists but is not ready (converting, invalid, failed).
    """
    if model is None:
        raise NotFound(f"no model {model_id}")
    if model.status != "ready" or model.onnx is None:
        raise Conflict(f"model {model_id} is {model.status}: only a ready model can predict")
    return model


def engine_choice(
    model: ServingInput, available: Callable[[str], str | None], gpu_present: bool
) -> tuple[str, str]:
    """Which engine serves ``model`` and why, in words.

    Args:
        available: engine name -> None when it can run here, else the reason it cannot.
        gpu_present: whether the machine has a usable GPU.
    """
    fallback = CUDA_ENGINE if gpu_present and available(CUDA_ENGINE) is None else CPU_ENGINE
    if model.selected_engine is None:
        return fallback, "no benchmark has selected an engine for this model"
    why_not = available(model.selected_engine)
    if why_not is None:
        return model.selected_engine, f"selected by benchmark {model.selected_by}"
    return fallback, (
        f"benchmark {model.selected_by} selected {model.selected_engine}, "
        f"which cannot run here: {why_not}"
    )


def open_served_model(
    model: ServingInput,
    context: EngineContext,
    max_run: int,
    clock: Callable[[], float] = time.perf_counter,
    alone_context: EngineContext | None = None,
) -> ServedModel:
    """Open an engine session for a ready model.

    Args:
        alone_context: where runs share the cores (a CPU pool of several replicas), the context
            of a second ONNX Runtime CPU session on every core, for runs that have the replica
            to themselves; not opened for another engine.

    Raises:
        InvalidModel: the model's input or recorded preprocessing cannot be served.
        EngineFailed: no engine could load the model.
    """
    if model.onnx is None or model.input_dims is None:
        raise InvalidModel(f"model {model.model_id} has no ONNX file or no recorded input")
    started = clock()
    spec = spec_for(model.task_type, model.input_dims, model.preprocessing)
    name, reason = engine_choice(model, _availability(context), context.gpu.available)
    fixed_batch = fixed_size(model.input_dims[0])
    batch_sizes = [fixed_batch] if fixed_batch else sorted({1, max_run})
    shape = (3, spec.height, spec.width)
    try:
        session = engine_for(name, context).open(model.onnx, shape, batch_sizes)
    except EngineFailed as error:
        if name == CPU_ENGINE:
            raise
        # The selected engine failed here (a cache gone, a build that fails): serve on the CPU.
        reason = f"{name} could not load the model ({error}); serving on ONNX Runtime CPU"
        name = CPU_ENGINE
        session = engine_for(name, context).open(model.onnx, shape, batch_sizes)
    alone_session = None
    if alone_context is not None and name == CPU_ENGINE:
        alone_session = engine_for(name, alone_context).open(model.onnx, shape, batch_sizes)
    return ServedModel(
        model_id=model.model_id,
        task_type=model.task_type,
        engine=name,
        engine_reason=reason,
        spec=spec,
        class_names=model.class_names,
        session=session,
        fixed_batch=fixed_batch,
        loaded_at=to_iso(utc_now()),
        load_seconds=round(clock() - started, 3),
        alone_session=alone_session,
    )


def _availability(context: EngineContext) -> Callable[[str], str | None]:
    def why_not(name: str) -> str | None:
        try:
            verdict = engine_for(name, context).availability()
        except KeyError:
            return f"{name} is not an engine this platform knows"
        return None if verdict.available else (verdict.reason or "unavailable")

    return why_not


def runs_alone(tensors: Sequence[np.ndarray], requests_in_replica: int) -> bool:
    """Whether a run may take every core: one image of the only request the replica holds.

    A replica of a CPU pool runs on its share of the cores, which is what load needs (see
    ``cvplatform.inference.layout``); a lone request is answered sooner on all of them (one
    thread 24 ms, two 13 ms for EfficientNet-B0 at batch 1 on this 2-core machine, measured).
    Other replicas' work is not seen here: under light load two such runs may overlap.
    """
    return requests_in_replica <= 1 and len(tensors) == 1 and len(tensors[0]) == 1


def run_together(
    model: ServedModel, tensors: Sequence[np.ndarray], max_run: int, alone: bool = False
) -> list[list[np.ndarray]]:
    """Several requests' tensors run as one batch; returns each request's own outputs, in order.
    ``alone``: see ``runs_alone``."""
    sizes = [len(tensor) for tensor in tensors]
    joined = np.concatenate(tensors) if len(tensors) > 1 else tensors[0]
    outputs = model.run(joined, max_run, alone)
    bounds = np.cumsum([0, *sizes])
    return [[output[start:end] for output in outputs] for start, end in itertools.pairwise(bounds)]


def onnx_file(artifacts_dir: Path, relative_path: str, sha256: str) -> ModelFile:
    return ModelFile(artifacts_dir / relative_path, sha256)
