"""The conversion job's side of the sandbox: start the worker process, stop it at the wall-clock
limit, and turn what it left into a result or the error that says why it has none.

The rules themselves are plain values (:mod:`actors.models.sandbox`); the worker applies them to
itself (:mod:`actors.models.sandbox_worker`).
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from actors.models import landlock, sandbox
from actors.models.conversion import ConversionRequest, ConversionResult
from actors.models.sandbox import Limits, SandboxPolicy, WorkerResult
from cvplatform.config import Settings
from cvplatform.errors import ConversionFailed, InvalidModel, UnsafeModel

WORKER_MODULE = "actors.models.sandbox_worker"
_LOG_TAIL_BYTES = 4096


@dataclass(frozen=True)
class Ended:
    returncode: int | None
    timed_out: bool


def convert_in_sandbox(
    request: ConversionRequest, workdir: Path, settings: Settings
) -> ConversionResult:
    """Convert in a sandboxed worker process whose only writable folder is ``workdir``.

    Raises:
        InvalidModel: the upload is not a model of its kind (``UnsafeModel``: it uses a
            forbidden operation).
        ConversionFailed: the conversion failed, crashed, or passed a limit.
    """
    workdir, data_dir = workdir.resolve(), settings.data_dir.resolve()
    policy = sandbox.build_policy(
        landlock.abi_version(),
        sandbox.python_environment(),
        request.source_path.resolve(),
        workdir,
        data_dir,
        Limits.of(settings),
    )
    for folder in sandbox.worker_folders(workdir):
        folder.mkdir(parents=True, exist_ok=True)
    # Reasons keep their paths here: the kernel takes server paths out of every reason it
    # records (cvplatform.scrub), this one's too.
    ended = run_worker(sandbox.encode_request(request, policy, workdir), workdir, policy.limits)
    return _converted(_result_of(workdir, ended, policy.limits), policy, workdir)


def run_worker(request_json: str, workdir: Path, limits: Limits) -> Ended:
    """Run the worker on ``request_json`` until it ends or ``limits.timeout_s`` passes; then its
    process group (it and what it started) is killed."""
    env = sandbox.worker_environment(os.environ, workdir)
    with (workdir / sandbox.LOG_FILE).open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=env,
            start_new_session=True,  # its own process group, killed as one
        )
        try:
            process.communicate(request_json.encode(), timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            # Not reaped yet, so the group id cannot belong to anyone else.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return Ended(process.returncode, timed_out=True)
    return Ended(process.returncode, timed_out=False)


def _result_of(workdir: Path, ended: Ended, limits: Limits) -> WorkerResult:
    if ended.timed_out:
        raise ConversionFailed(sandbox.timed_out(limits))
    text = _plain_file_text(workdir / sandbox.RESULT_FILE, sandbox.MAX_RESULT_BYTES)
    if text is None:
        last_line = _last_log_line(workdir / sandbox.LOG_FILE)
        raise ConversionFailed(sandbox.ended_without_result(ended.returncode, limits, last_line))
    try:
        return sandbox.decode_result(text)
    except ValueError as error:
        raise ConversionFailed(
            f"the conversion process left an unreadable result: {error}"
        ) from error


def _converted(result: WorkerResult, policy: SandboxPolicy, workdir: Path) -> ConversionResult:
    message = result.message or f"the conversion ended {result.status}"
    if result.status == "invalid":
        raise UnsafeModel(message) if result.code == UnsafeModel.code else InvalidModel(message)
    if result.status == "failed":
        raise ConversionFailed(message)
    onnx_path = workdir / sandbox.OUTPUT_FOLDER / sandbox.ONNX_FILE
    if result.wrote_onnx and not _is_plain_file(onnx_path):
        # A link would make this (unsandboxed) process copy what it points at into the model.
        raise ConversionFailed("the conversion's ONNX output is not a plain file; refused")
    details = {**result.details, "sandbox": sandbox.describe(policy, result.applied)}
    return ConversionResult(onnx_path if result.wrote_onnx else None, details)


def _is_plain_file(path: Path) -> bool:
    try:
        status = path.lstat()
    except FileNotFoundError:
        return False
    return stat.S_ISREG(status.st_mode) and status.st_nlink == 1


def _plain_file_text(path: Path, limit: int) -> str | None:
    if not _is_plain_file(path):
        return None
    with path.open("rb") as source:
        return source.read(limit).decode(errors="replace")


def _last_log_line(path: Path) -> str:
    if not _is_plain_file(path):
        return ""
    with path.open("rb") as log:
        log.seek(max(0, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
        lines = [line.strip() for line in log.read().decode(errors="replace").splitlines()]
    said = [line for line in lines if line]
    return said[-1][:300] if said else ""
