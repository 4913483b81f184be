"""Inference engines behind one small interface: load an ONNX model for an input shape and batch
sizes, run, release, describe itself and its versions. Plain Python, never Ray: the benchmark job,
the inference pool and the reports share this code.

The only package that may import TensorRT (and only inside functions: everything here imports
without it).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cvplatform.engines.base import (
    Availability,
    Calibration,
    Engine,
    EngineContext,
    EngineFailed,
    ModelFile,
    Session,
    Setup,
)
from cvplatform.engines.onnxruntime_engines import OrtCpuEngine, OrtCpuInt8Engine, OrtCudaEngine
from cvplatform.engines.tensorrt_engine import TensorRtEngine

__all__ = [
    "ENGINE_NAMES",
    "Availability",
    "Calibration",
    "Engine",
    "EngineContext",
    "EngineFailed",
    "ModelFile",
    "Session",
    "Setup",
    "engine_for",
]

ENGINE_NAMES: tuple[str, ...] = (
    "onnxruntime_cpu",
    "onnxruntime_cpu_int8",
    "onnxruntime_cuda",
    "tensorrt_fp16",
)

_ENGINES: dict[str, Callable[[EngineContext, Callable[[], float]], Engine]] = {
    OrtCpuEngine.name: OrtCpuEngine,
    OrtCpuInt8Engine.name: OrtCpuInt8Engine,
    OrtCudaEngine.name: OrtCudaEngine,
    TensorRtEngine.name: TensorRtEngine,
}


def engine_for(
    name: str, context: EngineContext, *, clock: Callable[[], float] = time.perf_counter
) -> Engine:
    """The engine called ``name``, working in ``context``; ``clock`` times its setup.

    Raises:
        KeyError: ``name`` is not one of ENGINE_NAMES (the message lists them).
    """
    if name not in _ENGINES:
        raise KeyError(f"unknown engine {name!r}; the known engines are: {', '.join(ENGINE_NAMES)}")
    return _ENGINES[name](context, clock)
