"""Logins per second while a flood of bad logins comes from another address, against none.

Starts the management API (the real app on uvicorn, over a real ``StoreWriter`` on a temporary
SQLite file; no Ray) in its own process with the platform's login limits and bcrypt at cost 12
(the default). ``--clients`` real logins of ``admin`` run at once, each client from its own
loopback address (127.1.x.y, fresh for each phase), for ``--seconds`` per phase: first alone (the
baseline), then while a flood process sends ``--flood-rate`` bad logins a second on 16
connections from 127.0.0.2 (a made-up name each time, the costliest flood: the per-name back-off
never applies, only the address bucket holds it), ``--rounds`` phases back to back, then alone
again (a second baseline: the two are averaged, so a machine that speeds up or slows down during
the run favours neither side). Before the flooded phases the flood runs alone until each of its
connections has been refused (429): its address's first minute of attempts is spent, and the
phases measure a flood that has been going on (that warm-up's password checks, its 401s, are
reported). A login counts if its answer came within its phase.

The flood's default pace, 100 a second, would have cost 100 bcrypt checks a second before the
throttle (some 30 cores at cost 12); throttled, it costs half a check a second and 100 quick 429s.
An unpaced flood (``--flood-rate 0``) on two shared cores measures how fast the server answers any
request, and the flood client's own CPU, more than login throttling.
Prints JSON: logins/s of each phase, the ratio flooded/baseline (target at least 0.8), and what
the flood got.

    .venv/bin/python bench/login.py [--seconds 8] [--rounds 2] [--clients 4] [--flood-rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import free_port, wait_for

ADMIN_PASSWORD = "bench-admin-password"  # noqa: S105 (a throwaway platform)
BCRYPT_ROUNDS = 12
FLOOD_ADDRESS = "127.0.0.2"
FLOOD_CONNECTIONS = 16


def serve(port: int, data_dir: Path) -> None:
    """The API server: the platform's app and login limits, a real store, the real clock."""
    from cvplatform.config import Settings
    from tests.api_harness import serve_over_http

    settings = Settings(data_dir=data_dir, presets="", samples="", bcrypt_rounds=BCRYPT_ROUNDS)
    serve_over_http(settings, port, ADMIN_PASSWORD)


class FloodState:
    """What the flood's connections share: its pace, its answers, and when to stop."""

    def __init__(self, per_second: float) -> None:
        # Each connection sends one request per interval (0: back to back).
        self.interval_s = FLOOD_CONNECTIONS / per_second if per_second else 0.0
        self.statuses: Counter[str] = Counter()
        self.throttled_connections = 0
        self.warmed_up = asyncio.Event()
        self.stop = asyncio.Event()


async def _bad_logins(port: int, flood: FloodState, throttled: bool) -> bool:
    """Bad logins back to back on one keep-alive connection from the flood's address, until told
    to stop. Returns whether it has been refused (429) once.

    A bare HTTP/1.1 client: on two shared cores httpx's own CPU would slow the server more than
    the flood's requests do.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(FLOOD_ADDRESS, 0))
    next_at = time.perf_counter()
    try:
        while not flood.stop.is_set():
            next_at += flood.interval_s
            name = f"nobody-{uuid.uuid4().hex[:12]}"
            body = json.dumps({"username": name, "password": "not-the-password"})
            writer.write(
                "POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(_content_length(head))
            status = head.split()[1].decode()
            flood.statuses[status] += 1
            if status == "429" and not throttled:
                throttled = True
                flood.throttled_connections += 1
                if flood.throttled_connections == FLOOD_CONNECTIONS:
                    flood.warmed_up.set()
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        writer.close()
    return throttled


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


async def _flood_connection(port: int, flood: FloodState) -> None:
    throttled = False
    while not flood.stop.is_set():
        try:
            throttled = await _bad_logins(port, flood, throttled)
        except (OSError, asyncio.IncompleteReadError) as error:
            flood.statuses[type(error).__name__] += 1  # counted, and the connection opened again


def _figures(statuses: Counter[str], seconds: float) -> dict[str, Any]:
    requests = sum(statuses.values())
    return {
        "seconds": round(seconds, 1),
        "requests": requests,
        "requests_per_s": round(requests / seconds, 1),
        "statuses": dict(sorted(statuses.items())),
    }


async def _flood(port: int, per_second: float) -> dict[str, Any]:
    """Flood until stdin says ``stop``; ``warmed up`` goes to stdout once every connection has
    been refused."""
    flood = FloodState(per_second)
    started = time.perf_counter()
    connections = [
        asyncio.create_task(_flood_connection(port, flood)) for _ in range(FLOOD_CONNECTIONS)
    ]
    await flood.warmed_up.wait()
    warmed_up = time.perf_counter()
    warmup = _figures(Counter(flood.statuses), warmed_up - started)
    print("warmed up", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    flood.stop.set()
    await asyncio.gather(*connections)
    return {
        "warmup": warmup,
        "flooding": _figures(
            flood.statuses - Counter(warmup["statuses"]), time.perf_counter() - warmed_up
        ),
    }


class Flood:
    """The flood in a process of its own."""

    def __init__(self, port: int, per_second: float) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, "--flood", str(port), str(per_second)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def wait_warmed_up(self) -> None:
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "warmed up":
            raise RuntimeError("the flood ended before its warm-up")

    def stop(self) -> dict[str, Any]:
        output, _ = self._process.communicate("stop\n", timeout=120)
        figures: dict[str, Any] = json.loads(output)
        return figures


async def _logins(base_url: str, addresses: list[str], seconds: float) -> dict[str, Any]:
    """Each address logs ``admin`` in, one login after another, for ``seconds``."""
    statuses: Counter[int] = Counter()
    late: Counter[int] = Counter()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    credentials = {"username": "admin", "password": ADMIN_PASSWORD}

    async def client(address: str) -> None:
        transport = httpx.AsyncHTTPTransport(local_address=address)
        async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=120) as http:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                answer = await http.post("/api/v1/auth/login", json=credentials)
                answered = time.perf_counter()
                # An answer after the phase is over is waited for (its work would spill into
                # the next phase) but not counted.
                (statuses if answered <= deadline else late)[answer.status_code] += 1
                latencies.append(answered - sent)

    await asyncio.gather(*(client(address) for address in addresses))
    return {
        "logins_per_s": round(statuses[200] / seconds, 2),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
        "answered_after_the_phase": sum(late.values()),
    }


def bcrypt_check_ms() -> float:
    """One password check at the benchmark's cost, on this machine, with the server idle."""
    from serve_apps.auth.passwords import hash_password, verify_password

    stored = hash_password("x", BCRYPT_ROUNDS)
    started = time.perf_counter()
    verify_password("y", stored, BCRYPT_ROUNDS)
    return round((time.perf_counter() - started) * 1000, 1)


class Phases:
    """Logins phase after phase, each from ``clients`` addresses of its own."""

    def __init__(self, port: int, options: argparse.Namespace) -> None:
        self._base_url = f"http://127.0.0.1:{port}"
        self._options = options
        self._count = 0

    def measure(self) -> dict[str, Any]:
        self._count += 1
        addresses = [f"127.1.{self._count}.{client + 1}" for client in range(self._options.clients)]
        return asyncio.run(_logins(self._base_url, addresses, self._options.seconds))


def run(port: int, options: argparse.Namespace) -> dict[str, Any]:
    phases = Phases(port, options)
    before = phases.measure()
    flood = Flood(port, options.flood_rate)
    try:
        flood.wait_warmed_up()
        flooded = [phases.measure() for _ in range(options.rounds)]
    finally:
        flood_figures = flood.stop()
    after = phases.measure()
    return {"baseline": [before, after], "flooded": flooded, "flood": flood_figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="per phase")
    parser.add_argument("--rounds", type=int, default=2, help="flooded phases")
    parser.add_argument("--clients", type=int, default=4, help="real logins at once")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument(
        "--flood-rate", type=float, default=100.0, help="bad logins a second (0: as fast as it can)"
    )
    parser.add_argument("--flood", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve:
        serve(int(options.serve[0]), Path(options.serve[1]))
        return
    if options.flood:
        port, per_second = options.flood
        print(json.dumps(asyncio.run(_flood(int(port), float(per_second)))))
        return
    check_ms = bcrypt_check_ms()
    with tempfile.TemporaryDirectory() as scratch:
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), str(Path(scratch) / "data")]
        )
        try:
            health = f"http://127.0.0.1:{port}/api/v1/health"
            wait_for(lambda: httpx.get(health).raise_for_status(), 60, 0.2)
            measured = run(port, options)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(json.dumps(report(measured, check_ms, options), indent=2))


def report(
    measured: dict[str, Any], check_ms: float, options: argparse.Namespace
) -> dict[str, Any]:
    baseline = statistics.mean(phase["logins_per_s"] for phase in measured["baseline"])
    flooded = statistics.median(phase["logins_per_s"] for phase in measured["flooded"])
    return {
        "benchmark": "login",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "bcrypt_rounds": BCRYPT_ROUNDS,
        "bcrypt_check_ms": check_ms,
        "clients": options.clients,
        "flood_rate_asked_per_s": options.flood_rate or "as fast as it can",
        "seconds_per_phase": options.seconds,
        "logins_per_s": {"baseline": round(baseline, 2), "flooded": round(flooded, 2)},
        "ratio": round(flooded / baseline, 3) if baseline else None,
        "flood": measured["flood"],
        "phases": {"baseline": measured["baseline"], "flooded": measured["flooded"]},
    }


if __name__ == "__main__":
    main()
