"""The README's `make run`, as a new user runs it: it answers within 90 s, says it is up once the
presets and samples are listed, refuses a second platform on its ports in one line, and Ctrl-C
stops it within 30 s with nothing lost."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time

import httpx

from cvplatform.client import Client
from store import queries
from store.connections import open_reader
from tests.e2e.conftest import ROOT, Machine
from tests.helpers import wait_for


def test_make_run_then_ctrl_c(machine: Machine) -> None:
    console = machine.data_dir.parent / "console.txt"
    with console.open("w") as sink:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=machine.env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
    try:
        started = time.monotonic()

        def health() -> httpx.Response:
            assert process.poll() is None, console.read_text()
            return httpx.get(f"{machine.api_url}/api/v1/health", timeout=5).raise_for_status()

        wait_for(health, timeout_s=90)
        started_to_health = time.monotonic() - started
        assert started_to_health < 90
        # The banner comes once the presets and samples are registered (a first start).
        wait_for(lambda: "Press Ctrl-C" in console.read_text() or 1 / 0, timeout_s=240)
        banner_after = time.monotonic() - started
        print(f"health after {started_to_health:.0f} s, banner after {banner_after:.0f} s")
        printed = console.read_text()
        password_file = machine.data_dir / "admin-password.txt"
        assert str(password_file) in printed
        for url in (
            machine.api_url,
            machine.env["CVP_SERVE_PORT"],
            machine.env["CVP_DASHBOARD_PORT"],
        ):
            assert url in printed
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600

        with Client.login(machine.api_url, "admin", password_file.read_text().strip()) as admin:
            # Said up only once the lists are complete: presets and samples are there at once.
            presets = {model.preset for model in admin.list_models().items}
            assert presets == {"yolov8n", "resnet50", "efficientnet_b0"}, presets
            assert {d.name for d in admin.list_datasets().items} == {"digits", "shapes-video"}
            admin.create_user("kept-user", "kept-password", "engineer")
            ready = wait_for(lambda: _ready(admin), timeout_s=60)
        assert ready.serve.ok and ready.store.ok and ready.ray.ok
        assert ready.startup.ok, ready.startup
        assert ready.startup.detail == (
            "presets 3 of 3 registered; sample datasets 2 of 2 registered"
        )
        second = machine.cvp("up", env={"CVP_DATA_DIR": str(machine.data_dir.parent / "other")})
        assert second.returncode == 1
        assert second.stderr.strip().count("\n") == 0, second.stderr
        assert f"port {machine.env['CVP_PORT']} (the management API)" in second.stderr
        assert "CVP_PORT" in second.stderr and "Traceback" not in second.stderr
        # The inference pool answers on Serve's port, for a load balancer without credentials.
        pool = httpx.get(f"http://127.0.0.1:{machine.env['CVP_SERVE_PORT']}/v1/health", timeout=10)
        assert pool.status_code == 200 and pool.json()["pool"]["workers"] == 10, pool.text
        dashboard = httpx.get(
            f"http://127.0.0.1:{machine.env['CVP_DASHBOARD_PORT']}/api/version", timeout=10
        )
        assert dashboard.status_code in (200, 401)  # up, and asking for Ray's token

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        interrupted = time.monotonic()
        process.wait(timeout=60)
        assert time.monotonic() - interrupted < 30, console.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)

    assert "stopped." in console.read_text()
    assert not (machine.data_dir / "run" / "cvp.pid").exists()
    reader = open_reader(machine.data_dir / "cvp.db")
    assert queries.user_credentials(reader, "kept-user") is not None
    assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    reader.conn.close()


def _ready(admin: Client) -> object:
    report = admin.readiness()
    assert report.status == "ready", report
    return report
