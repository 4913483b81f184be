"""ONNX Runtime engines: CPU FP32, CPU INT8 (static quantization, cached) and the CUDA provider.

Inputs and outputs travel as numpy arrays through a plain ``session.run``. On CUDA the measured
latency therefore includes the copies from host to device and back, as a caller of the model pays
them; nothing is kept on the device between runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from cvplatform.engines.base import (
    Availability,
    Calibration,
    EngineContext,
    EngineFailed,
    ModelFile,
    RunStopped,
    Setup,
    check_input_fits,
    first_line,
    fixed_size,
    read_declared_input,
)
from cvplatform.engines.quantization import quantization_available, quantized_model

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"


class OrtSession:
    """One ONNX Runtime session over one model, fed numpy batches; a run in progress can be
    stopped from another thread (``cancel``), which the inference pool does past its timeout."""

    def __init__(self, session: Any, setup: Setup) -> None:
        self.setup = setup
        self._session: Any = session
        self._input_name: str = session.get_inputs()[0].name
        self._runs: set[Any] = set()  # the RunOptions of the runs in progress
        self._runs_lock = threading.Lock()

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        if self._session is None:
            raise EngineFailed("this session was released")
        options = ort.RunOptions()
        with self._runs_lock:
            self._runs.add(options)
        try:
            outputs = self._session.run(None, {self._input_name: batch}, options)
        except Exception as error:  # ONNX Runtime's own exception types, not exported
            if options.terminate:
                raise RunStopped("the run was stopped before it finished") from error
            raise EngineFailed(
                f"ONNX Runtime failed to run the model: {first_line(error)}"
            ) from error
        finally:
            with self._runs_lock:
                self._runs.discard(options)
        return list(outputs)

    def cancel(self) -> None:
        """Stop every run in progress (each raises EngineFailed); later runs are not affected."""
        with self._runs_lock:
            for options in self._runs:
                options.terminate = True

    def release(self) -> None:
        self._session = None


def create_session(
    path: Path, threads: int | None, providers: Sequence[Any], spin_wait: bool = True
) -> Any:
    """An InferenceSession with every graph optimisation on.

    ``spin_wait``: ONNX Runtime's threads keep spinning for work after a run (its default);
    off, they sleep, which is what processes sharing the cores need (see EngineContext).

    Raises:
        EngineFailed: ONNX Runtime cannot load the model (broken graph, an op it lacks).
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
    if not spin_wait:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=list(providers))
    except Exception as error:  # ONNX Runtime's own exception types, not exported
        raise EngineFailed(f"ONNX Runtime cannot load the model: {first_line(error)}") from error


def check_session_input(
    session: Any, input_shape: tuple[int, int, int], batch_sizes: Sequence[int]
) -> None:
    """Raises EngineFailed when the session's inputs cannot take the requested batches."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise EngineFailed(f"the model has {len(inputs)} inputs; benchmarks feed one image tensor")
    if inputs[0].type != "tensor(float)":
        raise EngineFailed(f"the model's input is {inputs[0].type}; benchmarks feed float32")
    check_input_fits(inputs[0].shape, input_shape, batch_sizes)


class _OrtEngine:
    name = ""
    label = ""
    precision = ""
    device = ""

    def __init__(
        self, context: EngineContext, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._context = context
        self._clock = clock

    def versions(self) -> dict[str, str]:
        return {"onnxruntime": ort.__version__}

    def _session(
        self,
        path: Path,
        providers: Sequence[Any],
        input_shape: tuple[int, int, int],
        batch_sizes: Sequence[int],
    ) -> Any:
        session = create_session(path, self._context.threads, providers, self._context.spin_wait)
        check_session_input(session, input_shape, batch_sizes)
        return session


class OrtCpuEngine(_OrtEngine):
    name = "onnxruntime_cpu"
    label = "ONNX Runtime CPU FP32"
    precision = "fp32"
    device = "cpu"

    def availability(self) -> Availability:
        return Availability(True)

    def open(
        self, model: ModelFile, input_shape: tuple[int, int, int], batch_sizes: Sequence[int]
    ) -> OrtSession:
        started = self._clock()
        session = self._session(model.path, [CPU_PROVIDER], input_shape, batch_sizes)
        details = {
            "providers": session.get_providers(),
            "threads": self._context.threads,
            "spin_wait": self._context.spin_wait,
        }
        return OrtSession(session, Setup("session_creation", self._clock() - started, details))


class OrtCpuInt8Engine(_OrtEngine):
    name = "onnxruntime_cpu_int8"
    label = "ONNX Runtime CPU INT8"
    precision = "int8"
    device = "cpu"

    def availability(self) -> Availability:
        if quantization_available():
            return Availability(True)
        return Availability(False, "this ONNX Runtime has no quantization tools")

    def open(
        self, model: ModelFile, input_shape: tuple[int, int, int], batch_sizes: Sequence[int]
    ) -> OrtSession:
        """Quantize (or take from the cache) and open on the CPU; setup time covers both.

        Raises:
            EngineFailed: no calibration data for a model not quantized before, the input does
                not fit, or quantization failed.
        """
        started = self._clock()
        available = self.availability()
        if not available.available:
            raise EngineFailed(str(available.reason))
        declared = read_declared_input(model.path)
        if not declared.is_float32:
            raise EngineFailed("the model's input is not float32; INT8 calibration feeds float32")
        check_input_fits(declared.dims, input_shape, batch_sizes)
        quantized = quantized_model(
            model,
            self._context.cache_dir,
            # Without calibration data only a model quantized before (by a benchmark) can open.
            self._context.calibration or _no_calibration,
            input_name=declared.name,
            input_shape=input_shape,
            fixed_batch=fixed_size(declared.dims[0]),
            clock=self._clock,
        )
        session = self._session(quantized.path, [CPU_PROVIDER], input_shape, batch_sizes)
        setup = Setup("session_creation", self._clock() - started, quantized.details())
        return OrtSession(session, setup)


def _no_calibration() -> Calibration:
    raise EngineFailed("INT8 needs calibration data, and no quantized model is cached for this one")


class OrtCudaEngine(_OrtEngine):
    name = "onnxruntime_cuda"
    label = "ONNX Runtime CUDA"
    precision = "fp32"
    device = "cuda"

    def availability(self) -> Availability:
        reasons = []
        if not self._context.gpu.available:
            reasons.append(self._context.gpu.detail)
        providers = ort.get_available_providers()
        if CUDA_PROVIDER not in providers:
            reasons.append(
                "onnxruntime-gpu is not installed: this ONNX Runtime offers "
                f"{', '.join(providers)}; on a CUDA host run `make install-gpu`"
            )
        return Availability(not reasons, "; ".join(reasons) or None)

    def versions(self) -> dict[str, str]:
        versions = super().versions()
        versions["onnxruntime_device"] = str(ort.get_device())
        build_info = getattr(ort, "get_build_info", None)
        if callable(build_info):
            versions["onnxruntime_build"] = str(build_info())
        return versions

    def open(
        self, model: ModelFile, input_shape: tuple[int, int, int], batch_sizes: Sequence[int]
    ) -> OrtSession:
        """Open on GPU 0, refusing a session that ONNX Runtime quietly moved to the CPU.

        Raises:
            EngineFailed: CUDA is unavailable here, or the model cannot be loaded on it.
        """
        started = self._clock()
        available = self.availability()
        if not available.available:
            raise EngineFailed(str(available.reason))
        cuda_options: dict[str, int] = {"device_id": 0}
        if self._context.gpu_memory_limit_mb is not None:
            cuda_options["gpu_mem_limit"] = self._context.gpu_memory_limit_mb * 2**20
        providers = [(CUDA_PROVIDER, cuda_options), CPU_PROVIDER]
        session = self._session(model.path, providers, input_shape, batch_sizes)
        if session.get_providers()[0] != CUDA_PROVIDER:
            raise EngineFailed(
                "ONNX Runtime could not start the CUDA provider and fell back to the CPU "
                f"(providers: {', '.join(session.get_providers())})"
            )
        details = {
            "providers": session.get_providers(),
            "io": "numpy arrays: latency includes the host-device copies",
        }
        return OrtSession(session, Setup("session_creation", self._clock() - started, details))
