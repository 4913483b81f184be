"""A throwaway platform for ``bench/load.py``: ``cvp up`` in its own process on a temporary data
directory, waited for until the preset is ``ready`` and Serve answers, with a viewer's API key.

The platform runs as a user runs it (``cvp up``, stopped with Ctrl-C), and this process stays
free of Ray: the raw baseline that ``bench/load.py`` measures next has the cores to itself.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import free_port  # noqa: E402

T = TypeVar("T")
ADMIN_PASSWORD = "bench-admin-password"  # noqa: S105 (a throwaway platform)
VIEWER_PASSWORD = "bench-viewer-password"  # noqa: S105


def log(message: str) -> None:
    print(f"[load] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Platform:
    process: subprocess.Popen[bytes]
    api_url: str
    serve_url: str
    data_dir: Path
    console: Path


def start_platform(scratch: Path, preset: str) -> Platform:
    """``cvp up`` in its own process: the platform as a user runs it, and no Ray in this one."""
    api_port, serve_port = free_port(), free_port()
    data_dir, console = scratch / "data", scratch / "cvp-up.out"
    environment = {
        **os.environ,
        "CVP_DATA_DIR": str(data_dir),
        "CVP_HOST": "127.0.0.1",
        "CVP_PORT": str(api_port),
        "CVP_SERVE_PORT": str(serve_port),
        "CVP_DASHBOARD_PORT": str(free_port()),
        "CVP_HAPROXY_STATS_PORT": str(free_port()),
        "CVP_HAPROXY_METRICS_PORT": str(free_port()),
        "CVP_PRESETS": preset,
        "CVP_SAMPLES": "",
        "CVP_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "CVP_BCRYPT_ROUNDS": "4",
    }
    with console.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "cvplatform.cli", "up"],
            cwd=ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C here reaches it once, through stop_platform
        )
    return Platform(
        process,
        f"http://127.0.0.1:{api_port}",
        f"http://127.0.0.1:{serve_port}",
        data_dir,
        console,
    )


def console_tail(platform: Platform, chars: int = 3000) -> str:
    """The end of what ``cvp up`` printed (its folder is gone once the benchmark ends)."""
    return platform.console.read_text(errors="replace")[-chars:]


def stop_platform(platform: Platform, timeout_s: float = 180.0) -> None:
    """Ctrl-C, as a user stops ``cvp up``: requests finish, Serve and Ray stop."""
    if platform.process.poll() is not None:
        return
    platform.process.send_signal(signal.SIGINT)
    try:
        platform.process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log(f"the platform did not stop within {timeout_s:.0f}s; killing it")
        platform.process.kill()
        platform.process.wait()


def poll(platform: Platform, attempt: Callable[[], T | None], what: str, timeout_s: float) -> T:
    """Call ``attempt`` each second until it returns a value; fail early if the platform exits.

    Raises:
        RuntimeError: the platform's process ended (its last output is in the message).
        TimeoutError: no value after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if platform.process.poll() is not None:
            code = platform.process.returncode
            raise RuntimeError(f"the platform exited ({code}):\n{console_tail(platform)}")
        try:
            value = attempt()
        except httpx.HTTPError:
            value = None
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout_s:.0f}s for {what}")
        time.sleep(1.0)


def _login(api_url: str, username: str, password: str) -> dict[str, str]:
    answer = httpx.post(
        f"{api_url}/api/v1/auth/login", json={"username": username, "password": password}
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def _ready_preset(api_url: str, admin: dict[str, str], preset: str) -> dict[str, Any] | None:
    """The preset's model once it is ``ready``; None while it converts.

    Raises:
        RuntimeError: its conversion ended ``invalid`` or ``failed``.
    """
    answer = httpx.get(f"{api_url}/api/v1/models", params={"limit": 200}, headers=admin)
    answer.raise_for_status()
    for model in answer.json()["items"]:
        if model["preset"] != preset:
            continue
        if model["status"] in ("invalid", "failed"):
            raise RuntimeError(f"preset {preset} is {model['status']}: {model['status_reason']}")
        return model if model["status"] == "ready" else None
    return None


def _viewer_api_key(api_url: str, admin: dict[str, str]) -> str:
    """A new viewer's own API key: predicting is what a viewer may do."""
    body = {"username": "bench-viewer", "password": VIEWER_PASSWORD, "role": "viewer"}
    httpx.post(f"{api_url}/api/v1/users", json=body, headers=admin).raise_for_status()
    viewer = _login(api_url, "bench-viewer", VIEWER_PASSWORD)
    created = httpx.post(f"{api_url}/api/v1/auth/api-keys", json={"name": "load"}, headers=viewer)
    created.raise_for_status()
    return str(created.json()["key"])


def find_onnx(artifacts_dir: Path, sha256: str, size_bytes: int) -> Path:
    """The artifact file with this checksum (the API gives the checksum, not the path)."""
    for candidate in artifacts_dir.rglob("*"):
        if (
            candidate.is_file()
            and candidate.stat().st_size == size_bytes
            and hashlib.sha256(candidate.read_bytes()).hexdigest() == sha256
        ):
            return candidate
    raise FileNotFoundError(f"no file with sha256 {sha256} under {artifacts_dir}")


@dataclass(frozen=True)
class Prepared:
    model: dict[str, Any]
    api_key: str
    onnx_path: Path


def prepare(
    platform: Platform, preset: str, ready_timeout_s: float, serve_timeout_s: float = 300.0
) -> Prepared:
    """Wait for the API and the preset; find its ONNX file, make the viewer's key; then wait for
    the Serve pool and warm the model there (its first prediction is then not a cold load)."""
    api_url = platform.api_url
    poll(platform, lambda: httpx.get(f"{api_url}/api/v1/health").raise_for_status(), "API", 300)
    admin = _login(api_url, "admin", ADMIN_PASSWORD)
    model = poll(platform, lambda: _ready_preset(api_url, admin, preset), preset, ready_timeout_s)
    onnx = model["onnx"]
    onnx_path = find_onnx(platform.data_dir / "artifacts", onnx["sha256"], onnx["size_bytes"])
    api_key = _viewer_api_key(api_url, admin)
    log(f"{model['name']} is ready ({onnx_path.name}); waiting for Serve")
    health = f"{platform.serve_url}/v1/health"
    poll(platform, lambda: httpx.get(health).raise_for_status(), "/v1/health", serve_timeout_s)
    serving = f"{api_url}/api/v1/models/{model['id']}/serving"
    warmed = httpx.post(serving, headers=admin, timeout=300)
    if warmed.status_code >= 300:
        log(f"warming the model answered {warmed.status_code}: {warmed.text[:200]}")
    return Prepared(model, api_key, onnx_path)
