"""TensorRT FP16: an engine built from the ONNX file with one optimisation profile covering the
requested batch sizes, cached as a plan file, run on device buffers through cuda-python.

TensorRT and cuda-python are imported inside functions only: without them this module still
loads, and the engine reports itself unavailable with the reason. TensorRT 10 gets FP16 from a
builder flag; TensorRT 11 dropped that flag (every network is strongly typed), so there the ONNX
graph itself is converted to FP16 first, its inputs and outputs kept float32.

Plans are cached under ``<cache>/tensorrt/<sha256>-trt<version>-<gpu>-<profile digest>.plan`` (a
plan only runs on the TensorRT version and GPU model that built it), with a JSON sidecar holding the
build time, so that a cache hit still reports what the build cost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cvplatform.engines.base import (
    Availability,
    EngineContext,
    EngineFailed,
    ModelFile,
    Setup,
    check_input_fits,
    first_line,
    read_declared_input,
    read_json_object,
    settings_digest,
    slug,
    write_atomically,
)
from cvplatform.engines.tensorrt_runtime import TensorRtSession, bind, deserialize, load_cudart

NOT_INSTALLED = (
    "TensorRT is not installed (pip package tensorrt; on a CUDA host run `make install-gpu`)"
)
DEFAULT_WORKSPACE_MB = 1024


def load_tensorrt() -> tuple[Any, str | None]:
    """The tensorrt module, or None and why it cannot be used."""
    try:
        import tensorrt
    except ImportError:
        return None, NOT_INSTALLED
    except Exception as error:  # a wheel without its CUDA libraries fails with OSError and the like
        return None, f"TensorRT is installed but cannot be loaded: {first_line(error)}"
    return tensorrt, None


def fp16_mode(trt: Any) -> str:
    """How this TensorRT is asked for FP16: a builder flag (10.x) or an FP16 graph (11.x)."""
    return "builder_flag" if hasattr(trt.BuilderFlag, "FP16") else "fp16_graph"


def fp16_onnx_bytes(path: Path) -> bytes:
    """The ONNX model with its float tensors in FP16 and its inputs and outputs left float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    graph = converted.graph
    # The converter appends its input casts at the end of the node list; parsers want them sorted.
    ordered = topologically_sorted(list(graph.node), {value.name for value in graph.input})
    del graph.node[:]
    graph.node.extend(ordered)
    serialized: bytes = converted.SerializeToString()
    return serialized


def topologically_sorted(nodes: list[Any], graph_inputs: set[str]) -> list[Any]:
    """Nodes ordered so that each comes after the producers of its inputs (a stable sort: nodes
    already in order keep it). Names no node produces are taken as given (initializers, inputs)."""
    produced_by_nodes = {name for node in nodes for name in node.output}
    ready = set(graph_inputs) | {""}
    pending, ordered = list(nodes), []
    while pending:
        index = next(
            (
                position
                for position, node in enumerate(pending)
                if all(name in ready or name not in produced_by_nodes for name in node.input)
            ),
            0,  # a cycle: keep the file's order for the rest, the parser will say what is wrong
        )
        node = pending.pop(index)
        ordered.append(node)
        ready.update(node.output)
    return ordered


def profile_shapes(
    input_name: str, input_shape: tuple[int, int, int], batch_sizes: Sequence[int]
) -> dict[str, Any]:
    """One optimisation profile: from the smallest requested batch to the largest, tuned for the
    largest (the throughput end of the sweep)."""
    smallest, largest = min(batch_sizes), max(batch_sizes)
    return {
        "input": input_name,
        "min": [smallest, *input_shape],
        "opt": [largest, *input_shape],
        "max": [largest, *input_shape],
    }


class TensorRtEngine:
    name = "tensorrt_fp16"
    label = "TensorRT FP16"
    precision = "fp16"
    device = "cuda"

    def __init__(
        self, context: EngineContext, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._context = context
        self._clock = clock
        self._availability: Availability | None = None

    def availability(self) -> Availability:
        if self._availability is None:
            self._availability = self._probe()
        return self._availability

    def _probe(self) -> Availability:
        trt, reason = load_tensorrt()
        if trt is None:
            return Availability(False, reason)
        if not self._context.gpu.available:
            return Availability(False, self._context.gpu.detail)
        cudart, reason = load_cudart()
        if cudart is None:
            return Availability(False, reason)
        try:
            builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
        except Exception as error:  # TensorRT raises plain TypeError/RuntimeError without a device
            return Availability(False, f"TensorRT cannot start on this GPU: {first_line(error)}")
        # TensorRT 11 dropped the query (FP16 is always there on the GPUs it supports).
        if not getattr(builder, "platform_has_fast_fp16", True):
            return Availability(
                False, "this GPU has no fast FP16 (TensorRT platform_has_fast_fp16)"
            )
        return Availability(True)

    def versions(self) -> dict[str, str]:
        trt, _ = load_tensorrt()
        return {"tensorrt": str(trt.__version__) if trt is not None else "not installed"}

    def open(
        self, model: ModelFile, input_shape: tuple[int, int, int], batch_sizes: Sequence[int]
    ) -> TensorRtSession:
        """Load the cached plan for this model, TensorRT, GPU and profile, or build and cache it.

        Raises:
            EngineFailed: TensorRT is unavailable here, the input cannot take the batch sizes, the
                parser refuses the model (an op it lacks), or the build fails.
        """
        started = self._clock()
        available = self.availability()
        if not available.available:
            raise EngineFailed(str(available.reason))
        trt, _ = load_tensorrt()
        cudart, _ = load_cudart()
        declared = read_declared_input(model.path)
        check_input_fits(declared.dims, input_shape, batch_sizes)
        profile = profile_shapes(declared.name, input_shape, batch_sizes)
        workspace_mb = self._context.gpu_memory_limit_mb or DEFAULT_WORKSPACE_MB
        plan_path = self._plan_path(trt, model, profile, workspace_mb)
        logger = error_log(trt)
        runtime, engine, details = self._cached_engine(trt, logger, plan_path)
        kind = "engine_cache_load"
        if engine is None:
            build_started = self._clock()
            plan = build_plan(trt, logger, model.path, profile, workspace_mb)
            details = {"cache": "miss", "build_s": self._clock() - build_started}
            write_atomically(plan_path, plan)
            write_atomically(plan_path.with_suffix(".json"), json.dumps(details).encode())
            runtime, engine = deserialize(trt, logger, plan)
            if engine is None:
                raise EngineFailed("TensorRT built an engine it cannot load: " + logger.text())
            kind = "engine_build"
        bound = bind(trt, cudart, runtime, engine, declared.name, tuple(profile["max"]))
        details = {**details, "profile": profile, "fp16": fp16_mode(trt)}
        return TensorRtSession(Setup(kind, self._clock() - started, details), bound)

    def _cached_engine(
        self, trt: Any, logger: Any, plan_path: Path
    ) -> tuple[Any, Any, dict[str, Any]]:
        """The runtime and engine of the cached plan, with what its build cost; None for the engine
        when there is no usable plan (missing, half of it missing, or stale)."""
        sidecar = read_json_object(plan_path.with_suffix(".json"))
        if sidecar is None or not plan_path.is_file():
            return None, None, {}
        runtime, engine = deserialize(trt, logger, plan_path.read_bytes())
        return runtime, engine, {"cache": "hit", "build_s": float(sidecar["build_s"])}

    def _plan_path(
        self, trt: Any, model: ModelFile, profile: dict[str, Any], workspace_mb: int
    ) -> Path:
        devices = self._context.gpu.devices
        gpu_name = slug(devices[0].name) if devices else "gpu"
        digest = settings_digest(
            {"profile": profile, "workspace_mb": workspace_mb, "fp16": fp16_mode(trt)}
        )
        name = f"{model.sha256}-trt{trt.__version__}-{gpu_name}-{digest}.plan"
        return self._context.cache_dir / "tensorrt" / name


def error_log(trt: Any) -> Any:
    """A TensorRT logger that keeps the errors, so that a failed build can say why."""

    class ErrorLog(trt.ILogger):  # type: ignore[misc]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, message: str) -> None:
            if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
                self.errors.append(message)

        def text(self) -> str:
            return "; ".join(self.errors) or "no detail from TensorRT"

    return ErrorLog()


def build_plan(
    trt: Any, logger: Any, path: Path, profile: dict[str, Any], workspace_mb: int
) -> bytes:
    """Parse the ONNX file and build a serialized FP16 engine for one optimisation profile.

    Raises:
        EngineFailed: the parser refuses the model, or the builder cannot build it.
    """
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    mode = fp16_mode(trt)
    payload = fp16_onnx_bytes(path) if mode == "fp16_graph" else path.read_bytes()
    if not parser.parse(payload, str(path)):
        errors = [str(parser.get_error(index).desc()) for index in range(parser.num_errors)]
        raise EngineFailed("TensorRT cannot parse the model: " + "; ".join(errors or ["no detail"]))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb * 2**20)
    if mode == "builder_flag":
        config.set_flag(trt.BuilderFlag.FP16)
    if any(size < 0 for size in network.get_input(0).shape):
        optimization = builder.create_optimization_profile()
        optimization.set_shape(profile["input"], profile["min"], profile["opt"], profile["max"])
        config.add_optimization_profile(optimization)
    try:
        plan = builder.build_serialized_network(network, config)
    except Exception as error:  # some versions raise instead of returning None
        raise EngineFailed(f"TensorRT could not build the engine: {first_line(error)}") from error
    if plan is None:
        raise EngineFailed(f"TensorRT could not build the engine: {logger.text()}")
    return bytes(memoryview(plan))
