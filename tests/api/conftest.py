"""The in-process API for route tests: no Ray, a real store on a temporary SQLite file.

Tests here are ``async def`` and run on anyio's pytest plugin (installed with Starlette), on
asyncio: each test gets a fresh app and store (``api``) and users of each role.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api_harness import Caller, InProcessApi, in_process_api


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """One backend, asyncio (what uvicorn runs the API on); module scope lets a module share
    one app between its tests where it wants to."""
    return "asyncio"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[InProcessApi]:
    async with in_process_api(tmp_path / "data") as harness:
        yield harness


@pytest.fixture
async def admin(api: InProcessApi) -> Caller:
    headers = await api.admin()
    me = (await api.http.get("/api/v1/auth/me", headers=headers)).json()
    return Caller(me["user_id"], me["username"], me["role"], headers)


@pytest.fixture
async def engineer(api: InProcessApi) -> Caller:
    return await api.new_user("engineer")


@pytest.fixture
async def viewer(api: InProcessApi) -> Caller:
    return await api.new_user("viewer")
