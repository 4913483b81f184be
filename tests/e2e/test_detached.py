"""`cvp up --detach`, then the operator's commands against the running platform, then `cvp down`.

On the way, Ray's own surfaces: the dashboard stays on 127.0.0.1 although the API listens on
another interface, and it asks for the token that the command `cvp up` names prints."""

from __future__ import annotations

import json
import shlex
import stat
import subprocess

import httpx
import psutil

from cvplatform.client import Client
from tests.e2e.conftest import Machine


def test_detached_lifecycle(machine: Machine) -> None:
    # About the operator's commands: the presets and samples are `make run`'s test's business.
    machine.env.update(CVP_PRESETS="", CVP_SAMPLES="")
    # Another loopback address: the API moves there, the dashboard must not follow it.
    machine.env.update(CVP_HOST="127.0.0.2")
    started = machine.cvp("up", "--detach")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "started in the background" in started.stdout
        _check_ray_dashboard(machine, started.stdout)

        status = machine.cvp("status")
        assert status.returncode == 0, status.stdout
        assert json.loads(status.stdout)["readiness"]["status"] == "ready"

        again = machine.cvp("up", "--detach")
        assert again.returncode == 1 and "already running" in again.stderr

        # Through the running store actor: still the single writer.
        created = machine.cvp(
            "user",
            "create",
            "bob",
            "--role",
            "engineer",
            "--password-stdin",
            stdin="bob-password\n",
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
    finally:
        stopped = machine.cvp("down", timeout_s=90)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    assert machine.cvp("status").returncode == 1
    assert not (machine.data_dir / "run" / "store-secret").exists()
    restored = machine.cvp("restore", str(backup))
    assert restored.returncode == 0, restored.stderr


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
