"""Running a built TensorRT engine: device buffers and a stream from cuda-python, the TensorRT 10+
tensor API (``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``).

Each run copies the batch to the device, runs, and copies every output back before it returns, so
the measured latency includes both copies, as with ONNX Runtime's CUDA provider.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cvplatform.engines.base import EngineFailed, Setup, first_line

CUDA_PYTHON_MISSING = (
    "cuda-python is not installed (pip package cuda-python; on a CUDA host run `make install-gpu`)"
)


def load_cudart() -> tuple[Any, str | None]:
    """cuda-python's runtime module (``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6), or
    None and why it cannot be used."""
    try:
        from cuda.bindings import runtime

        return runtime, None
    except ImportError:
        pass
    except Exception as error:  # a broken install fails with OSError and the like
        return None, f"cuda-python cannot be loaded: {first_line(error)}"
    try:
        from cuda import cudart

        return cudart, None
    except ImportError:
        return None, CUDA_PYTHON_MISSING
    except Exception as error:
        return None, f"cuda-python cannot be loaded: {first_line(error)}"


def cuda_call(cudart: Any, result: tuple[Any, ...]) -> Any:
    """The value of a cuda-python call (it returns ``(error, *values)``).

    Raises:
        EngineFailed: the call reported an error.
    """
    error, *values = result
    if error != cudart.cudaError_t.cudaSuccess:
        _, text = cudart.cudaGetErrorString(error)
        message = text.decode() if isinstance(text, bytes) else str(text)
        raise EngineFailed(f"CUDA error: {message}")
    return values[0] if len(values) == 1 else None


@dataclass
class DeviceBuffer:
    name: str
    pointer: int
    dtype: np.dtype[Any]
    nbytes: int  # allocated for the largest batch of the profile


@dataclass
class BoundEngine:
    """An engine with its execution context, stream and buffers; what a session runs on."""

    trt: Any
    cudart: Any
    runtime: Any  # kept alive: TensorRT wants the runtime to outlive its engines
    engine: Any
    context: Any
    stream: Any
    input: DeviceBuffer
    outputs: list[DeviceBuffer] = field(default_factory=list)

    def free(self) -> None:
        self.cudart.cudaStreamSynchronize(self.stream)
        # TensorRT objects go in reverse order of creation: a context must not outlive its engine.
        self.context = self.engine = self.runtime = None
        for buffer in [self.input, *self.outputs]:
            self.cudart.cudaFree(buffer.pointer)
        self.cudart.cudaStreamDestroy(self.stream)


def deserialize(trt: Any, logger: Any, plan: bytes) -> tuple[Any, Any]:
    """The runtime and the engine of a plan; the engine is None when this TensorRT or GPU cannot
    load the plan (a stale cache file)."""
    runtime = trt.Runtime(logger)
    return runtime, runtime.deserialize_cuda_engine(plan)


def bind(
    trt: Any, cudart: Any, runtime: Any, engine: Any, input_name: str, largest: tuple[int, ...]
) -> BoundEngine:
    """Create the execution context and allocate every buffer for the largest input shape.

    Raises:
        EngineFailed: no context (out of GPU memory), an output whose shape depends on the data,
            or a CUDA error.
    """
    context = engine.create_execution_context()
    if context is None:
        raise EngineFailed("TensorRT could not create an execution context (out of GPU memory?)")
    if not context.set_input_shape(input_name, largest):
        raise EngineFailed(f"the engine does not take an input of shape {largest}")
    stream = cuda_call(cudart, cudart.cudaStreamCreate())
    buffers: list[DeviceBuffer] = []
    try:
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            buffers.append(_allocate(trt, cudart, engine, context, name))
            context.set_tensor_address(name, buffers[-1].pointer)
    except BaseException:
        for buffer in buffers:
            cudart.cudaFree(buffer.pointer)
        cudart.cudaStreamDestroy(stream)
        raise
    inputs = [buffer for buffer in buffers if buffer.name == input_name]
    outputs = [buffer for buffer in buffers if buffer.name != input_name]
    return BoundEngine(trt, cudart, runtime, engine, context, stream, inputs[0], outputs)


def _allocate(trt: Any, cudart: Any, engine: Any, context: Any, name: str) -> DeviceBuffer:
    shape = tuple(context.get_tensor_shape(name))
    if any(size < 0 for size in shape):
        raise EngineFailed(f"output {name} has a data-dependent shape {shape}; not supported")
    dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
    nbytes = max(1, int(np.prod(shape)) * dtype.itemsize)
    pointer = cuda_call(cudart, cudart.cudaMalloc(nbytes))
    return DeviceBuffer(name, int(pointer), dtype, nbytes)


class TensorRtSession:
    """A bound TensorRT engine fed numpy batches up to the profile's largest batch size."""

    def __init__(self, setup: Setup, bound: BoundEngine) -> None:
        self.setup = setup
        self._bound: BoundEngine | None = bound

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        bound = self._bound
        if bound is None:
            raise EngineFailed("this session was released")
        cudart, context, stream = bound.cudart, bound.context, bound.stream
        batch = np.ascontiguousarray(batch, dtype=bound.input.dtype)
        if batch.nbytes > bound.input.nbytes or not context.set_input_shape(
            bound.input.name, batch.shape
        ):
            raise EngineFailed(f"the engine was not built for an input of shape {batch.shape}")
        to_device = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        cuda_call(
            cudart,
            cudart.cudaMemcpyAsync(
                bound.input.pointer, batch.ctypes.data, batch.nbytes, to_device, stream
            ),
        )
        if not context.execute_async_v3(int(stream)):
            raise EngineFailed("TensorRT could not enqueue the inference")
        outputs = [
            np.empty(tuple(context.get_tensor_shape(output.name)), output.dtype)
            for output in bound.outputs
        ]
        to_host = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for output, host in zip(bound.outputs, outputs, strict=True):
            cuda_call(
                cudart,
                cudart.cudaMemcpyAsync(
                    host.ctypes.data, output.pointer, host.nbytes, to_host, stream
                ),
            )
        cuda_call(cudart, cudart.cudaStreamSynchronize(stream))
        return outputs

    def release(self) -> None:
        bound, self._bound = self._bound, None
        if bound is not None:
            bound.free()
