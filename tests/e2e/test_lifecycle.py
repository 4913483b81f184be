"""A platform's life as an operator runs it, on one data directory: `cvp up --detach`, the
operator's commands against the running platform, a queued training and a running one, `cvp down`,
`cvp up` again (the queued job runs, the running one ends "interrupted"), `cvp down`, a restore.

On the way, Ray's own surfaces: the dashboard stays on 127.0.0.1 although the API listens on
another interface, and it asks for the token that the command `cvp up` names prints. One platform
life for all of it: each start and stop of a whole platform costs tens of seconds here."""

from __future__ import annotations

import json
import shlex
import stat
import subprocess
from pathlib import Path

import httpx
import psutil

from cvplatform.client import Client
from tests import datasets_kit
from tests.e2e.conftest import Machine
from tests.helpers import wait_for

ADMIN_PASSWORD = "lifecycle-test-pw"


def test_detached_lifecycle_and_a_restart(machine: Machine, tmp_path: Path) -> None:
    # About the operator's commands: the presets and samples are `make run`'s test's business.
    machine.env.update(
        CVP_PRESETS="", CVP_SAMPLES="", CVP_GPU_SLOTS="1", CVP_ADMIN_PASSWORD=ADMIN_PASSWORD
    )
    # Another loopback address: the API moves there, the dashboard must not follow it.
    machine.env.update(CVP_HOST="127.0.0.2")
    started = machine.cvp("up", "--detach")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "started in the background" in started.stdout
        _check_ray_dashboard(machine, started.stdout)
        backup = _operator_commands(machine)
        running, queued = _two_trainings(machine, tmp_path)
    finally:
        stopped = machine.cvp("down", timeout_s=120)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    assert machine.cvp("status").returncode == 1
    assert not (machine.data_dir / "run" / "store-secret").exists()

    assert machine.cvp("up", "--detach").returncode == 0
    try:
        with Client.login(machine.api_url, "admin", ADMIN_PASSWORD) as admin:
            interrupted = admin.get_job(running)
            assert interrupted.status == "failed" and "interrupted" in (interrupted.error or "")
            assert admin.wait_for_job(queued, timeout_s=300).status == "completed"
    finally:
        assert machine.cvp("down", timeout_s=120).returncode == 0
    restored = machine.cvp("restore", str(backup))
    assert restored.returncode == 0, restored.stderr


def _operator_commands(machine: Machine) -> Path:
    """`cvp status`, a second `up`, users through the running store actor, a live backup."""
    status = machine.cvp("status")
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout)["readiness"]["status"] == "ready"

    again = machine.cvp("up", "--detach")
    assert again.returncode == 1 and "already running" in again.stderr

    # Through the running store actor: still the single writer.
    created = machine.cvp(
        "user", "create", "bob", "--role", "engineer", "--password-stdin", stdin="bob-password\n"
    )
    assert created.returncode == 0, created.stderr
    with Client.login(machine.api_url, "bob", "bob-password") as bob:
        assert bob.me().role == "engineer"
    assert machine.cvp("user", "set-role", "bob", "viewer").returncode == 0
    # Those went with the store secret of this start; without it the store refuses.
    secret_file = machine.data_dir / "run" / "store-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text()
    secret_file.unlink()
    try:
        unsigned = machine.cvp("user", "set-role", "bob", "admin")
    finally:
        secret_file.write_text(secret)
    assert unsigned.returncode == 1 and "no store secret" in unsigned.stderr, unsigned.stderr
    assert "viewer" in machine.cvp("user", "list").stdout

    backup = machine.data_dir.parent / "live-backup.db"
    assert machine.cvp("backup", str(backup)).returncode == 0
    refused = machine.cvp("restore", str(backup))
    assert refused.returncode == 1 and "cvp down" in refused.stderr
    return backup


def _tiny_model(path: Path) -> Path:
    import torch
    from torchvision import models

    torch.manual_seed(0)
    torch.save(models.mobilenet_v3_small(weights=None, num_classes=3).state_dict(), path)
    return path


def _two_trainings(machine: Machine, tmp_path: Path) -> tuple[str, str]:
    """One GPU slot: a long training running and a short one queued behind it."""
    with Client.login(machine.api_url, "admin", ADMIN_PASSWORD) as admin:
        model = admin.upload_model(
            _tiny_model(tmp_path / "m.pth"),
            "tiny",
            "classification",
            architecture="mobilenet_v3_small",
        )
        dataset = admin.upload_dataset(
            datasets_kit.class_folders(tmp_path / "d.zip"), "tiny", "classification"
        )
        assert admin.wait_for_model(model.id, timeout_s=240).status == "ready"
        assert admin.wait_for_dataset(dataset.id).status == "ready"
        fast = {"image_size": [32, 32], "batch_size": 8}
        running = admin.start_training(model.id, dataset.id, **fast, max_epochs=1000)
        queued = admin.start_training(model.id, dataset.id, **fast, max_epochs=1)
        wait_for(lambda: admin.get_job(running.id).status == "running" or 1 / 0, timeout_s=120)
        assert admin.get_job(queued.id).status == "queued"
    return running.id, queued.id


def _listening_hosts(port: int) -> set[str]:
    return {
        connection.laddr.ip
        for connection in psutil.net_connections(kind="tcp")
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
    }


def _check_ray_dashboard(machine: Machine, said: str) -> None:
    port = int(machine.env["CVP_DASHBOARD_PORT"])
    assert _listening_hosts(int(machine.env["CVP_PORT"])) == {"127.0.0.2"}
    assert _listening_hosts(port) == {"127.0.0.1"}
    dashboard = f"http://127.0.0.1:{port}"
    (line,) = [line for line in said.splitlines() if "Ray dashboard" in line]
    assert dashboard in line, said
    command = shlex.split(line.split("(its token: `")[1].split("`")[0])
    token = subprocess.run(
        command, env=machine.env, capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    mode = httpx.get(f"{dashboard}/api/authentication_mode", timeout=10).json()
    assert mode["authentication_mode"] == "token"
    # The job API runs code: refused without Ray's token, answered with it.
    assert httpx.get(f"{dashboard}/api/jobs/", timeout=10).status_code == 401
    wrong = httpx.get(
        f"{dashboard}/api/jobs/", headers={"Authorization": "Bearer guess"}, timeout=10
    )
    assert wrong.status_code == 403
    allowed = httpx.get(
        f"{dashboard}/api/jobs/", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert allowed.status_code == 200, allowed.text
