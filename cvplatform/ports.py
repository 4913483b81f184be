"""The ports the platform listens on, checked before Ray starts.

A second platform on the same machine (or any program on 8080, 8000 or 8265) would otherwise make
Ray or uvicorn die halfway through the start with a traceback. Ray's other ports (its GCS, the
raylet, the workers) are picked free at random by Ray itself; its dashboard agent's fixed port
(52365) is shared tolerantly between Ray instances on one machine, so neither is checked here.
With the HAProxy ingress (:mod:`cvplatform.serve_ingress`) its stats and metrics ports are
checked too; the replicas' own HTTP ports are picked by Serve (from 30000, the next one when
taken).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass

from cvplatform.config import Settings
from cvplatform.errors import PortInUse
from cvplatform.serve_ingress import effective_ingress


@dataclass(frozen=True)
class NeededPort:
    port: int
    purpose: str
    variable: str  # the CVP_* variable that moves it
    host: str  # the interface it listens on


def needed_ports(settings: Settings) -> list[NeededPort]:
    needed = [
        NeededPort(settings.port, "the management API", "CVP_PORT", settings.host),
        NeededPort(settings.serve_port, "Ray Serve (predictions)", "CVP_SERVE_PORT", settings.host),
        NeededPort(
            settings.dashboard_port,
            "the Ray dashboard",
            "CVP_DASHBOARD_PORT",
            settings.dashboard_host,
        ),
    ]
    if effective_ingress(settings) == "haproxy":
        # Serve's HAProxy configuration binds these on every interface.
        needed += [
            NeededPort(
                settings.haproxy_stats_port,
                "HAProxy's stats page",
                "CVP_HAPROXY_STATS_PORT",
                "0.0.0.0",  # noqa: S104
            ),
            NeededPort(
                settings.haproxy_metrics_port,
                "HAProxy's metrics",
                "CVP_HAPROXY_METRICS_PORT",
                "0.0.0.0",  # noqa: S104
            ),
        ]
    return needed


def is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now (bound and released at once)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # What uvicorn and Ray set too: a port left in TIME_WAIT by a stopped server is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def holder_of(port: int) -> str | None:
    """Who listens on ``port``, as ``pid 123 (cvp up)``, where this user may see it."""
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for connection in connections:
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
            if connection.pid is None:
                return None
            try:
                words = psutil.Process(connection.pid).cmdline()[:3]
            except psutil.Error:
                return f"pid {connection.pid}"
            command = " ".join(word for word in words if word)
            return f"pid {connection.pid} ({command[:80]})"
    return None


def check_ports_free(
    settings: Settings,
    free: Callable[[str, int], bool] = is_free,
    holder: Callable[[int], str | None] = holder_of,
) -> None:
    """Refuse to start when a port the platform listens on is taken, or two settings collide.

    Raises:
        PortInUse: one line naming the port, what needs it, who holds it if known, and the
            variable that moves it.
    """
    seen: dict[int, NeededPort] = {}
    for needed in needed_ports(settings):
        if needed.port in seen:
            other = seen[needed.port]
            raise PortInUse(
                f"port {needed.port} is set for both {other.purpose} ({other.variable}) and "
                f"{needed.purpose} ({needed.variable}); give one of them another port"
            )
        seen[needed.port] = needed
        if not free(needed.host, needed.port):
            who = holder(needed.port)
            held_by = f"held by {who}" if who else "already in use"
            raise PortInUse(
                f"port {needed.port} ({needed.purpose}) on {needed.host} is {held_by}; "
                f"stop that program or set {needed.variable} to a free port"
            )
