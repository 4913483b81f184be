"""The sandboxed conversion process: ``python -m actors.models.sandbox_worker`` reads its request
(JSON) on standard input, restricts itself, converts, and writes ``result.json`` in its working
folder.

The restrictions come first, before the upload or any framework is loaded: limits on memory and
CPU time, then Landlock (files and TCP). Neither can be lifted again by the code that follows,
and both hold for any process that code starts.
"""

from __future__ import annotations

import ctypes
import dataclasses
import resource
import signal
import sys
from pathlib import Path
from typing import Any

from actors.models import landlock, sandbox
from actors.models.sandbox import SandboxPolicy, WorkerResult
from cvplatform.errors import ConversionFailed, InvalidModel

_PR_SET_PDEATHSIG = 1
_CPU_GRACE_S = 5  # between SIGXCPU at the soft limit and SIGKILL at the hard one


def _limit(kind: int, soft: int, hard: int | None = None) -> None:
    """Lower a limit; never above the hard limit the process already has (raising it fails)."""
    ceiling = resource.getrlimit(kind)[1]
    hard = soft if hard is None else hard
    if ceiling != resource.RLIM_INFINITY:
        soft, hard = min(soft, ceiling), min(hard, ceiling)
    resource.setrlimit(kind, (soft, hard))


def set_limits(limits: sandbox.Limits) -> dict[str, Any]:
    """Memory as RLIMIT_DATA (heap and private mappings): RLIMIT_AS would also count the
    address space that TensorFlow and PyTorch reserve without using, and refuse to load them."""
    _limit(resource.RLIMIT_DATA, limits.memory_mb * 1024 * 1024)
    _limit(resource.RLIMIT_CPU, limits.cpu_s, limits.cpu_s + _CPU_GRACE_S)
    _limit(resource.RLIMIT_CORE, 0)  # a crash must not write the process's memory to disk
    # Die with the job that started us, rather than run on unwatched.
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    return {"memory_limit_mb": limits.memory_mb, "cpu_limit_s": limits.cpu_s}


def landlock_rules(policy: SandboxPolicy) -> list[landlock.Rule]:
    return [landlock.Rule(Path(path), landlock.READ) for path in policy.read_paths] + [
        landlock.Rule(Path(path), landlock.WRITE) for path in policy.write_paths
    ]


def enter_sandbox(policy: SandboxPolicy) -> dict[str, Any]:
    """Restrict this process as ``policy`` says; returns what applied.

    Raises:
        landlock.LandlockError: the kernel said it has Landlock but refused the rules.
    """
    applied = set_limits(policy.limits)
    if policy.landlock_abi is None:
        return applied | {"landlock": "missing: the kernel offers no Landlock"}
    landlock.restrict_self(landlock_rules(policy), policy.landlock_abi)
    return applied | {"landlock_abi": policy.landlock_abi}


def convert(request: Any, output: Path, limits: sandbox.Limits) -> WorkerResult:
    """Run the conversion; every way it ends becomes a result."""
    from actors.models.conversion import convert as run_conversion

    try:
        converted = run_conversion(request, output)
    except InvalidModel as error:
        return WorkerResult("invalid", error.message, error.code)
    except ConversionFailed as error:
        return WorkerResult("failed", error.message, error.code)
    except MemoryError:
        reason = (
            f"the conversion ran out of memory: it may use {limits.memory_mb} MiB "
            "(CVP_CONVERSION_MEMORY_MB)"
        )
        return WorkerResult("failed", reason, "out_of_memory")
    except Exception as error:  # the upload's own code, or a framework, failed unexpectedly
        reason = f"the conversion crashed: {type(error).__name__}: {error}"
        return WorkerResult("failed", reason[:1000], "conversion_failed")
    return WorkerResult(
        "ready", details=converted.details, wrote_onnx=converted.onnx_path is not None
    )


def main() -> int:
    request, policy, workdir = sandbox.decode_request(sys.stdin.read())
    try:
        applied = enter_sandbox(policy)
    except OSError as error:
        result = WorkerResult("failed", f"the conversion sandbox could not be set up: {error}")
    else:
        converted = convert(request, workdir / sandbox.OUTPUT_FOLDER, policy.limits)
        result = dataclasses.replace(converted, applied=applied)
    (workdir / sandbox.RESULT_FILE).write_text(sandbox.encode_result(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
