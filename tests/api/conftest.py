"""The in-process API for route tests: no Ray, a real store on a temporary SQLite file.

Tests here are ``async def`` and run on anyio's pytest plugin (installed with Starlette), on
asyncio: each test gets a fresh app and store (``api``) and users of each role.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests import datasets_kit
from tests.api.optimizations_kit import make_ready
from tests.api_harness import Caller, InProcessApi, in_process_api
from tests.helpers import unique


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


# GA searches (tests/api/test_optimization_*.py): a model and a dataset to search on.


@pytest.fixture
async def search_uploads(api: InProcessApi, admin: Caller, tmp_path: Path) -> dict[str, str]:
    """A model and a dataset as uploaded (their conversion and validation never run here)."""
    model = await api.upload_model(
        admin.headers,
        b"weights, never read here",
        "mnv3.pth",
        unique("mnv3"),
        "classification",
        architecture="mobilenet_v3_small",
    )
    archive = datasets_kit.class_folders(tmp_path / "tiny.zip", classes=3, per_class=2)
    dataset = await api.upload_dataset(
        admin.headers, archive, "tiny.zip", unique("tiny"), "classification"
    )
    return {"model_id": model.json()["id"], "dataset_id": dataset.json()["id"]}


@pytest.fixture
async def search_ready(api: InProcessApi, search_uploads: dict[str, str]) -> dict[str, str]:
    make_ready(api.store, search_uploads["model_id"], search_uploads["dataset_id"])
    return search_uploads
