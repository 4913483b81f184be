"""`cvp up --detach`, then the operator's commands against the running platform, then `cvp down`."""

from __future__ import annotations

import json

from cvplatform.client import Client
from tests.e2e.conftest import Machine


def test_detached_lifecycle(machine: Machine) -> None:
    # About the operator's commands: the presets and samples are `make run`'s test's business.
    machine.env.update(CVP_PRESETS="", CVP_SAMPLES="")
    started = machine.cvp("up", "--detach")
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "started in the background" in started.stdout

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
        assert "viewer" in machine.cvp("user", "list").stdout

        backup = machine.data_dir.parent / "live-backup.db"
        assert machine.cvp("backup", str(backup)).returncode == 0
        refused = machine.cvp("restore", str(backup))
        assert refused.returncode == 1 and "cvp down" in refused.stderr
    finally:
        stopped = machine.cvp("down", timeout_s=90)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    assert machine.cvp("status").returncode == 1
    restored = machine.cvp("restore", str(backup))
    assert restored.returncode == 0, restored.stderr
