"""Uploaded model code runs sandboxed: the conversion job run in-process through the kernel (no
Ray), its worker a real subprocess under Landlock, on a real store and a data directory that
holds a JWT secret. The malicious models of issue 10 are refused or fail with the reason, and
the secret, the database and the files stay as they were."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

# torchvision before TensorFlow: imported after it, torchvision crashes the process (their native
# libraries clash), and these tests load TensorFlow into the test process to build its graphs.
import torchvision  # noqa: F401

from actors.jobs.registry import run_to_end
from actors.models import landlock, sandbox, sandbox_run
from actors.models.conversion import ConversionRequest
from actors.models.job import conversion_job
from actors.models.sandbox import Limits
from cvplatform.config import Settings
from store import queries
from store.records import ModelRecord
from tests import models_kit
from tests.jobs_kit import WriterStore, reporter_for, settings_in

HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None
HAS_LANDLOCK = landlock.abi_version() is not None
needs_landlock = pytest.mark.skipif(not HAS_LANDLOCK, reason="the kernel has no Landlock")
needs_tensorflow = pytest.mark.skipif(not HAS_TENSORFLOW, reason="the tensorflow extra")


@pytest.fixture
def secret(settings: Settings) -> bytes:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    value = hashlib.sha512(b"the key that signs admin tokens").digest()  # 64 bytes
    settings.jwt_secret_path.write_bytes(value)
    return value


@pytest.fixture
def kit(tmp_path: Path) -> Path:
    folder = tmp_path / "kit"  # outside the data directory, as an engineer's laptop is
    folder.mkdir()
    return folder


def _upload(
    settings: Settings, store: WriterStore, path: Path, source_format: str, **fields: Any
) -> str:
    """What the upload route leaves: the file under artifacts, the row ``uploaded``."""
    model_id = uuid.uuid4().hex
    relative = f"models/{model_id}/source{path.suffix}"
    target = settings.artifacts_dir / relative
    target.parent.mkdir(parents=True)
    shutil.copyfile(path, target)
    framework = {"onnx": "onnx", "torchscript": "pytorch"}.get(source_format, "tensorflow")
    graph_names = fields.pop("graph_names", None)
    store.call_sync(
        "create_model",
        model={
            "id": model_id,
            "name": f"upload-{model_id[:8]}",
            "framework": framework,
            "source_format": source_format,
            "task_type": "classification",
            "weights_origin": "uploaded",
            "source_filename": path.name,
            "details": {"graph_names": graph_names} if graph_names else {},
            **fields,
        },
        source={"path": relative, "sha256": "0" * 64, "size_bytes": target.stat().st_size},
    )
    return model_id


def _convert(settings: Settings, store: WriterStore, model_id: str) -> ModelRecord:
    job = conversion_job(model_id)
    run_to_end(job, reporter_for(settings, job, store))
    model = queries.model_by_id(store.writer._db, model_id)
    assert model is not None
    return model


def _files(settings: Settings) -> dict[str, str]:
    """Every file of the data directory but the database, by its hash."""
    return {
        str(path.relative_to(settings.data_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in settings.data_dir.rglob("*")
        if path.is_file() and not path.name.startswith("cvp.db")
    }


def _rows(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but ``models`` (whose status the conversion sets)."""
    with sqlite3.connect(settings.db_path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr)  # noqa: S608
            for table in tables
            if table != "models"
        }


class Untouched:
    """The data directory before a malicious model ran, to compare with after."""

    def __init__(self, settings: Settings, secret: bytes) -> None:
        self.settings, self.secret = settings, secret
        self.files, self.rows = _files(settings), _rows(settings)

    def check(self, model: ModelRecord) -> None:
        assert self.settings.jwt_secret_path.read_bytes() == self.secret
        assert _files(self.settings) == self.files  # nothing written, changed or deleted
        assert _rows(self.settings) == self.rows
        told = json.dumps([model.status_reason, model.details]).encode()
        assert self.secret.hex().encode() not in told and self.secret not in told


def _refused_with(model: ModelRecord, words: str) -> None:
    assert (model.status, model.onnx) == ("invalid", None), model.status_reason
    assert model.status_reason is not None and words in model.status_reason


# --- the three uploads of the issue, and a fourth ---------------------------------------------


@needs_tensorflow
def test_a_frozen_graph_that_reads_the_jwt_secret_is_refused(
    settings: Settings, store: WriterStore, secret: bytes, kit: Path
) -> None:
    path, inputs, outputs = models_kit.secret_reading_frozen_graph(
        kit / "leak.pb", settings.jwt_secret_path
    )
    model_id = _upload(
        settings, store, path, "tf_frozen_graph", graph_names={"inputs": inputs, "outputs": outputs}
    )
    untouched = Untouched(settings, secret)
    model = _convert(settings, store, model_id)
    _refused_with(model, "the graph uses ReadFile, which can read server files")
    untouched.check(model)


@needs_tensorflow
def test_a_saved_model_that_writes_a_file_is_refused(
    settings: Settings, store: WriterStore, secret: bytes, kit: Path
) -> None:
    target = settings.data_dir / "written-by-the-model"
    path = models_kit.file_writing_saved_model_zip(kit / "writer.zip", target)
    model_id = _upload(settings, store, path, "tf_saved_model")
    untouched = Untouched(settings, secret)
    model = _convert(settings, store, model_id)
    _refused_with(model, "the graph uses WriteFile, which can write server files")
    assert not target.exists()
    untouched.check(model)


def test_a_torchscript_that_reads_the_jwt_secret_is_refused(
    settings: Settings, store: WriterStore, secret: bytes, kit: Path
) -> None:
    path = models_kit.secret_reading_torchscript(
        kit / "leak.pt", settings.jwt_secret_path, len(secret)
    )
    model_id = _upload(settings, store, path, "torchscript")
    untouched = Untouched(settings, secret)
    model = _convert(settings, store, model_id)
    _refused_with(model, "the graph uses aten::from_file, which can read server files")
    untouched.check(model)


def test_an_onnx_file_whose_weights_point_at_the_secret_is_refused(
    settings: Settings, store: WriterStore, secret: bytes, kit: Path
) -> None:
    # From artifacts/models/<id>/, three folders up is the data directory.
    path = models_kit.onnx_with_external_data(kit / "ext.onnx", "../../../jwt-secret")
    model_id = _upload(settings, store, path, "onnx")
    untouched = Untouched(settings, secret)
    model = _convert(settings, store, model_id)
    _refused_with(model, "'../../../jwt-secret'")
    untouched.check(model)


# --- the sandbox itself, with the inspection bypassed -----------------------------------------

# The worker as the job starts it, but with the TorchScript inspection switched off: what is left
# between the model and the secret is Landlock.
_UNINSPECTED_WORKER = (
    "from actors.models import graph_inspection, sandbox_worker\n"
    "graph_inspection.check_torchscript = lambda module: None\n"
    "raise SystemExit(sandbox_worker.main())\n"
)


def _run_uninspected(
    settings: Settings, source: Path, workdir: Path, abi: int | None
) -> sandbox.WorkerResult:
    # No input_shape: the worker runs forward once to try the usual one, so the read comes first.
    request = ConversionRequest(source, "torchscript", "classification")
    policy = sandbox.build_policy(
        abi,
        sandbox.python_environment(),
        source.resolve(),
        workdir.resolve(),
        settings.data_dir.resolve(),
        Limits(memory_mb=4096, cpu_s=300, timeout_s=300),
    )
    for folder in sandbox.worker_folders(workdir):
        folder.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-c", _UNINSPECTED_WORKER],
        input=sandbox.encode_request(request, policy, workdir).encode(),
        env=sandbox.worker_environment({"PATH": "/usr/bin:/bin"}, workdir),
        cwd=workdir,
        capture_output=True,
        timeout=300,
        check=True,
    )
    return sandbox.decode_result((workdir / sandbox.RESULT_FILE).read_text())


@needs_landlock
def test_landlock_stops_a_read_of_the_data_dir_that_the_inspection_missed(
    settings: Settings, secret: bytes, kit: Path
) -> None:
    source = settings.artifacts_dir / "models" / "m" / "source.pt"
    source.parent.mkdir(parents=True)
    models_kit.secret_reading_torchscript(source, settings.jwt_secret_path, len(secret))
    # Without Landlock the model reads the secret, and the conversion succeeds: the attack works.
    exposed = _run_uninspected(settings, source, settings.staging_dir / "exposed", abi=None)
    assert exposed.status == "ready" and exposed.wrote_onnx
    confined = _run_uninspected(
        settings, source, settings.staging_dir / "confined", abi=landlock.abi_version()
    )
    assert confined.status != "ready" and not confined.wrote_onnx
    assert confined.message is not None and "Permission denied" in confined.message
    assert confined.applied["landlock_abi"] == landlock.abi_version()
    assert not (settings.staging_dir / "confined" / sandbox.OUTPUT_FOLDER / "model.onnx").exists()
    assert settings.jwt_secret_path.read_bytes() == secret


_PROBE = """
import json, os, socket, sys
from actors.models import sandbox, sandbox_worker

_, policy, secret, outside = sys.argv
sandbox_worker.enter_sandbox(sandbox.decode_policy(policy))
attempts = {
    "read the secret": lambda: open(secret, "rb").read(),
    "read the parent's environment": lambda: open(f"/proc/{os.getppid()}/environ", "rb").read(),
    "write outside": lambda: open(outside, "w").write("x"),
    "connect over TCP": lambda: socket.create_connection(("127.0.0.1", 9), timeout=5),
}
said = {}
for attempt, action in attempts.items():
    try:
        action()
        said[attempt] = "done"
    except OSError as error:
        said[attempt] = type(error).__name__
print(json.dumps(said))
"""


def _probe(settings: Settings, abi: int | None) -> dict[str, str]:
    workdir = settings.staging_dir / f"probe-{abi}"
    workdir.mkdir(parents=True)
    policy = sandbox.build_policy(
        abi,
        sandbox.python_environment(),
        settings.jwt_secret_path.with_name("nothing-uploaded"),
        workdir.resolve(),
        settings.data_dir.resolve(),
        Limits(memory_mb=1024, cpu_s=30, timeout_s=30),
    )
    outside = settings.data_dir / "written-from-the-sandbox"
    arguments = [sandbox.encode_policy(policy), str(settings.jwt_secret_path), str(outside)]
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, *arguments],
        env=sandbox.worker_environment({"PATH": "/usr/bin:/bin"}, workdir),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outside.unlink(missing_ok=True)
    said: dict[str, str] = json.loads(probe.stdout)
    return said


@needs_landlock
def test_the_sandbox_keeps_files_the_parents_environment_and_tcp_out_of_reach(
    settings: Settings, secret: bytes
) -> None:
    attempts = _probe(settings, abi=None)
    # Unsandboxed, each attempt goes through (the TCP port is closed: refused, not denied).
    assert attempts == {
        "read the secret": "done",
        "read the parent's environment": "done",
        "write outside": "done",
        "connect over TCP": "ConnectionRefusedError",
    }
    assert set(_probe(settings, abi=landlock.abi_version()).values()) == {"PermissionError"}


# --- limits ---------------------------------------------------------------------------------------


def _workers_under(folder: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        cwd = process.info["cwd"] or ""
        if sandbox_run.WORKER_MODULE in (process.info["cmdline"] or []) and cwd.startswith(
            str(folder)
        ):
            found.append(process)
    return found


def test_a_conversion_past_its_time_limit_is_stopped_and_the_model_fails(
    tmp_path: Path, store: WriterStore, kit: Path
) -> None:
    settings = settings_in(tmp_path / "data", conversion_timeout_s=3)
    path = models_kit.endless_torchscript(kit / "endless.pt")
    model_id = _upload(settings, store, path, "torchscript", input_shape="[3, 8, 8]")
    started = time.monotonic()
    model = _convert(settings, store, model_id)
    assert time.monotonic() - started < 60
    assert model.status == "failed"
    assert model.status_reason == (
        "the conversion ran past its time limit of 3 s and was stopped (CVP_CONVERSION_TIMEOUT_S)"
    )
    assert _workers_under(tmp_path) == []  # killed, not left running


def test_a_worker_past_its_cpu_time_limit_is_stopped(settings: Settings, kit: Path) -> None:
    source = models_kit.endless_torchscript(kit / "endless.pt")
    workdir = settings.staging_dir / "cpu"
    limits = Limits(memory_mb=4096, cpu_s=1, timeout_s=120)
    policy = sandbox.build_policy(
        landlock.abi_version(),
        sandbox.python_environment(),
        source,
        workdir,
        settings.data_dir.resolve(),
        limits,
    )
    for folder in sandbox.worker_folders(workdir):
        folder.mkdir(parents=True)
    request = ConversionRequest(source, "torchscript", "classification", input_shape=[3, 8, 8])
    ended = sandbox_run.run_worker(
        sandbox.encode_request(request, policy, workdir), workdir, limits
    )
    assert (ended.returncode, ended.timed_out) == (-signal.SIGXCPU, False)
    assert not (workdir / sandbox.RESULT_FILE).exists()
    assert "more than its CPU-time limit of 1 s" in sandbox.ended_without_result(
        ended.returncode, limits, ""
    )


def test_a_worker_past_its_memory_limit_fails_with_the_reason(
    settings: Settings, kit: Path
) -> None:
    source = models_kit.memory_hungry_torchscript(kit / "hungry.pt", gigabytes=4)
    workdir = settings.staging_dir / "memory"
    limits = Limits(memory_mb=1536, cpu_s=120, timeout_s=120)
    policy = sandbox.build_policy(
        landlock.abi_version(),
        sandbox.python_environment(),
        source,
        workdir,
        settings.data_dir.resolve(),
        limits,
    )
    for folder in sandbox.worker_folders(workdir):
        folder.mkdir(parents=True)
    request = ConversionRequest(source, "torchscript", "classification", input_shape=[4])
    ended = sandbox_run.run_worker(
        sandbox.encode_request(request, policy, workdir), workdir, limits
    )
    assert ended == sandbox_run.Ended(0, timed_out=False)
    result = sandbox.decode_result((workdir / sandbox.RESULT_FILE).read_text())
    assert result.status == "failed" and not result.wrote_onnx
    assert result.message is not None and "can't allocate memory" in result.message


# --- Landlock there or not ------------------------------------------------------------------------


@pytest.mark.parametrize("kernel_has_landlock", [True, False])
def test_what_the_details_say_of_the_sandbox(
    settings: Settings,
    store: WriterStore,
    kit: Path,
    monkeypatch: pytest.MonkeyPatch,
    kernel_has_landlock: bool,
) -> None:
    if kernel_has_landlock and not HAS_LANDLOCK:
        pytest.skip("the kernel has no Landlock")
    if not kernel_has_landlock:
        monkeypatch.setattr(landlock, "abi_version", lambda: None)  # the probe: the environment
    model_id = _upload(settings, store, models_kit.onnx_classifier(kit / "tiny.onnx"), "onnx")
    model = _convert(settings, store, model_id)
    assert model.status == "ready", model.status_reason
    said = model.details["sandbox"]
    assert said["sandboxed"] is kernel_has_landlock
    assert (said["memory_limit_mb"], said["cpu_limit_s"], said["timeout_s"]) == (8192, 1800, 600)
    if kernel_has_landlock:
        assert said["landlock_abi"] == landlock.abi_version()
        assert said["network"] == "TCP refused"
    else:
        assert said["note"].startswith("ran unsandboxed: Landlock is not available")
