"""Resource sampling during a benchmark window, and the environment stored beside the results.

The CPU and memory figures are real psutil readings of this test process; the GPU ones are read
from NVML only in the tests marked ``gpu``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from cvplatform.benchmarking import resources
from cvplatform.benchmarking.resources import ResourceSampler, cuda_version_text, environment
from cvplatform.gpu import GpuReport, probe_gpu

NO_GPU = GpuReport(False, "no GPU: made up for this test")
ENVIRONMENT_KEYS = {
    "cpu_model",
    "logical_cores",
    "physical_cores",
    "memory_mb",
    "os",
    "python",
    "numpy",
    "onnxruntime",
    "tensorrt",
    "gpu_name",
    "gpu_driver",
    "cuda_driver",
}
HAS_NVML_BINDINGS = importlib.util.find_spec("pynvml") is not None
REAL_GPU = probe_gpu()


def busy_for(seconds: float) -> int:
    end = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < end:
        count += 1
    return count


def test_a_busy_window_shows_process_cpu() -> None:
    with ResourceSampler(NO_GPU, interval_s=0.02) as sampler:
        busy_for(0.3)
    usage = sampler.usage()
    assert usage.samples >= 2
    # One core busy out of all of them: above 0, never above the whole machine.
    assert 0.0 < usage.process_cpu_percent <= 100.0 + 1e-6
    assert 0.0 < usage.machine_cpu_percent <= 100.0 + 1e-6
    assert usage.process_cpu_percent <= usage.machine_cpu_percent + 10.0


def test_an_allocation_in_the_window_raises_the_peak_memory() -> None:
    before_mb = psutil.Process().memory_info().rss / 2**20
    with ResourceSampler(NO_GPU, interval_s=0.01) as sampler:
        block = np.ones(30 * 2**20 // 8, dtype=np.float64)  # 30 MB, every page written
        time.sleep(0.05)
    del block
    assert sampler.usage().peak_host_memory_mb > before_mb + 20.0


def test_a_window_shorter_than_the_interval_still_has_a_sample() -> None:
    started = time.perf_counter()
    with ResourceSampler(NO_GPU, interval_s=30.0) as sampler:
        busy_for(0.05)
    assert time.perf_counter() - started < 2.0  # leaving does not wait out the interval
    usage = sampler.usage()
    assert usage.samples == 1
    assert usage.peak_host_memory_mb > 0.0


def test_sampling_stops_when_the_window_closes() -> None:
    with ResourceSampler(NO_GPU, interval_s=0.01) as sampler:
        time.sleep(0.05)
    samples = sampler.usage().samples
    time.sleep(0.05)
    assert sampler.usage().samples == samples


def test_without_a_gpu_the_gpu_figures_are_none_with_the_reason() -> None:
    with ResourceSampler(NO_GPU) as sampler:
        pass
    usage = sampler.usage()
    assert usage.gpu_percent is None and usage.vram_mb is None
    assert usage.gpu_unavailable_reason == NO_GPU.detail
    metrics = usage.metrics()
    assert set(metrics) == {
        "cpu_percent",
        "machine_cpu_percent",
        "host_memory_mb",
        "gpu_percent",
        "vram_mb",
    }
    assert metrics["gpu_percent"] is None and metrics["vram_mb"] is None
    assert metrics["host_memory_mb"] == usage.peak_host_memory_mb


@pytest.mark.skipif(REAL_GPU.available, reason="NVML works here: see the gpu tests")
def test_a_gpu_that_nvml_cannot_read_gives_none_with_the_reason() -> None:
    # A report claiming a GPU on a machine without one: NVML (or its bindings) fails for real.
    claimed = GpuReport(True, "1 GPU(s): made up for this test")
    with ResourceSampler(claimed) as sampler:
        pass
    usage = sampler.usage()
    assert usage.gpu_percent is None and usage.vram_mb is None
    reason = usage.gpu_unavailable_reason or ""
    expected = "NVML could not start" if HAS_NVML_BINDINGS else "nvidia-ml-py"
    assert expected in reason
    assert environment(claimed)["gpu_name"] == f"unavailable: {usage.gpu_unavailable_reason}"


def test_a_sampler_is_used_once_and_read_after_it_ran() -> None:
    sampler = ResourceSampler(NO_GPU)
    with pytest.raises(RuntimeError):
        sampler.usage()
    with sampler:
        pass
    with pytest.raises(RuntimeError), sampler:
        pass
    with pytest.raises(ValueError):
        ResourceSampler(NO_GPU, interval_s=0.0)


def test_environment_has_every_key_and_is_json() -> None:
    described = environment(NO_GPU)
    assert set(described) == ENVIRONMENT_KEYS
    json.dumps(described)
    assert described["logical_cores"] == psutil.cpu_count()
    assert described["numpy"] == np.__version__
    import onnxruntime

    assert described["onnxruntime"] == onnxruntime.__version__
    if importlib.util.find_spec("tensorrt") is None:
        assert described["tensorrt"] == "not installed"
    for key in ("gpu_name", "gpu_driver", "cuda_driver"):
        assert described[key] == f"unavailable: {NO_GPU.detail}"
    assert described["cpu_model"] and described["memory_mb"] > 0


def test_cpu_model_from_cpuinfo_or_a_fallback(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Made-up CPU @ 2.00GHz\nflags\t: fpu\n")
    assert resources._cpu_model(cpuinfo) == "Made-up CPU @ 2.00GHz"
    # No such line (or no such file): platform's answer, else "unknown", never empty.
    assert resources._cpu_model(tmp_path / "missing") != ""


def test_cuda_version_text() -> None:
    assert cuda_version_text(12040) == "12.4"
    assert cuda_version_text(11080) == "11.8"
    assert cuda_version_text(13000) == "13.0"


@pytest.mark.gpu
def test_nvml_figures_on_a_gpu() -> None:
    gpu = REAL_GPU
    with ResourceSampler(gpu, interval_s=0.02) as sampler:
        busy_for(0.2)
    usage = sampler.usage()
    assert usage.gpu_unavailable_reason is None
    assert usage.gpu_percent is not None and 0.0 <= usage.gpu_percent <= 100.0
    assert usage.vram_mb is not None and 0.0 < usage.vram_mb <= gpu.devices[0].memory_total_mb
    described = environment(gpu)
    json.dumps(described)
    assert described["gpu_name"] == gpu.devices[0].name
    assert re.fullmatch(r"\d+\.\d+", described["cuda_driver"])
    assert not described["gpu_driver"].startswith("unavailable")
