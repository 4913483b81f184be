"""Starting and stopping the platform on one node: Ray, the store actor, Serve and the API actor.

``cvp up`` runs :func:`start_platform` in the foreground and :func:`stop_platform` on Ctrl-C or
SIGTERM; ``cvp up --detach`` runs that same foreground process in the background.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import ray
from ray import serve

from actors.scheduler import start_scheduler
from actors.startup import start_dataset_work, start_model_work
from cvplatform import RAY_NAMESPACE
from cvplatform.config import Settings
from cvplatform.errors import PlatformRunning
from cvplatform.jsonlog import configure_logging
from cvplatform.ports import check_ports_free
from serve_apps.api.server import start_api_actor
from serve_apps.auth.passwords import hash_password
from store import queries
from store.actor import StoreClient, start_store_actor
from store.connections import reading
from store.lock import DataDirLock
from store.writer import StoreWriter

log = logging.getLogger("cvp")


@dataclass(frozen=True)
class RunningPlatform:
    settings: Settings
    store: Any
    api: Any
    scheduler: Any
    ray_address: str
    admin_password_note: str
    registrations: tuple[Any, ...] = ()  # the presets' and samples' (Ray object references)


def pid_file(settings: Settings) -> Path:
    return settings.run_dir / "cvp.pid"


def ray_address_file(settings: Settings) -> Path:
    return settings.run_dir / "ray-address"


def start_platform(settings: Settings) -> RunningPlatform:
    """Start everything in this process's own embedded Ray; returns once the API answers.

    Raises:
        PlatformRunning: a platform already runs on this data directory.
        PortInUse: a port it listens on is taken (before Ray starts).
    """
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.run_dir.mkdir(exist_ok=True)
    configure_logging(settings, "cvp", stderr_level="WARN")
    if DataDirLock(settings.data_dir).is_held_elsewhere():
        raise PlatformRunning(f"a platform is already running on {settings.data_dir}")
    check_ports_free(settings)
    ray.init(
        # Always this process's own instance, even where RAY_ADDRESS names another cluster.
        address="local",
        namespace=RAY_NAMESPACE,
        include_dashboard=True,
        dashboard_host=settings.host,
        dashboard_port=settings.dashboard_port,
        resources={"gpu_slot": settings.gpu_slots},
        log_to_driver=False,
        configure_logging=False,
    )
    ray_address = ray.get_runtime_context().gcs_address
    ray_address_file(settings).write_text(ray_address)
    pid_file(settings).write_text(str(os.getpid()))
    store = start_store_actor(settings)
    admin_note = ensure_first_admin(settings, StoreClient(store))
    serve.start(proxy_location="EveryNode", http_options=serve_http_options(settings))
    api = start_api_actor(settings)
    StoreClient(store).call_sync("fail_interrupted_jobs")
    scheduler = start_scheduler(settings)
    registrations = (*start_model_work(settings), *start_dataset_work(settings))
    log.info("platform up", extra={"api": settings.api_url, "ray": ray_address})
    return RunningPlatform(settings, store, api, scheduler, ray_address, admin_note, registrations)


def wait_for_registrations(running: RunningPlatform, timeout_s: float) -> bool:
    """Wait until the presets and sample datasets are registered (or their registration
    failed, which the log says); False if that takes longer than ``timeout_s``.

    On a first start that takes a while (building the presets' weights and the samples); the
    API answers meanwhile, and readiness's ``startup`` says what is still missing.
    """
    if not running.registrations:
        return True
    refs = list(running.registrations)
    _, pending = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
    return not pending


def serve_http_options(settings: Settings) -> dict[str, object]:
    options: dict[str, object] = {"host": settings.host, "port": settings.serve_port}
    if settings.tls_enabled:
        options["ssl_certfile"] = str(settings.tls_certfile)
        options["ssl_keyfile"] = str(settings.tls_keyfile)
    return options


def ensure_first_admin(settings: Settings, store: StoreClient) -> str:
    """Create the user ``admin`` on first start; returns where its password can be found."""
    with reading(settings.db_path) as reader:
        has_users = queries.count_users(reader) > 0
    password_file = settings.admin_password_path
    if has_users:
        if password_file.exists():
            return f"the first admin's password was written to {password_file}"
        return "users exist already (manage them with `cvp user ...`)"
    if settings.admin_password is not None:
        password = settings.admin_password.get_secret_value()
        note = "admin's password is the value of CVP_ADMIN_PASSWORD"
    else:
        password = secrets.token_urlsafe(18)
        password_file.unlink(missing_ok=True)
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as sink:
            sink.write(password + "\n")
        note = f"admin's password is in {password_file} (readable by you only)"
    store.call_sync(
        "ensure_first_admin", password_hash=hash_password(password, settings.bcrypt_rounds)
    )
    return note


def stop_platform(running: RunningPlatform) -> None:
    """Let requests in flight finish, stop Serve, close the database, stop Ray."""
    timeout = running.settings.shutdown_timeout_s
    steps: tuple[tuple[str, Callable[[], object]], ...] = (
        ("api", lambda: ray.get(running.api.stop.remote(), timeout=timeout)),
        ("serve", serve.shutdown),
        ("store", lambda: ray.get(running.store.close.remote(), timeout=10)),
    )
    for step, action in steps:
        try:
            action()
        except Exception as error:
            log.warning("while stopping %s: %s", step, error)
    ray.shutdown()
    for run_file in (pid_file(running.settings), ray_address_file(running.settings)):
        run_file.unlink(missing_ok=True)
    log.info("platform down")


class OperatorStore(Protocol):
    def call(self, operation: str, **kwargs: Any) -> Any: ...


class _LocalStore:
    def __init__(self, writer: StoreWriter) -> None:
        self._writer = writer

    def call(self, operation: str, **kwargs: Any) -> Any:
        return getattr(self._writer, operation)(**kwargs)


class _RemoteStore:
    def __init__(self, client: StoreClient) -> None:
        self._client = client

    def call(self, operation: str, **kwargs: Any) -> Any:
        return self._client.call_sync(operation, **kwargs)


@contextmanager
def operator_store(settings: Settings) -> Iterator[OperatorStore]:
    """Write access for an operator's command (``cvp user ...``).

    Through the store actor while the platform runs (still the only writer), or directly, holding
    the data directory's lock, while it is stopped.
    """
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except PlatformRunning:
        address_file = ray_address_file(settings)
        if not address_file.exists():
            raise
        ray.init(
            address=address_file.read_text().strip(),
            namespace=RAY_NAMESPACE,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
        try:
            yield _RemoteStore(StoreClient())
        finally:
            ray.shutdown()
        return
    try:
        writer = StoreWriter(settings.db_path, settings.store_busy_timeout_s)
        try:
            yield _LocalStore(writer)
        finally:
            writer.close()
    finally:
        lock.release()
