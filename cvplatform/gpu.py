"""What GPUs this machine has, asked of NVML; never guessed.

Without the NVML bindings or an NVIDIA driver the answer is "unavailable" with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GpuDevice:
    index: int
    name: str
    memory_total_mb: int


@dataclass(frozen=True)
class GpuReport:
    available: bool
    detail: str
    devices: tuple[GpuDevice, ...] = field(default=())


def probe_gpu() -> GpuReport:
    try:
        import pynvml
    except ImportError:
        return GpuReport(
            False,
            "no GPU: the NVML bindings (nvidia-ml-py) are not installed; "
            "on a CUDA host run `make install-gpu`",
        )
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        return GpuReport(False, f"no GPU: NVML could not start ({error}); no NVIDIA driver here")
    try:
        devices = tuple(_describe(pynvml, index) for index in range(pynvml.nvmlDeviceGetCount()))
    finally:
        pynvml.nvmlShutdown()
    if not devices:
        return GpuReport(False, "no GPU: NVML found no device")
    names = ", ".join(f"{device.name} ({device.memory_total_mb} MB)" for device in devices)
    return GpuReport(True, f"{len(devices)} GPU(s): {names}", devices)


def _describe(pynvml: Any, index: int) -> GpuDevice:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    name = pynvml.nvmlDeviceGetName(handle)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    return GpuDevice(index, name if isinstance(name, str) else name.decode(), memory.total // 2**20)
