"""Starting the platform the way a user does, in a subprocess, on its own ports and data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import free_port

ROOT = Path(__file__).parents[2]
CVP = str(Path(sys.executable).parent / "cvp")


@dataclass
class Machine:
    data_dir: Path
    env: dict[str, str]

    @property
    def api_url(self) -> str:
        return f"http://{self.env.get('CVP_HOST', '127.0.0.1')}:{self.env['CVP_PORT']}"

    def cvp(
        self,
        *args: str,
        stdin: str | None = None,
        timeout_s: float = 240,
        env: dict[str, str] | None = None,  # set over the machine's own
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CVP, *args],
            env={**self.env, **(env or {})},
            cwd=ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("CVP_", "RAY_ADDRESS"))
    }
    env.update(
        CVP_DATA_DIR=str(tmp_path / "cvp-data"),
        CVP_PORT=str(free_port()),
        CVP_SERVE_PORT=str(free_port()),
        CVP_DASHBOARD_PORT=str(free_port()),
        CVP_HAPROXY_STATS_PORT=str(free_port()),
        CVP_HAPROXY_METRICS_PORT=str(free_port()),
        CVP_BCRYPT_ROUNDS="4",
        PYTHONUNBUFFERED="1",
    )
    return Machine(tmp_path / "cvp-data", env)
