"""The sandbox a conversion runs in, as plain values: what it may read and write, its limits, the
environment it starts with, the JSON that goes in and comes back, and what the model's details
say about it.

The conversion job starts ``python -m actors.models.sandbox_worker`` (see
:mod:`actors.models.sandbox_run`); the worker restricts itself with Landlock and ``setrlimit``
before it loads the upload. It may read the Python environment, a few system files and the one
uploaded file, and write only its working folder: the data directory (``jwt-secret``,
``cvp.db``, other models) stays out of its reach, and so does TCP.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cvplatform.errors import ConversionFailed

if TYPE_CHECKING:
    from actors.models.conversion import ConversionRequest
    from cvplatform.config import Settings

RESULT_FILE = "result.json"
LOG_FILE = "worker.log"
OUTPUT_FOLDER = "out"
ONNX_FILE = "model.onnx"
MAX_RESULT_BYTES = 4 * 1024 * 1024
_SIGNALS = {int(known) for known in signal.Signals}

# What the dynamic loader, the C library and the frameworks read of the system; not /etc as a
# whole (keys and passwords live there) and not /tmp or /home.
SYSTEM_READS = (
    "/usr",
    "/lib",
    "/lib64",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    # Its own /proc entries only ("/proc/self" resolves in the worker): another process's
    # environ would hand over what the platform's processes were started with.
    "/proc/self",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/sys/kernel",
    "/proc/sys/vm",
    "/sys/devices/system/cpu",
    "/sys/fs/cgroup",
    "/dev/urandom",
    "/dev/random",
    "/dev/zero",
)
SYSTEM_WRITES = ("/dev/null",)
# The platform's own packages, imported by the worker after it has restricted itself.
PLATFORM_PACKAGES = ("actors", "cvplatform")
# The only variables the worker inherits: no CVP_* (the admin password), no RAY_* (tokens).
PASSED_VARIABLES = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "LD_LIBRARY_PATH",
    "PYTHONPATH",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)

WorkerStatus = Literal["ready", "invalid", "failed"]


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    cpu_s: int
    timeout_s: float

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            settings.conversion_memory_mb, settings.conversion_cpu_s, settings.conversion_timeout_s
        )


@dataclass(frozen=True)
class SandboxPolicy:
    """What the worker does to itself before it loads the upload.

    ``landlock_abi`` is ``None`` where the kernel has no Landlock: the worker then runs with its
    limits but without file-system and network rules, and the model's details say so.
    """

    landlock_abi: int | None
    read_paths: tuple[str, ...]
    write_paths: tuple[str, ...]
    limits: Limits


def python_environment() -> list[Path]:
    """Where this interpreter, its libraries and the platform's packages live, resolved."""
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for package in PLATFORM_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            found.update(spec.submodule_search_locations)
    return sorted({Path(path).resolve() for path in found})


def build_policy(
    abi: int | None,
    environment: list[Path],
    source_file: Path,
    workdir: Path,
    data_dir: Path,
    limits: Limits,
) -> SandboxPolicy:
    """The rules for one conversion; every path already resolved.

    Raises:
        ConversionFailed: a folder the worker must read holds the data directory, so the rules
            would open it (the operator moves ``CVP_DATA_DIR``).
    """
    reads = [*environment, *(Path(path) for path in SYSTEM_READS)]
    for folder in reads:
        if data_dir == folder or data_dir.is_relative_to(folder):
            raise ConversionFailed(
                f"the data directory lies inside {folder}, which the sandboxed conversion must "
                "read: move CVP_DATA_DIR out of the Python environment and system folders"
            )
    return SandboxPolicy(
        abi,
        tuple(str(path) for path in [*reads, source_file]),
        (str(workdir), *SYSTEM_WRITES),
        limits,
    )


def worker_environment(parent: Mapping[str, str], workdir: Path) -> dict[str, str]:
    """The worker's variables: a few of the parent's, and every home, cache and temporary
    folder inside its working folder (the one place it may write)."""
    env = {name: parent[name] for name in PASSED_VARIABLES if name in parent}
    home, temporary = workdir / "home", workdir / "tmp"
    return env | {
        "HOME": str(home),
        "TMPDIR": str(temporary),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "YOLO_CONFIG_DIR": str(home / ".config" / "Ultralytics"),
        "MPLCONFIGDIR": str(home / ".config" / "matplotlib"),
        "YOLO_OFFLINE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",  # conversions run on the CPU
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        # getpass.getuser() reads these before the password database, which the rules hide.
        "USER": "cvp-sandbox",
        "LOGNAME": "cvp-sandbox",
    }


def worker_folders(workdir: Path) -> list[Path]:
    """The folders the worker expects to find in its working folder."""
    return [workdir / OUTPUT_FOLDER, workdir / "home", workdir / "tmp"]


# --- the request -------------------------------------------------------------------------------


def encode_policy(policy: SandboxPolicy) -> str:
    return json.dumps(dataclasses.asdict(policy))


def decode_policy(text: str) -> SandboxPolicy:
    return _policy_of(json.loads(text))


def _policy_of(fields: dict[str, Any]) -> SandboxPolicy:
    return SandboxPolicy(
        fields["landlock_abi"],
        tuple(fields["read_paths"]),
        tuple(fields["write_paths"]),
        Limits(**fields["limits"]),
    )


def encode_request(request: ConversionRequest, policy: SandboxPolicy, workdir: Path) -> str:
    conversion = dataclasses.asdict(request)
    conversion["source_path"] = str(request.source_path)
    return json.dumps(
        {"conversion": conversion, "policy": dataclasses.asdict(policy), "workdir": str(workdir)}
    )


def decode_request(text: str) -> tuple[ConversionRequest, SandboxPolicy, Path]:
    from actors.models.conversion import ConversionRequest
    from cvplatform.archives import ExtractLimits

    message = json.loads(text)
    conversion = message["conversion"]
    request = ConversionRequest(
        **{
            **conversion,
            "source_path": Path(conversion["source_path"]),
            "extract_limits": ExtractLimits(**conversion["extract_limits"]),
        }
    )
    return request, _policy_of(message["policy"]), Path(message["workdir"])


# --- the result --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerResult:
    """How the worker's conversion ended. ``applied`` says what the sandbox held."""

    status: WorkerStatus
    message: str | None = None
    code: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    wrote_onnx: bool = False
    applied: dict[str, Any] = field(default_factory=dict)


def encode_result(result: WorkerResult) -> str:
    return json.dumps(dataclasses.asdict(result), default=str)


def decode_result(text: str) -> WorkerResult:
    """Read what the worker wrote, trusting none of its shape.

    Raises:
        ValueError: not a result the worker writes.
    """
    message = json.loads(text)
    if not isinstance(message, dict) or message.get("status") not in ("ready", "invalid", "failed"):
        raise ValueError("the result names no known status")
    for name in ("details", "applied"):
        if not isinstance(message.get(name, {}), dict):
            raise ValueError(f"the result's {name} is not an object")
    for name in ("message", "code"):
        if not isinstance(message.get(name), str | None):
            raise ValueError(f"the result's {name} is not text")
    return WorkerResult(
        message["status"],
        message.get("message"),
        message.get("code"),
        message.get("details", {}),
        message.get("wrote_onnx") is True,
        message.get("applied", {}),
    )


def describe(policy: SandboxPolicy, applied: Mapping[str, Any]) -> dict[str, Any]:
    """``details["sandbox"]`` of a converted model: what held while its code ran."""
    limits = {
        "memory_limit_mb": policy.limits.memory_mb,
        "cpu_limit_s": policy.limits.cpu_s,
        "timeout_s": policy.limits.timeout_s,
    }
    abi = applied.get("landlock_abi")
    if isinstance(abi, int):
        return {
            "sandboxed": True,
            "landlock_abi": abi,
            "reads": "the Python environment, system libraries and the uploaded file",
            "writes": "its own working folder",
            "network": "TCP refused" if abi >= 4 else "not restricted (Landlock ABI < 4)",
            **limits,
        }
    return {
        "sandboxed": False,
        "landlock": applied.get("landlock", "missing"),
        "note": (
            "ran unsandboxed: Landlock is not available on this kernel, so the conversion could "
            "read and write what the platform's user can; only the limits below applied"
        ),
        **limits,
    }


def ended_without_result(returncode: int | None, limits: Limits, last_line: str) -> str:
    """Why the worker ended without writing a result, from its exit status and last log line."""
    said = f": {last_line}" if last_line else ""
    if returncode is not None and returncode < 0:
        signal_number = -returncode
        if signal_number == signal.SIGXCPU:
            return (
                f"the conversion used more than its CPU-time limit of {limits.cpu_s} s and was "
                "stopped (CVP_CONVERSION_CPU_S)"
            )
        name = signal.Signals(signal_number).name if signal_number in _SIGNALS else signal_number
        return (
            f"the conversion process was killed by {name}{said}; it may have passed its memory "
            f"limit of {limits.memory_mb} MiB (CVP_CONVERSION_MEMORY_MB) or its CPU-time limit "
            f"of {limits.cpu_s} s (CVP_CONVERSION_CPU_S)"
        )
    return f"the conversion process exited with status {returncode} and no result{said}"


def timed_out(limits: Limits) -> str:
    return (
        f"the conversion ran past its time limit of {limits.timeout_s:g} s and was stopped "
        "(CVP_CONVERSION_TIMEOUT_S)"
    )
