"""Shared test setup: markers by folder, a `gpu` marker that skips where there is no GPU, and one
Ray session for the whole test run (started only if a test asks for it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

# The tests set every CVP_* value they rely on; a developer's own environment must not leak in.
for _name in [name for name in os.environ if name.startswith("CVP_")]:
    del os.environ[_name]
# `cvp` sets this before it imports Ray (see cvplatform/cli.py); tests that run `cvp` in-process
# must not change it after Ray is imported, or this process and its Ray cluster would disagree
# on token authentication.
os.environ.setdefault("RAY_AUTH_MODE", "token")

_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from cvplatform.gpu import probe_gpu

    gpu = probe_gpu()
    for item in items:
        folder = Path(str(item.fspath)).relative_to(_TESTS).parts[0]
        folder = {"reports": "unit"}.get(folder, folder)  # the reports' renderings: plain code
        if folder in ("unit", "api", "integration", "e2e"):
            item.add_marker(getattr(pytest.mark, folder))
        if "gpu" in item.keywords and not gpu.available:
            item.add_marker(pytest.mark.skip(reason=f"needs a GPU: {gpu.detail}"))


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One Ray instance for every test that needs one (the platform's namespace, 2 GPU slots),
    its Serve in the platform's default ingress (HAProxy) on ports of its own."""
    import ray

    from cvplatform import RAY_NAMESPACE
    from cvplatform.config import Settings
    from cvplatform.serve_ingress import haproxy_dir, serve_environment
    from store.actor import STORE_SECRET_ENV, init_ray_with_store_secret
    from tests.helpers import free_port

    ingress = Settings(
        data_dir=tmp_path_factory.mktemp("ray-session"),
        haproxy_stats_port=free_port(),
        haproxy_metrics_port=free_port(),
    )
    os.environ.update(serve_environment(ingress, cpu_count=2))
    # As `cvp up` starts it: this session's workers, and this process, hold the store secret.
    init_ray_with_store_secret(
        namespace=RAY_NAMESPACE,
        num_cpus=2,
        resources={"gpu_slot": 2},
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    yield
    ray.shutdown()
    shutil.rmtree(haproxy_dir(ingress), ignore_errors=True)  # as `cvp down` does
    os.environ.pop(STORE_SECRET_ENV, None)
