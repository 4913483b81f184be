"""The management API served in-process: the real app over httpx's ASGI transport, on a real
``StoreWriter`` over a temporary SQLite file, with no Ray.

For tests of routes, validation, RBAC and error shapes. What needs Ray (actors, tasks, restarts,
Serve) stays with the live platform in ``tests/integration/conftest.py``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cvplatform.clock import Clock
from cvplatform.config import Settings
from cvplatform.errors import InvalidInput
from cvplatform.schemas import ComponentStatus, Readiness
from serve_apps.api.app import create_app
from serve_apps.api.state import PlatformState
from serve_apps.auth.passwords import hash_password
from store.schema import LATEST_VERSION
from store.writer import StoreWriter, sqlite_errors_translated

ADMIN_PASSWORD = "admin-password-for-tests"
_ADMIN_HASH = hash_password(ADMIN_PASSWORD, rounds=4)


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
        return await asyncio.wrap_future(future)

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
    return Readiness(status="ready", store=up, ray=up, serve=up, gpu=up)


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

    async def api_key(self, headers: dict[str, str], name: str = "test") -> dict[str, Any]:
        answer = await self.http.post("/api/v1/auth/api-keys", json={"name": name}, headers=headers)
        answer.raise_for_status()
        created: dict[str, Any] = answer.json()
        return created


@asynccontextmanager
async def in_process_api(data_dir: Path, **settings: Any) -> AsyncIterator[InProcessApi]:
    """The API app on a fresh store in ``data_dir``, with the user ``admin`` already there."""
    config = Settings(data_dir=data_dir, bcrypt_rounds=4, presets="", samples="", **settings)
    clock = SteppedClock()
    store = InProcessStore(config.db_path, clock)
    store.run_sync("create_user", username="admin", password_hash=_ADMIN_HASH, role="admin")
    store.calls.clear()
    background = RecordedBackgroundWork()
    state = PlatformState(
        settings=config,
        store=store,
        jwt_secret=b"s" * 64,
        clock=clock,
        readiness=_ready,
        background=background,
    )
    transport = httpx.ASGITransport(app=create_app(state))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://cvp.test") as http:
            yield InProcessApi(config, state, store, background, clock, http)
    finally:
        state.readers.close()
        store.close()
