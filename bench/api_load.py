"""The management API under 100 concurrent clients, against a bare FastAPI app in the same run.

Starts a bare FastAPI + uvicorn app answering ``{"status": "ok"}`` in its own process (the limit
for this client and machine) and the platform (store actor and API actor on a local Ray, a
temporary data directory), then drives each route from this one asyncio process: ``--clients``
concurrent users for ``--seconds``, then one user alone. Routes: the bare app, ``/health``
without credentials, ``GET /models`` with a bearer token and with an API key (its first use is
under the load), and a write (create an API key, then revoke it) with a token. Prints JSON:
requests/s, p50/p95/p99 per request, statuses, and the ratios against the bare app and the token
path. ``--client raw`` (default) is a minimal keep-alive HTTP/1.1 client, so that the server is
what gets measured; ``--client httpx`` is how the issue first measured it (the client saturates
first there).

Each route is measured ``--rounds`` times, every other round in reverse order, and the round with
the median requests/s is reported (the others' requests/s beside it): on two shared cores the
route measured first or last is otherwise favoured.

    .venv/bin/python bench/api_load.py [--clients 100] [--seconds 15] [--rounds 3]
                                       [--client raw|httpx]
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
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("RAY_AUTH_MODE", "token")  # as `cvp` sets it before Ray is imported

from tests.helpers import free_port, wait_for

ADMIN_PASSWORD = "bench-admin-password"  # noqa: S105 (a throwaway platform)


def serve_bare_app(port: int) -> None:
    """The baseline server: FastAPI on uvicorn with the platform's uvicorn options."""
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    async def ok() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


class Connection:
    """One keep-alive HTTP/1.1 connection, as lean as a client can be.

    The clients share the machine's two cores with the server: a heavy client (httpx spends
    several times the server's CPU per request under 100 users) would measure itself, not the
    server. ``--client httpx`` uses httpx instead, as the issue first measured it.
    """

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._streams
        head = f"{method} {path} HTTP/1.1\r\nHost: {self._host}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head += f"Content-Length: {len(body)}\r\n\r\n"
        writer.write(head.encode() + body)
        try:
            status_line, _, header_block = (await reader.readuntil(b"\r\n\r\n")).partition(b"\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.close()
            raise
        fields = dict(
            line.split(b":", 1) for line in header_block.strip().split(b"\r\n") if b":" in line
        )
        length = int(next(v for k, v in fields.items() if k.lower() == b"content-length"))
        return int(status_line.split()[1]), await reader.readexactly(length)

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


class HttpxConnection:
    """The same calls through httpx (``--client httpx``)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        if body:
            headers = {**headers, "content-type": "application/json"}
        answer = await self._http.request(method, path, headers=headers, content=body or None)
        return answer.status_code, answer.content

    async def close(self) -> None:
        return None


Call = Callable[[Any, Callable[[int, float], None]], Awaitable[None]]


async def _drive(
    base_url: str, call: Call, clients: int, seconds: float, client_kind: str
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int | str] = Counter()
    url = httpx.URL(base_url)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    def record(status: int, latency_s: float) -> None:
        statuses[status] += 1
        latencies.append(latency_s)

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60.0) as http:
        deadline = time.perf_counter() + seconds

        async def user() -> None:
            connection: Any = (
                HttpxConnection(http)
                if client_kind == "httpx"
                else Connection(url.host, url.port or 80)
            )
            while time.perf_counter() < deadline:
                try:
                    await call(connection, record)
                except (httpx.TransportError, OSError, asyncio.IncompleteReadError) as error:
                    statuses[type(error).__name__] += 1  # counted, never hidden
            await connection.close()

        started = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "clients": clients,
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(cuts[49] * 1000, 2),
        "p95_ms": round(cuts[94] * 1000, 2),
        "p99_ms": round(cuts[98] * 1000, 2),
        "statuses": {str(code): count for code, count in sorted(statuses.items(), key=str)},
    }


def measure(
    base_url: str, call: Call, clients: int, seconds: float, client_kind: str
) -> dict[str, Any]:
    return {
        "concurrent": asyncio.run(_drive(base_url, call, clients, seconds, client_kind)),
        "one_client": asyncio.run(_drive(base_url, call, 1, max(seconds / 3, 2.0), client_kind)),
    }


def median_round(measured: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median concurrent requests/s (all rounds' figures kept beside it)."""
    ranked = sorted(measured, key=lambda figures: figures["concurrent"]["requests_per_s"])
    chosen = dict(ranked[(len(ranked) - 1) // 2])
    chosen["rounds_requests_per_s"] = [
        figures["concurrent"]["requests_per_s"] for figures in measured
    ]
    return chosen


async def _timed(
    connection: Any,
    record: Callable[[int, float], None],
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
) -> bytes:
    sent = time.perf_counter()
    status, answer = await connection.request(method, path, headers, body)
    record(status, time.perf_counter() - sent)
    return bytes(answer)


def _get(path: str, headers: dict[str, str] | None = None) -> Call:
    async def call(connection: Any, record: Callable[[int, float], None]) -> None:
        await _timed(connection, record, "GET", path, headers or {})

    return call


def _create_and_revoke_key(token: str) -> Call:
    """Two writes through the store actor, each timed as one request."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def call(connection: Any, record: Callable[[int, float], None]) -> None:
        created = await _timed(
            connection, record, "POST", "/api/v1/auth/api-keys", headers, b'{"name": "load"}'
        )
        key_id = json.loads(created)["id"]
        await _timed(connection, record, "DELETE", f"/api/v1/auth/api-keys/{key_id}", headers)

    return call


def start_platform(data_dir: Path) -> tuple[str, Any]:
    from cvplatform import RAY_NAMESPACE
    from cvplatform.bootstrap import ensure_first_admin
    from cvplatform.config import Settings
    from serve_apps.api.server import start_api_actor
    from store.actor import StoreClient, init_ray_with_store_secret, start_store_actor

    settings = Settings(
        data_dir=data_dir, port=free_port(), admin_password=ADMIN_PASSWORD, presets="", samples=""
    )
    init_ray_with_store_secret(
        address="local", namespace=RAY_NAMESPACE, include_dashboard=False, log_to_driver=False
    )
    store_actor = start_store_actor(settings)
    ensure_first_admin(settings, StoreClient(store_actor))
    api_actor = start_api_actor(settings)
    return settings.api_url, (store_actor, api_actor)


def credentials(api_url: str) -> tuple[str, str]:
    """A bearer token and an API key of the first admin."""
    from cvplatform.client import Client

    with Client.login(api_url, "admin", ADMIN_PASSWORD) as admin:
        return str(admin._http.headers["Authorization"]).split()[1], admin.create_api_key("b").key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument(
        "--rounds", type=int, default=3, help="each route this often, alternating the order"
    )
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_bare:
        serve_bare_app(options.serve_bare)
        return
    bare_port = free_port()
    bare = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(bare_port)])
    results: dict[str, Any] = {}
    try:
        bare_url = f"http://127.0.0.1:{bare_port}"
        wait_for(lambda: httpx.get(bare_url).raise_for_status(), timeout_s=30)
        with tempfile.TemporaryDirectory() as scratch:
            api_url, _actors = start_platform(Path(scratch) / "platform")
            token, api_key = credentials(api_url)
            routes: dict[str, tuple[str, Call]] = {
                "bare_app": (bare_url, _get("/")),
                "health_anonymous": (api_url, _get("/api/v1/health")),
                "models_token": (
                    api_url,
                    _get("/api/v1/models", {"Authorization": f"Bearer {token}"}),
                ),
                "models_api_key": (api_url, _get("/api/v1/models", {"X-API-Key": api_key})),
                "api_key_create_revoke_token": (api_url, _create_and_revoke_key(token)),
            }
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in routes}
            for round_number in range(options.rounds):
                # Every other round runs the routes in reverse: no route always goes first.
                order = list(routes) if round_number % 2 == 0 else list(reversed(routes))
                for name in order:
                    base_url, call = routes[name]
                    rounds[name].append(
                        measure(base_url, call, options.clients, options.seconds, options.client)
                    )
            results = {name: median_round(measured) for name, measured in rounds.items()}
    finally:
        bare.terminate()
        bare.wait(timeout=10)
    print(json.dumps(summary(results, options), indent=2))


def summary(results: dict[str, Any], options: argparse.Namespace) -> dict[str, Any]:
    bare = results["bare_app"]["concurrent"]
    token = results["models_token"]["concurrent"]
    ratios = {}
    for name, figures in results.items():
        if name == "bare_app":
            continue
        loaded = figures["concurrent"]
        ratios[name] = {
            "requests_per_s_vs_bare": round(loaded["requests_per_s"] / bare["requests_per_s"], 3),
            "p99_vs_bare": round(loaded["p99_ms"] / bare["p99_ms"], 3),
        }
    api_key = results["models_api_key"]["concurrent"]
    ratios["models_api_key"]["requests_per_s_vs_token"] = round(
        api_key["requests_per_s"] / token["requests_per_s"], 3
    )
    return {
        "benchmark": "api_load",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "clients": options.clients,
        "seconds": options.seconds,
        "client": options.client,
        "rounds": options.rounds,
        "routes": results,
        "ratios": ratios,
    }


if __name__ == "__main__":
    main()
