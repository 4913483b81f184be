"""Small helpers for tests: free ports, waiting for a condition, unique names."""

from __future__ import annotations

import itertools
import random
import re
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from serve_apps.api.guard import GuardedRoute

T = TypeVar("T")
_counter = itertools.count()


# Ports for the servers a test starts, outside what the kernel hands out as ephemeral ports
# (32768-60999 here) and Ray's worker ports (10002-19999): a port the kernel picked is free now,
# but Ray's processes, started after it was picked, take ephemeral ports of their own, and once
# one took HAProxy's stats port before HAProxy bound it (seen with bench/load.py).
_PORT_RANGE = range(20000, 32000)
_handed_out: set[int] = set()
_port_picker = random.Random()


def free_port() -> int:
    """A port free on every interface now, not handed out before by this process."""
    for _ in range(200):
        port = _port_picker.choice(_PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("0.0.0.0", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_PORT_RANGE} after 200 tries")


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}-{time.monotonic_ns() % 100000}"


def wait_for(attempt: Callable[[], T], timeout_s: float = 60.0, interval_s: float = 0.25) -> T:
    """Call ``attempt`` until it returns without raising; re-raise its last error at the end."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return attempt()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval_s)


async def _never_called() -> object:
    raise AssertionError("building the route table must not touch the platform")


def route_table() -> list[tuple[str, str, GuardedRoute]]:
    """(method, concrete path, route) for every route of the API app, built without Ray."""
    from cvplatform.clock import utc_now
    from cvplatform.config import Settings
    from serve_apps.api.app import create_app
    from serve_apps.api.guard import guarded_routes
    from serve_apps.api.state import PlatformState

    state = PlatformState(
        settings=Settings(),
        store=None,  # type: ignore[arg-type]
        jwt_secret=b"-" * 64,
        clock=utc_now,
        readiness=_never_called,  # type: ignore[arg-type]
        background=None,  # type: ignore[arg-type]
    )
    table: list[tuple[str, str, GuardedRoute]] = []
    for route in guarded_routes(create_app(state)):
        path = re.sub(r"\{[^}]+\}", "999999", route.path)
        methods = set(route.methods or ())
        if "GET" in methods:  # a GET route's implied HEAD is not a route of its own
            methods.discard("HEAD")
        table.extend((method, path, route) for method in sorted(methods))
    return table
