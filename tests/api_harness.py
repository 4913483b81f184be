"""The management API served in-process: the real app over httpx's ASGI transport, on a real
``StoreWriter`` over a temporary SQLite file, with no Ray.

For tests of routes, validation, RBAC and error shapes (``tests/api``, through the fixtures of
its conftest). What needs Ray (actors, tasks, restarts, Serve, background work that really runs)
stays with the live platform in ``tests/integration/conftest.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cvplatform.client import error_from_response
from cvplatform.clock import Clock
from cvplatform.config import Settings
from cvplatform.errors import CvpError, InvalidInput
from cvplatform.gpu import GpuReport
from cvplatform.jsonlog import JsonFormatter
from cvplatform.schemas import ComponentStatus, Readiness, Role
from serve_apps.api.app import create_app
from serve_apps.api.state import PlatformState
from serve_apps.auth.passwords import hash_password
from serve_apps.inference.pool_view import InferencePoolView, warm_in_process
from serve_apps.inference.state import InferenceState
from store.schema import LATEST_VERSION
from store.writer import StoreWriter, sqlite_errors_translated
from tests.helpers import unique

NO_GPU = GpuReport(False, "no GPU (an in-process test)")
ADMIN_PASSWORD = "admin-password-for-tests"
USER_PASSWORD = "user-password-for-tests"
ADMIN_HASH = hash_password(ADMIN_PASSWORD, rounds=4)

# Limits small enough that a test can pass each one at once (overridable per harness).
MAX_MODEL_BYTES = 512 * 1024
MAX_DATASET_BYTES = 512 * 1024
TEST_SETTINGS: dict[str, Any] = {
    # The in-process replica is the whole pool: it takes every worker and queue place, whatever
    # the cores of the machine running the tests.
    "inference_replicas": 1,
    "login_max_failures": 3,
    "login_lockout_s": 2,
    # Every in-process request comes from one address, and a test logs in often: the buckets
    # are tested with their own limits (tests/api/test_login_throttle.py).
    "login_per_address_per_minute": 100_000,
    "login_global_per_minute": 100_000,
    "max_model_bytes": MAX_MODEL_BYTES,
    "max_dataset_bytes": MAX_DATASET_BYTES,
}


class SteppedClock:
    """A clock the test moves by hand (the one thing besides the environment we stand in for).

    It starts at the real time: PyJWT refuses a token issued in the future by the wall clock.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class InProcessStore:
    """The store actor's contract (``StoreGateway``) over a ``StoreWriter`` in this process.

    Like the actor, it runs one operation at a time on its own thread, so that a request awaiting
    a write lets the others run (as a remote call does), and it refuses unknown operations. It
    counts the operations it ran, so that a test can say how many writes a burst caused.
    """

    def __init__(self, db_path: Path, clock: Clock) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.writer: StoreWriter = self._thread.submit(StoreWriter, db_path, clock=clock).result()
        self.calls: Counter[str] = Counter()

    def run_sync(self, operation: str, **kwargs: Any) -> Any:
        """One operation from a test's own code, on the store's thread."""
        if operation not in StoreWriter.OPERATIONS:
            raise InvalidInput(f"the store has no operation {operation!r}")
        self.calls[operation] += 1
        return self._thread.submit(self._apply, operation, kwargs).result()

    async def call(self, operation: str, **kwargs: Any) -> Any:
        if operation not in StoreWriter.OPERATIONS:
            raise InvalidInput(f"the store has no operation {operation!r}")
        self.calls[operation] += 1
        future = self._thread.submit(self._apply, operation, kwargs)
        answer = asyncio.wrap_future(future)
        try:
            return await asyncio.shield(answer)
        except asyncio.CancelledError:
            # The caller gave up (its timeout): withdrawn if not begun, as the store actor
            # refuses a call it reaches after its deadline; one begun runs to its end.
            if future.cancel():
                raise
            return await answer

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Keep the store's thread busy until the block ends (a slow store): writes queue up."""
        release = threading.Event()
        started = threading.Event()

        def hold() -> None:
            started.set()
            release.wait(timeout=60)

        held = self._thread.submit(hold)
        started.wait(timeout=10)
        try:
            yield
        finally:
            release.set()
            held.result()

    def _apply(self, operation: str, kwargs: dict[str, Any]) -> Any:
        with sqlite_errors_translated():
            return getattr(self.writer, operation)(**kwargs)

    async def ping(self) -> dict[str, Any]:
        return {"db": str(self.writer.db_path), "schema_version": LATEST_VERSION}

    def close(self) -> None:
        self._thread.submit(self.writer.close).result()
        self._thread.shutdown()


@dataclass
class RecordedBackgroundWork:
    """Background work is Ray's; in-process, a submission is recorded for the test to see."""

    submitted: list[tuple[str, str]] = field(default_factory=list)

    def convert_model(self, model_id: str) -> object:
        self.submitted.append(("convert_model", model_id))
        return None

    def validate_dataset(self, dataset_id: str) -> object:
        self.submitted.append(("validate_dataset", dataset_id))
        return None

    def preprocess_dataset(self, preprocessing_id: str) -> object:
        self.submitted.append(("preprocess_dataset", preprocessing_id))
        return None

    def wake_scheduler(self) -> object:
        self.submitted.append(("wake_scheduler", ""))
        return None


async def _ready() -> Readiness:
    up = ComponentStatus(ok=True, detail="in-process test harness")
    return Readiness(status="ready", store=up, ray=up, serve=up, gpu=up, startup=up)


@dataclass(frozen=True)
class Caller:
    """A user of the API and the headers that carry their credentials."""

    user_id: int
    username: str
    role: Role
    headers: dict[str, str]


def error_of(answer: httpx.Response, sdk_raises: type[CvpError] | None = None) -> dict[str, Any]:
    """The error body of an answer, after checking its shape and its request id.

    ``sdk_raises``: the exception the SDK (``cvplatform.client``) must raise for this answer.
    """
    error: dict[str, Any] = answer.json()["error"]
    assert set(error) >= {"code", "message", "request_id"}, error
    assert error["request_id"] == answer.headers["x-request-id"]
    if sdk_raises is not None:
        raised = error_from_response(answer)
        assert isinstance(raised, sdk_raises), (type(raised), sdk_raises)
        assert raised.http_status == answer.status_code  # type: ignore[attr-defined]
    return error


def _form_value(value: object) -> str:
    """A form field as the SDK sends it: lists joined with commas."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


@dataclass
class InProcessApi:
    settings: Settings
    state: PlatformState
    store: InProcessStore
    background: RecordedBackgroundWork
    clock: SteppedClock
    http: httpx.AsyncClient

    async def login(self, username: str, password: str) -> dict[str, str]:
        """Headers that carry a fresh bearer token for this user."""
        answer = await self.http.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        answer.raise_for_status()
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    async def admin(self) -> dict[str, str]:
        return await self.login("admin", ADMIN_PASSWORD)

    @asynccontextmanager
    async def from_address(self, host: str) -> AsyncIterator[httpx.AsyncClient]:
        """A client of the same platform whose requests come from ``host`` (``http`` comes from
        127.0.0.1): the same state, so the same store, caches and login throttle."""
        transport = httpx.ASGITransport(app=create_app(self.state), client=(host, 50_000))
        async with httpx.AsyncClient(transport=transport, base_url="http://cvp.test") as http:
            yield http

    async def new_user(self, role: Role, username: str | None = None) -> Caller:
        """A fresh user of ``role`` (created through the API by the admin), logged in."""
        created = await self.http.post(
            "/api/v1/users",
            json={"username": username or unique(role), "password": USER_PASSWORD, "role": role},
            headers=await self.admin(),
        )
        created.raise_for_status()
        user = created.json()
        headers = await self.login(user["username"], USER_PASSWORD)
        return Caller(user["id"], user["username"], role, headers)

    async def upload_model(
        self,
        headers: dict[str, str],
        content: bytes | Path,
        filename: str,
        name: str,
        task_type: str,
        **fields: object,
    ) -> httpx.Response:
        """``POST /api/v1/models`` as multipart, the file streamed from ``content``."""
        form = {"name": name, "task_type": task_type}
        form.update((key, _form_value(value)) for key, value in fields.items())
        return await self._upload("/api/v1/models", headers, form, {"file": (filename, content)})

    async def upload_dataset(
        self,
        headers: dict[str, str],
        content: bytes | Path,
        filename: str,
        name: str,
        task_type: str,
        metadata: Path | None = None,
        description: str = "",
    ) -> httpx.Response:
        """``POST /api/v1/datasets`` as multipart, with an optional metadata table."""
        form = {"name": name, "task_type": task_type, "description": description}
        files = {"file": (filename, content)}
        if metadata is not None:
            files["metadata"] = (metadata.name, metadata)
        return await self._upload("/api/v1/datasets", headers, form, files)

    async def _upload(
        self,
        path: str,
        headers: dict[str, str],
        form: dict[str, str],
        files: dict[str, tuple[str, bytes | Path]],
    ) -> httpx.Response:
        with ExitStack() as stack:
            parts: dict[str, tuple[str, Any]] = {}
            for field_name, (filename, content) in files.items():
                if isinstance(content, Path):  # streamed from the file, not read whole
                    parts[field_name] = (filename, stack.enter_context(content.open("rb")))
                else:
                    parts[field_name] = (filename, content)
            return await self.http.post(path, headers=headers, data=form, files=parts)

    async def api_key(self, headers: dict[str, str], name: str = "test") -> dict[str, Any]:
        answer = await self.http.post("/api/v1/auth/api-keys", json={"name": name}, headers=headers)
        answer.raise_for_status()
        created: dict[str, Any] = answer.json()
        return created


@contextmanager
def _request_log(settings: Settings) -> Iterator[None]:
    """The API's log lines go to ``logs/api.log`` as JSON lines, as the API server writes them."""
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(settings.log_dir / "api.log", encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    api_log = logging.getLogger("cvp.api")
    level_before = api_log.level
    api_log.addHandler(handler)
    api_log.setLevel(logging.INFO)
    try:
        yield
    finally:
        api_log.removeHandler(handler)
        api_log.setLevel(level_before)
        handler.close()


@dataclass(frozen=True)
class InProcessPlatform:
    """What the app runs on in-process: its settings and state, the store, the stand-ins."""

    settings: Settings
    state: PlatformState
    store: InProcessStore
    background: RecordedBackgroundWork
    clock: SteppedClock


@contextmanager
def in_process_platform(data_dir: Path, **settings: Any) -> Iterator[InProcessPlatform]:
    """A fresh store in ``data_dir`` with the user ``admin``, and the app's state over it.

    ``settings`` override :data:`TEST_SETTINGS` and the other defaults.
    """
    config = Settings(
        data_dir=data_dir,
        bcrypt_rounds=4,
        presets="",
        samples="",
        **{**TEST_SETTINGS, **settings},
    )
    clock = SteppedClock()
    store = InProcessStore(config.db_path, clock)
    store.run_sync("create_user", username="admin", password_hash=ADMIN_HASH, role="admin")
    store.calls.clear()
    background = RecordedBackgroundWork()
    jwt_secret = b"s" * 64
    # A replica of the inference pool in this process (no model loaded until one is asked for).
    replica = InferenceState(
        settings=config, store=store, jwt_secret=jwt_secret, clock=clock, gpu=NO_GPU, replica="r0"
    )
    state = PlatformState(
        settings=config,
        store=store,
        jwt_secret=jwt_secret,
        clock=clock,
        readiness=_ready,
        background=background,
        inference=InferencePoolView(replica.replica_state_dir, warm_in_process(replica)),
    )
    try:
        with _request_log(config):
            yield InProcessPlatform(config, state, store, background, clock)
    finally:
        close_replica(replica)
        state.readers.close()
        store.close()


def close_replica(replica: InferenceState) -> None:
    replica.models.close_all()
    replica.runner.shutdown(wait=True)
    replica.readers.close()


@asynccontextmanager
async def in_process_api(data_dir: Path, **settings: Any) -> AsyncIterator[InProcessApi]:
    """The API app served over httpx's ASGI transport on :func:`in_process_platform`."""
    with in_process_platform(data_dir, **settings) as running:
        transport = httpx.ASGITransport(app=create_app(running.state))
        async with httpx.AsyncClient(transport=transport, base_url="http://cvp.test") as http:
            yield InProcessApi(
                running.settings,
                running.state,
                running.store,
                running.background,
                running.clock,
                http,
            )


def serve_over_http(settings: Settings, port: int, admin_password: str) -> None:
    """Serve the real app on uvicorn at 127.0.0.1:``port`` over a real store, with the real clock
    and no Ray: what the benchmarks measure. The user ``admin`` has ``admin_password``."""
    import uvicorn

    from cvplatform.clock import utc_now

    store = InProcessStore(settings.db_path, utc_now)
    admin_hash = hash_password(admin_password, rounds=settings.bcrypt_rounds)
    store.run_sync("create_user", username="admin", password_hash=admin_hash, role="admin")
    state = PlatformState(
        settings=settings,
        store=store,
        jwt_secret=os.urandom(64),
        clock=utc_now,
        readiness=_ready,
        background=RecordedBackgroundWork(),
    )
    uvicorn.run(create_app(state), host="127.0.0.1", port=port, log_config=None, access_log=False)
