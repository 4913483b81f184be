"""The engines on this machine's real ONNX Runtime with a toy model: FP32 and INT8 run and agree
with the model's own PyTorch output; CUDA and TensorRT say why they cannot run here."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from cvplatform.engines import (
    ENGINE_NAMES,
    Calibration,
    EngineFailed,
    ModelFile,
    engine_for,
)
from cvplatform.engines.base import atomic_target, check_input_fits
from cvplatform.engines.tensorrt_engine import fp16_onnx_bytes, profile_shapes
from cvplatform.gpu import GpuDevice, GpuReport
from tests.unit.engines_kit import (
    INPUT_SHAPE,
    context,
    images,
    model_file,
    seeded_calibration,
    torch_logits,
    toy_classifier,
    unsupported_op_model,
    with_fixed_batch,
)

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> ModelFile:
    return toy_classifier(tmp_path_factory.mktemp("toy"))


def stepping_clock(*readings: float) -> Iterator[float]:
    yield from readings


# FP32 ---------------------------------------------------------------------------------------------


def test_fp32_runs_each_batch_size_and_matches_pytorch(toy: ModelFile, tmp_path: Path) -> None:
    session = engine_for("onnxruntime_cpu", context(tmp_path)).open(toy, INPUT_SHAPE, [1, 4])
    for batch_size in (1, 4):
        batch = images(batch_size)
        (logits,) = session.run(batch)
        assert logits.shape == (batch_size, 4)
        np.testing.assert_allclose(logits, torch_logits(batch), rtol=1e-4, atol=1e-5)
    assert session.setup.kind == "session_creation"
    assert session.setup.seconds > 0
    assert session.setup.details["providers"] == ["CPUExecutionProvider"]
    session.release()
    with pytest.raises(EngineFailed, match="released"):
        session.run(images(1))


def test_setup_time_is_what_the_clock_measured_around_the_whole_setup(
    toy: ModelFile, tmp_path: Path
) -> None:
    readings = stepping_clock(100.0, 100.25)
    engine = engine_for("onnxruntime_cpu", context(tmp_path), clock=lambda: next(readings))
    assert engine.open(toy, INPUT_SHAPE, [1]).setup.seconds == pytest.approx(0.25)


def test_a_fixed_batch_axis_takes_only_its_own_size(toy: ModelFile, tmp_path: Path) -> None:
    fixed = with_fixed_batch(toy, tmp_path, 1)
    engine = engine_for("onnxruntime_cpu", context(tmp_path))
    (logits,) = engine.open(fixed, INPUT_SHAPE, [1]).run(images(1))
    np.testing.assert_allclose(logits, torch_logits(images(1)), rtol=1e-4, atol=1e-5)
    with pytest.raises(EngineFailed, match="fixed to 1: only batch size 1 can run, not \\[1, 4\\]"):
        engine.open(fixed, INPUT_SHAPE, [1, 4])


def test_an_input_shape_the_model_does_not_take_is_refused(toy: ModelFile, tmp_path: Path) -> None:
    engine = engine_for("onnxruntime_cpu", context(tmp_path))
    with pytest.raises(
        EngineFailed, match=r"fixed to \(\?, 3, 32, 32\).*dimension 2 is 32, not 64"
    ):
        engine.open(toy, (3, 64, 64), [1])


@pytest.mark.parametrize("name", ["onnxruntime_cpu", "onnxruntime_cpu_int8"])
def test_a_model_with_an_unknown_op_fails_with_a_readable_message(
    name: str, tmp_path: Path
) -> None:
    model = unsupported_op_model(tmp_path)
    engine = engine_for(name, context(tmp_path, calibration=seeded_calibration))
    with pytest.raises(EngineFailed) as failure:
        engine.open(model, INPUT_SHAPE, [1])
    message = str(failure.value)
    assert "Frobnicate" in message
    assert "\n" not in message and "Traceback" not in message


def test_quantizing_writes_nothing_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ONNX Runtime's symbolic shape inference, when it cannot finish (an op it does not know),
    # saves "sym_shape_infer_temp.onnx" wherever the process happens to be.
    working = tmp_path / "cwd"
    working.mkdir()
    monkeypatch.chdir(working)
    engine = engine_for("onnxruntime_cpu_int8", context(tmp_path, calibration=seeded_calibration))
    with pytest.raises(EngineFailed):
        engine.open(unsupported_op_model(tmp_path), INPUT_SHAPE, [1])
    assert list(working.iterdir()) == []


def test_a_file_that_is_not_onnx_fails_with_a_readable_message(tmp_path: Path) -> None:
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"this is not a protobuf \x00\xff" * 4)
    for name in ("onnxruntime_cpu", "onnxruntime_cpu_int8"):
        engine = engine_for(name, context(tmp_path, calibration=seeded_calibration))
        with pytest.raises(EngineFailed) as failure:
            engine.open(model_file(path), INPUT_SHAPE, [1])
        assert "\n" not in str(failure.value), name


# INT8 ---------------------------------------------------------------------------------------------


def test_int8_quantizes_once_and_then_reuses_the_cached_file(
    toy: ModelFile, tmp_path: Path
) -> None:
    calls: list[int] = []

    def counted() -> Calibration:
        calls.append(1)
        return seeded_calibration(24)

    engine = engine_for("onnxruntime_cpu_int8", context(tmp_path, calibration=counted))
    first = engine.open(toy, INPUT_SHAPE, [1, 4])
    details = first.setup.details
    assert details["quantization_cache"] == "miss"
    assert details["quantization_s"] > 0
    assert details["calibration_source"] == "seeded test inputs (24 samples)"
    assert details["calibration_samples"] == 24
    assert first.setup.seconds >= details["quantization_s"]
    batch = images(4)
    (fp32,) = (
        engine_for("onnxruntime_cpu", context(tmp_path)).open(toy, INPUT_SHAPE, [4]).run(batch)
    )
    (int8,) = first.run(batch)
    np.testing.assert_allclose(int8, fp32, atol=0.1 * float(np.abs(fp32).max()) + 0.01)
    assert not np.array_equal(int8, fp32)  # it really is another (quantized) model

    (cached,) = (tmp_path / "int8").glob(f"{toy.sha256}-*.onnx")
    ops = {node.op_type for node in onnx.load(str(cached)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    written = cached.stat().st_mtime_ns

    def must_not_be_called() -> Calibration:
        raise AssertionError("a cache hit must not load calibration data")

    again = engine_for("onnxruntime_cpu_int8", context(tmp_path, calibration=must_not_be_called))
    second = again.open(toy, INPUT_SHAPE, [1, 4])
    assert second.setup.details["quantization_cache"] == "hit"
    assert second.setup.details["calibration_source"] == "seeded test inputs (24 samples)"
    assert second.setup.details["quantization_s"] == details["quantization_s"]
    assert cached.stat().st_mtime_ns == written
    assert calls == [1]
    np.testing.assert_array_equal(second.run(batch)[0], int8)
    assert sorted(path.suffix for path in (tmp_path / "int8").iterdir()) == [".json", ".onnx"]


def test_int8_calibrates_a_fixed_batch_model_one_sample_at_a_time(
    toy: ModelFile, tmp_path: Path
) -> None:
    fixed = with_fixed_batch(toy, tmp_path, 1)
    engine = engine_for("onnxruntime_cpu_int8", context(tmp_path, calibration=seeded_calibration))
    session = engine.open(fixed, INPUT_SHAPE, [1])
    assert session.setup.details["calibration_samples"] == 24
    assert session.run(images(1))[0].shape == (1, 4)


def test_int8_without_calibration_data_fails(toy: ModelFile, tmp_path: Path) -> None:
    with pytest.raises(EngineFailed, match="INT8 needs calibration data"):
        engine_for("onnxruntime_cpu_int8", context(tmp_path)).open(toy, INPUT_SHAPE, [1])


def test_int8_refuses_calibration_samples_of_another_shape(toy: ModelFile, tmp_path: Path) -> None:
    def wrong_shape() -> Calibration:
        return Calibration(np.zeros((8, 3, 16, 16), np.float32), "wrong")

    engine = engine_for("onnxruntime_cpu_int8", context(tmp_path, calibration=wrong_shape))
    with pytest.raises(EngineFailed, match=r"calibration samples have shape \(8, 3, 16, 16\)"):
        engine.open(toy, INPUT_SHAPE, [1])
    assert not list((tmp_path / "int8").glob("*.onnx"))  # nothing half-made is left in the cache


# GPU engines on this machine ---------------------------------------------------------------------

ONE_GPU = GpuReport(True, "1 GPU(s): made up (81559 MB)", (GpuDevice(0, "Made Up H100", 81559),))


def test_cuda_engine_says_why_it_cannot_run_here(toy: ModelFile, tmp_path: Path) -> None:
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has the CUDA provider")
    no_gpu = engine_for("onnxruntime_cuda", context(tmp_path)).availability()
    assert not no_gpu.available
    assert "no GPU: a made-up report for the test" in str(no_gpu.reason)
    # A GPU alone is not enough: the CPU build of ONNX Runtime has no CUDA provider.
    engine = engine_for("onnxruntime_cuda", context(tmp_path, gpu=ONE_GPU))
    with_gpu = engine.availability()
    assert not with_gpu.available
    assert "onnxruntime-gpu is not installed" in str(with_gpu.reason)
    assert "make install-gpu" in str(with_gpu.reason)
    assert "no GPU" not in str(with_gpu.reason)
    with pytest.raises(EngineFailed, match="onnxruntime-gpu is not installed"):
        engine.open(toy, INPUT_SHAPE, [1])


def test_tensorrt_says_it_is_not_installed(toy: ModelFile, tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    engine = engine_for("tensorrt_fp16", context(tmp_path, gpu=ONE_GPU))
    availability = engine.availability()
    assert not availability.available
    assert "TensorRT is not installed" in str(availability.reason)
    assert engine.versions() == {"tensorrt": "not installed"}
    with pytest.raises(EngineFailed, match="TensorRT is not installed"):
        engine.open(toy, INPUT_SHAPE, [1])


def test_the_fp16_graph_for_tensorrt_11_keeps_float32_io_and_the_results(
    toy: ModelFile, tmp_path: Path
) -> None:
    converted = onnx.load_from_string(fp16_onnx_bytes(toy.path))
    onnx.checker.check_model(converted)  # valid, its nodes in topological order
    assert {tensor.data_type for tensor in converted.graph.initializer} == {
        onnx.TensorProto.FLOAT16
    }
    session = ort.InferenceSession(
        converted.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (logits,) = session.run(None, {"input": images(2)})
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits, torch_logits(images(2)), atol=1e-2)


def test_the_tensorrt_profile_spans_the_requested_batch_sizes() -> None:
    assert profile_shapes("input", INPUT_SHAPE, [8, 1, 32]) == {
        "input": "input",
        "min": [1, 3, 32, 32],
        "opt": [32, 3, 32, 32],
        "max": [32, 3, 32, 32],
    }


# The registry and what every engine says of itself ----------------------------------------------


def test_an_unknown_engine_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(KeyError) as failure:
        engine_for("nope", context(tmp_path))
    for name in ENGINE_NAMES:
        assert name in str(failure.value)


@pytest.mark.parametrize("name", ENGINE_NAMES)
def test_every_engine_describes_itself(name: str, tmp_path: Path) -> None:
    engine = engine_for(name, context(tmp_path))
    assert engine.name == name
    assert engine.precision in ("fp32", "int8", "fp16")
    assert engine.device in ("cpu", "cuda")
    versions = engine.versions()
    assert versions and all(
        isinstance(key, str) and isinstance(value, str) for key, value in versions.items()
    )
    availability = engine.availability()
    assert availability.available == (availability.reason is None)


def test_cpu_engines_are_available_here(tmp_path: Path) -> None:
    for name in ("onnxruntime_cpu", "onnxruntime_cpu_int8"):
        assert engine_for(name, context(tmp_path)).availability().available, name


def test_importing_the_engines_loads_neither_ray_nor_tensorrt_nor_torch() -> None:
    probe = (
        "import sys, cvplatform.engines; "
        "print(sorted(m for m in ('ray', 'tensorrt', 'torch', 'cuda') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert loaded.stdout.strip() == "[]"


# Shared pieces --------------------------------------------------------------------------------


def test_an_interrupted_cache_write_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "model.onnx"
    with pytest.raises(RuntimeError), atomic_target(target) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []
    with atomic_target(target) as temporary:
        temporary.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert list(target.parent.iterdir()) == [target]


def test_declared_shapes_are_checked_before_any_work() -> None:
    check_input_fits(["batch", 3, None, None], (3, 224, 224), [1, 8])
    with pytest.raises(EngineFailed, match="rank 2"):
        check_input_fits([1, 4], INPUT_SHAPE, [1])
    with pytest.raises(ValueError, match="positive"):
        check_input_fits(["N", 3, 32, 32], INPUT_SHAPE, [0])
