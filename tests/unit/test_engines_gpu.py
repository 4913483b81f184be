"""The CUDA and TensorRT engines on a real GPU with the toy model (skipped without a GPU).

On a GPU host where an engine is still unavailable (onnxruntime-gpu or TensorRT not installed), its
tests are skipped with the engine's own reason, so the skip says what to install.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cvplatform.engines import Engine, EngineFailed, ModelFile, engine_for
from cvplatform.gpu import probe_gpu
from tests.unit.engines_kit import (
    INPUT_SHAPE,
    context,
    images,
    toy_classifier,
    unsupported_op_model,
)

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> ModelFile:
    return toy_classifier(tmp_path_factory.mktemp("toy"))


def usable(name: str, cache_dir: Path) -> Engine:
    engine = engine_for(name, context(cache_dir, gpu=probe_gpu()))
    availability = engine.availability()
    if not availability.available:
        pytest.skip(f"{name} is unavailable here: {availability.reason}")
    return engine


def cpu_fp32(toy: ModelFile, cache_dir: Path, batch: np.ndarray) -> np.ndarray:
    session = engine_for("onnxruntime_cpu", context(cache_dir)).open(toy, INPUT_SHAPE, [len(batch)])
    return session.run(batch)[0]


def test_cuda_engine_runs_on_the_gpu_and_agrees_with_the_cpu(
    toy: ModelFile, tmp_path: Path
) -> None:
    session = usable("onnxruntime_cuda", tmp_path).open(toy, INPUT_SHAPE, [1, 4])
    assert session.setup.kind == "session_creation"
    assert session.setup.seconds > 0
    assert session.setup.details["providers"][0] == "CUDAExecutionProvider"
    for batch_size in (1, 4):
        batch = images(batch_size)
        (logits,) = session.run(batch)
        # cuDNN may pick TF32 convolutions: close to the CPU, not bit-equal.
        np.testing.assert_allclose(logits, cpu_fp32(toy, tmp_path, batch), rtol=1e-2, atol=1e-3)
    session.release()


def test_tensorrt_builds_once_then_loads_the_cached_plan(toy: ModelFile, tmp_path: Path) -> None:
    engine = usable("tensorrt_fp16", tmp_path)
    first = engine.open(toy, INPUT_SHAPE, [1, 4])
    assert first.setup.kind == "engine_build"
    assert first.setup.details["cache"] == "miss"
    assert first.setup.details["build_s"] > 0
    assert first.setup.details["profile"]["min"] == [1, *INPUT_SHAPE]
    assert first.setup.details["profile"]["max"] == [4, *INPUT_SHAPE]
    for batch_size in (1, 3, 4):  # any size inside the profile runs
        batch = images(batch_size)
        (logits,) = first.run(batch)
        assert logits.dtype == np.float32 and logits.shape == (batch_size, 4)
        np.testing.assert_allclose(logits, cpu_fp32(toy, tmp_path, batch), atol=2e-2)
    with pytest.raises(EngineFailed):
        first.run(images(5))  # beyond the profile's largest batch
    first.release()

    (plan,) = (tmp_path / "tensorrt").glob(f"{toy.sha256}-trt*.plan")
    written = plan.stat().st_mtime_ns
    second = usable("tensorrt_fp16", tmp_path).open(toy, INPUT_SHAPE, [1, 4])
    assert second.setup.kind == "engine_cache_load"
    assert second.setup.details["cache"] == "hit"
    assert second.setup.details["build_s"] == first.setup.details["build_s"]
    assert plan.stat().st_mtime_ns == written
    batch = images(4)
    np.testing.assert_allclose(second.run(batch)[0], cpu_fp32(toy, tmp_path, batch), atol=2e-2)
    second.release()


def test_tensorrt_refuses_a_model_its_parser_cannot_take(tmp_path: Path) -> None:
    engine = usable("tensorrt_fp16", tmp_path)
    with pytest.raises(EngineFailed, match="TensorRT cannot parse the model"):
        engine.open(unsupported_op_model(tmp_path), INPUT_SHAPE, [1])


def test_on_a_gpu_host_every_gpu_engine_either_runs_or_says_what_is_missing(
    tmp_path: Path,
) -> None:
    gpu = probe_gpu()
    assert gpu.available, gpu.detail
    for name in ("onnxruntime_cuda", "tensorrt_fp16"):
        availability = engine_for(name, context(tmp_path, gpu=gpu)).availability()
        if not availability.available:
            assert "not installed" in str(availability.reason) or "cannot" in str(
                availability.reason
            ), availability.reason
