"""Starting and stopping the platform on one node: Ray, the store actor, Serve and the API actor.

``cvp up`` runs :func:`start_platform` in the foreground and :func:`stop_platform` on Ctrl-C or
SIGTERM; ``cvp up --detach`` runs that same foreground process in the background.

Ray's own surfaces stay closed: its dashboard (which can submit jobs, i.e. run code) listens on
``CVP_DASHBOARD_HOST`` only, Ray runs with token authentication, and the store actor takes calls
only with the store secret made at each start (see :mod:`store.actor`).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
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
from cvplatform.errors import InvalidInput, PlatformRunning
from cvplatform.jsonlog import configure_logging
from cvplatform.ports import check_ports_free
from cvplatform.serve_ingress import haproxy_dir, serve_environment
from serve_apps.api.server import start_api_actor
from serve_apps.auth.passwords import hash_password
from serve_apps.inference.deployment import deploy_inference_pool
from store import queries
from store.actor import StoreClient, init_ray_with_store_secret, start_store_actor
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


def store_secret_file(settings: Settings) -> Path:
    """The running platform's store secret, for the operator's commands (``cvp user ...``)."""
    return settings.run_dir / "store-secret"


def ray_init_arguments(settings: Settings) -> dict[str, Any]:
    """What :func:`start_platform` passes to ``ray.init`` (besides the store secret)."""
    return {
        # Always this process's own instance, even where RAY_ADDRESS names another cluster.
        "address": "local",
        "namespace": RAY_NAMESPACE,
        "include_dashboard": True,
        # Not CVP_HOST: the dashboard can run code, so opening the API does not open it.
        "dashboard_host": settings.dashboard_host,
        "dashboard_port": settings.dashboard_port,
        "resources": {"gpu_slot": settings.gpu_slots},
        "log_to_driver": False,
        "configure_logging": False,
    }


def require_ray_token_auth(environ: Mapping[str, str]) -> None:
    """Refuse to start Ray without token authentication (Ray's default, unless turned off).

    Raises:
        InvalidInput: ``RAY_AUTH_MODE`` asks for another mode.
    """
    mode = environ.get("RAY_AUTH_MODE")
    if mode is not None and mode.lower() != "token":
        raise InvalidInput(
            f"RAY_AUTH_MODE={mode}: the platform runs Ray only with token authentication "
            "(its dashboard and drivers can run code); unset RAY_AUTH_MODE or set it to token"
        )


def _check_ray_token_auth() -> None:
    from ray._private.authentication.authentication_utils import is_token_auth_enabled

    if not is_token_auth_enabled():
        ray.shutdown()
        raise InvalidInput("Ray started without token authentication; the platform stopped it")


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file only this user can read (replacing any earlier one)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as sink:
        sink.write(text)


def start_platform(settings: Settings) -> RunningPlatform:
    """Start everything in this process's own embedded Ray; returns once the API answers.

    Raises:
        PlatformRunning: a platform already runs on this data directory.
        PortInUse: a port it listens on is taken (before Ray starts).
        InvalidInput: ``RAY_AUTH_MODE`` turns Ray's token authentication off.
    """
    require_ray_token_auth(os.environ)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.run_dir.mkdir(exist_ok=True)
    configure_logging(settings, "cvp", stderr_level="WARN")
    if DataDirLock(settings.data_dir).is_held_elsewhere():
        raise PlatformRunning(f"a platform is already running on {settings.data_dir}")
    check_ports_free(settings)
    os.environ.update(serve_environment(settings, os.cpu_count() or 1))
    store_secret = init_ray_with_store_secret(**ray_init_arguments(settings))
    _check_ray_token_auth()
    ray_address = ray.get_runtime_context().gcs_address
    ray_address_file(settings).write_text(ray_address)
    _write_private(store_secret_file(settings), store_secret)
    pid_file(settings).write_text(str(os.getpid()))
    store = start_store_actor(settings)
    admin_note = ensure_first_admin(settings, StoreClient(store))
    serve.start(proxy_location="EveryNode", http_options=serve_http_options(settings))
    deploy_inference_pool(settings)
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
        _write_private(password_file, password + "\n")
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
        ("store", lambda: StoreClient(running.store).close_store(timeout_s=10)),
    )
    for step, action in steps:
        try:
            action()
        except Exception as error:
            log.warning("while stopping %s: %s", step, error)
    ray.shutdown()
    shutil.rmtree(haproxy_dir(running.settings), ignore_errors=True)
    # The pid file last: `cvp down` takes its disappearance for "stopped".
    run_files = (ray_address_file, store_secret_file, pid_file)
    for run_file in (describe(running.settings) for describe in run_files):
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
        secret_file = store_secret_file(settings)
        secret = secret_file.read_text() if secret_file.exists() else None
        try:
            yield _RemoteStore(StoreClient(secret=secret))
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
