"""What every inference engine is: a small interface the benchmark job, the inference pool and the
reports share, plus the checks and file handling the engines have in common.

An engine that cannot run here says so through `Availability` with a reason a user can act on; one
that cannot take a given model raises `EngineFailed` with a message meant for that user.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from cvplatform.gpu import GpuReport


class EngineFailed(Exception):
    """The engine cannot take this model (an op it lacks, a failed build): the message is for
    the user."""


class RunStopped(EngineFailed):
    """A run was stopped from outside before it finished (the inference pool's timeout)."""


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str | None = None  # why not, in words a user can act on; None when available


@dataclass(frozen=True)
class ModelFile:
    path: Path  # the ONNX file
    sha256: str  # its checksum: the cache key of derived artifacts


@dataclass(frozen=True)
class Calibration:
    samples: np.ndarray  # float32 (N, C, H, W), N <= 200, already preprocessed
    source: str  # e.g. "validation split of dataset <id> (200 samples)"


@dataclass(frozen=True)
class EngineContext:
    cache_dir: Path  # <artifacts>/engines; each engine keeps a sub-folder of its own
    gpu: GpuReport  # cvplatform.gpu.probe_gpu(); tests pass a made-up report
    threads: int | None = None  # intra-op CPU threads; None: the library's default
    calibration: Callable[[], Calibration] | None = None  # INT8 only; called only on a cache miss
    gpu_memory_limit_mb: int | None = None
    # Whether ONNX Runtime's threads spin for work after a run. Off for an inference pool of
    # several replicas: a replica's threads spinning after its run took the cores from the next
    # replica's run (a lone user's answers, alternating between two replicas: 49-58 ms with it,
    # 29-30 ms without, measured with bench/load.py's payloads on this 2-core machine).
    spin_wait: bool = True


@dataclass(frozen=True)
class Setup:
    kind: str  # "session_creation" | "engine_build" | "engine_cache_load"
    seconds: float  # measured wall time of the whole setup (quantization/build included)
    details: Mapping[str, Any]  # JSON-ready, e.g. {"quantization_cache": "miss", ...}


class Session(Protocol):
    setup: Setup

    def run(self, batch: np.ndarray) -> list[np.ndarray]: ...

    def release(self) -> None: ...


class Engine(Protocol):
    name: str  # one of ENGINE_NAMES
    label: str  # "ONNX Runtime CPU FP32", ...
    precision: str  # "fp32" | "int8" | "fp16"
    device: str  # "cpu" | "cuda"

    def availability(self) -> Availability: ...

    def versions(self) -> dict[str, str]: ...

    def open(
        self, model: ModelFile, input_shape: tuple[int, int, int], batch_sizes: Sequence[int]
    ) -> Session: ...


Dim = int | str | None  # a declared dimension: a size, or a symbolic / unknown one


@dataclass(frozen=True)
class DeclaredInput:
    """The image input an ONNX graph declares, read from the file without running it."""

    name: str
    dims: tuple[Dim, ...]
    is_float32: bool


def first_line(error: BaseException) -> str:
    """The first non-empty line of an error's message (libraries append dumps), or its type."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__


def read_declared_input(path: Path) -> DeclaredInput:
    """The one input of an ONNX file (initializers listed as inputs by old exporters left out).

    Raises:
        EngineFailed: the file is not a readable ONNX model, or it has more than one input.
    """
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as error:  # onnx raises DecodeError, OSError, ValueError alike
        raise EngineFailed(f"not a readable ONNX model: {first_line(error)}") from error
    initializers = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(value.name for value in inputs) or "none"
        raise EngineFailed(
            f"the model has {len(inputs)} inputs ({names}); benchmarks feed one image"
        )
    tensor_type = inputs[0].type.tensor_type
    dims = tuple(
        dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or None)
        for dim in tensor_type.shape.dim
    )
    return DeclaredInput(inputs[0].name, dims, tensor_type.elem_type == onnx.TensorProto.FLOAT)


def fixed_size(dim: Dim) -> int | None:
    """The size of a fixed dimension; None for a dynamic one (symbolic, unknown, TensorRT's -1)."""
    return dim if isinstance(dim, int) and dim > 0 else None


def check_batch_sizes(batch_sizes: Sequence[int]) -> None:
    if not batch_sizes or any(size < 1 for size in batch_sizes):
        raise ValueError(f"batch sizes must be one or more positive integers, not {batch_sizes!r}")


def check_input_fits(
    dims: Sequence[Dim], input_shape: tuple[int, int, int], batch_sizes: Sequence[int]
) -> None:
    """Refuse a request the model's declared input cannot take, before any work is done.

    Raises:
        EngineFailed: the input is not NCHW, a fixed C/H/W differs, or the batch size is fixed to
            another value than one requested.
    """
    check_batch_sizes(batch_sizes)
    if len(dims) != 4:
        raise EngineFailed(f"the model's input has rank {len(dims)}; benchmarks feed NCHW (rank 4)")
    for axis, (declared, asked) in enumerate(zip(dims[1:], input_shape, strict=True), start=1):
        size = fixed_size(declared)
        if size is not None and size != asked:
            raise EngineFailed(
                f"the model's input is fixed to {_shape_text(dims)}, which does not take "
                f"{input_shape} (dimension {axis} is {size}, not {asked})"
            )
    batch = fixed_size(dims[0])
    if batch is not None and any(size != batch for size in batch_sizes):
        raise EngineFailed(
            f"the model's batch dimension is fixed to {batch}: only batch size {batch} can run, "
            f"not {sorted(set(batch_sizes))}; export it with a dynamic batch axis to sweep sizes"
        )


def _shape_text(dims: Sequence[Dim]) -> str:
    return "(" + ", ".join("?" if fixed_size(dim) is None else str(dim) for dim in dims) + ")"


def settings_digest(settings: Mapping[str, Any]) -> str:
    """A short, stable digest of JSON-ready settings: part of a cache file's name."""
    encoded = json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def slug(text: str) -> str:
    """A file-name-safe form of a name ("NVIDIA H100 80GB HBM3" -> "nvidia-h100-80gb-hbm3")."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unnamed"


@contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to, moved onto ``path`` only when the block ends
    without an error: no reader, in this or another process, ever sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomically(path: Path, payload: bytes) -> None:
    with atomic_target(path) as temporary:
        temporary.write_bytes(payload)


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A cache sidecar's content, or None when it is missing or unreadable (then: a cache miss)."""
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None
