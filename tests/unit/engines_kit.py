"""Toy models and contexts for the engine tests (CPU and GPU alike): built on the spot, a few KB."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cvplatform.engines import Calibration, EngineContext, ModelFile
from cvplatform.gpu import GpuReport
from tests.models_kit import onnx_classifier, tiny_classifier

INPUT_SHAPE = (3, 32, 32)
NO_GPU = GpuReport(False, "no GPU: a made-up report for the test")


def model_file(path: Path) -> ModelFile:
    return ModelFile(path, hashlib.sha256(path.read_bytes()).hexdigest())


def toy_classifier(folder: Path) -> ModelFile:
    """Conv + ReLU + global average pool + Gemm, dynamic batch, 3x32x32 in, 4 logits out."""
    return model_file(onnx_classifier(folder / "toy.onnx"))


def torch_logits(batch: np.ndarray) -> np.ndarray:
    """What the toy classifier's own PyTorch module says for ``batch``: the reference output."""
    import torch

    with torch.no_grad():
        logits = tiny_classifier()(torch.from_numpy(batch))  # type: ignore[operator]
    result: np.ndarray = logits.numpy()
    return result


def images(batch_size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng([seed, batch_size])
    return rng.standard_normal((batch_size, *INPUT_SHAPE)).astype(np.float32)


def with_fixed_batch(model: ModelFile, folder: Path, batch: int) -> ModelFile:
    """The same model with its batch axis fixed, as exporters without dynamic axes write it."""
    import onnx

    proto = onnx.load(str(model.path))
    for value in [*proto.graph.input, *proto.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_value = batch
    path = folder / f"toy_batch{batch}.onnx"
    onnx.save(proto, str(path))
    return model_file(path)


def unsupported_op_model(folder: Path) -> ModelFile:
    """A well-formed NCHW graph whose one node is an op no runtime knows."""
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Frobnicate", ["input"], ["output"], domain="com.example")
    graph = helper.make_graph(
        [node],
        "unsupported",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, 32, 32])],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    path = folder / "unsupported.onnx"
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return model_file(path)


def seeded_calibration(samples: int = 24) -> Calibration:
    rng = np.random.default_rng(7)
    data = rng.standard_normal((samples, *INPUT_SHAPE)).astype(np.float32)
    return Calibration(data, f"seeded test inputs ({samples} samples)")


def context(
    cache_dir: Path,
    gpu: GpuReport = NO_GPU,
    calibration: Callable[[], Calibration] | None = None,
) -> EngineContext:
    return EngineContext(cache_dir=cache_dir, gpu=gpu, threads=1, calibration=calibration)
