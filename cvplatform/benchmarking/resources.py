"""What a benchmark costs the machine while it runs, and what machine it ran on.

``ResourceSampler`` samples on a daemon thread between ``__enter__`` and ``__exit__`` only, so the
figures cover the measured window and nothing around it. CPU percentages come from psutil: each
reading covers the time since the previous one, so the window's figure is their mean weighted by
the time each covers (the exact share of the window, not skewed by the short last reading). The
GPU figures come from NVML (``pynvml``, imported only when the probe found a GPU): utilisation is
the device's own reading over its last sampling period, averaged; VRAM is the device's memory in
use, its peak. MB here are 2**20 bytes, as in ``cvplatform.gpu``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import psutil

from cvplatform.gpu import GpuReport

_MB = 2**20
_MIN_COVERED_S = 1e-9
_NO_BINDINGS = "the NVML bindings (nvidia-ml-py) are not installed"


@dataclass(frozen=True)
class ResourceUsage:
    samples: int
    process_cpu_percent: float  # this process, as % of the whole machine (all cores = 100)
    machine_cpu_percent: float
    peak_host_memory_mb: float  # peak RSS of this process during the window
    gpu_percent: float | None  # NVML utilisation, mean over the window; None without a GPU
    vram_mb: float | None  # NVML memory used on the device, peak; None without a GPU
    gpu_unavailable_reason: str | None

    def metrics(self) -> dict[str, float | None]:
        """The resource metrics by their stored names."""
        return {
            "cpu_percent": self.process_cpu_percent,
            "machine_cpu_percent": self.machine_cpu_percent,
            "host_memory_mb": self.peak_host_memory_mb,
            "gpu_percent": self.gpu_percent,
            "vram_mb": self.vram_mb,
        }


class _NvmlDevice:
    """One GPU read through NVML; after any NVML error it reads nothing more and says why."""

    def __init__(self, gpu: GpuReport, index: int) -> None:
        self.reason: str | None = None if gpu.available else gpu.detail
        self._nvml: Any = None
        self._handle: Any = None
        if gpu.available:
            self._open(index)

    def _open(self, index: int) -> None:
        try:
            import pynvml
        except ImportError:
            self.reason = _NO_BINDINGS
            return
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as error:
            self.reason = f"NVML could not start: {error}"
            return
        self._nvml = pynvml
        try:
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        except pynvml.NVMLError as error:
            self._fail(f"NVML has no GPU {index}: {error}")

    def read(self) -> tuple[float, float] | None:
        """(utilisation %, memory used in MB), or None once NVML is unavailable."""
        if self._handle is None:
            return None
        try:
            utilisation = self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu
            used = self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used
        except self._nvml.NVMLError as error:
            self._fail(f"NVML failed while sampling: {error}")
            return None
        return float(utilisation), used / _MB

    def close(self) -> None:
        if self._nvml is not None:
            self._handle = None
            # A shutdown error after a failed read must not mask the benchmark's own outcome.
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()
            self._nvml = None

    def _fail(self, reason: str) -> None:
        self.reason = reason
        self.close()


class ResourceSampler:
    """Samples CPU, host memory and GPU on a thread while the ``with`` block runs.

    One sample is taken at ``__exit__`` too, so a window shorter than ``interval_s`` still has one.
    A sampler is used once.
    """

    def __init__(
        self,
        gpu: GpuReport,
        interval_s: float = 0.05,
        gpu_index: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"the sampling interval must be above 0 s, not {interval_s}")
        self._gpu_report = gpu
        self._interval_s = interval_s
        self._gpu_index = gpu_index
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process = psutil.Process()
        self._cores = psutil.cpu_count() or 1
        self._gpu: _NvmlDevice | None = None
        self._last_time = 0.0
        self._samples = 0
        self._weights = 0.0  # seconds the CPU readings cover
        self._process_cpu = 0.0  # sums of reading x seconds covered
        self._machine_cpu = 0.0
        self._peak_rss = 0
        self._gpu_readings: list[float] = []
        self._peak_vram_mb = 0.0

    def __enter__(self) -> ResourceSampler:
        if self._thread is not None:
            raise RuntimeError("a ResourceSampler samples one window; make a new one")
        # A first call only starts psutil's count, so the first reading covers the window.
        self._process.cpu_percent(None)
        psutil.cpu_percent(None)
        self._last_time = self._clock()
        self._peak_rss = self._process.memory_info().rss
        self._gpu = _NvmlDevice(self._gpu_report, self._gpu_index)
        self._thread = threading.Thread(target=self._loop, name="resource-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        if self._gpu is not None:
            self._gpu.close()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def _sample(self) -> None:
        now = self._clock()
        process_cpu = self._process.cpu_percent(None) / self._cores
        machine_cpu = psutil.cpu_percent(None)
        rss = self._process.memory_info().rss
        gpu = self._gpu.read() if self._gpu is not None else None
        with self._lock:
            # A floor, not 0: readings over no measurable time (a coarse clock) still count.
            covered = max(_MIN_COVERED_S, now - self._last_time)
            self._last_time = now
            self._samples += 1
            self._weights += covered
            self._process_cpu += process_cpu * covered
            self._machine_cpu += machine_cpu * covered
            self._peak_rss = max(self._peak_rss, rss)
            if gpu is not None:
                self._gpu_readings.append(gpu[0])
                self._peak_vram_mb = max(self._peak_vram_mb, gpu[1])

    def usage(self) -> ResourceUsage:
        """What the window used so far (all of it once the ``with`` block has ended).

        Raises:
            RuntimeError: no sample yet (the sampler was never entered).
        """
        with self._lock:
            if self._samples == 0:
                raise RuntimeError("no sample yet: read usage() after the with block")
            reason = self._gpu.reason if self._gpu is not None else self._gpu_report.detail
            measured_gpu = reason is None and bool(self._gpu_readings)
            return ResourceUsage(
                samples=self._samples,
                process_cpu_percent=self._process_cpu / self._weights,
                machine_cpu_percent=self._machine_cpu / self._weights,
                peak_host_memory_mb=self._peak_rss / _MB,
                gpu_percent=float(np.mean(self._gpu_readings)) if measured_gpu else None,
                vram_mb=self._peak_vram_mb if measured_gpu else None,
                gpu_unavailable_reason=reason,
            )


def environment(gpu: GpuReport, gpu_index: int = 0) -> dict[str, Any]:
    """The machine and software a benchmark ran on, JSON-ready, stored beside its results.

    The GPU fields come from NVML when the probe found a GPU, else ``"unavailable: <reason>"``.
    Never raises for a missing library: it says ``"not installed"``.
    """
    return {
        "cpu_model": _cpu_model(Path("/proc/cpuinfo")),
        "logical_cores": psutil.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_mb": psutil.virtual_memory().total // _MB,
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": _onnxruntime_version(),
        "tensorrt": _distribution_version("tensorrt"),
        **_gpu_environment(gpu, gpu_index),
    }


def _cpu_model(cpuinfo: Path) -> str:
    try:
        lines = cpuinfo.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or "unknown"


def _onnxruntime_version() -> str:
    # The CPU and GPU wheels ship the same module under two distribution names: ask the module.
    try:
        import onnxruntime
    except ImportError:
        return "not installed"
    return str(onnxruntime.__version__)


def _distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _gpu_environment(gpu: GpuReport, index: int) -> dict[str, str]:
    keys = ("gpu_name", "gpu_driver", "cuda_driver")
    if not gpu.available:
        return dict.fromkeys(keys, f"unavailable: {gpu.detail}")
    try:
        import pynvml
    except ImportError:
        return dict.fromkeys(keys, f"unavailable: {_NO_BINDINGS}")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        return dict.fromkeys(keys, f"unavailable: NVML could not start: {error}")
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        return {
            "gpu_name": _text(pynvml.nvmlDeviceGetName(handle)),
            "gpu_driver": _text(pynvml.nvmlSystemGetDriverVersion()),
            "cuda_driver": cuda_version_text(pynvml.nvmlSystemGetCudaDriverVersion()),
        }
    except pynvml.NVMLError as error:
        return dict.fromkeys(keys, f"unavailable: NVML failed: {error}")
    finally:
        pynvml.nvmlShutdown()


def cuda_version_text(version: int) -> str:
    """NVML's CUDA version number as people write it: 12040 -> "12.4"."""
    return f"{version // 1000}.{version % 1000 // 10}"


def _text(value: str | bytes) -> str:
    # Older NVML bindings return bytes.
    return value if isinstance(value, str) else value.decode()


def gpu_now(gpu: GpuReport, index: int = 0) -> dict[str, Any]:
    """One reading of a GPU's utilisation and memory in use, or why there is none (for the
    inference pool's health and metrics; the benchmark samples through ``ResourceSampler``)."""
    device = _NvmlDevice(gpu, index)
    try:
        reading = device.read()
    finally:
        device.close()
    if reading is None:
        return {"available": False, "reason": device.reason or gpu.detail}
    utilisation, used_mb = reading
    return {
        "available": True,
        "device": gpu.detail,
        "utilization_percent": utilisation,
        "memory_used_mb": round(used_mb, 1),
    }
