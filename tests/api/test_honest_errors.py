"""Honest errors: a store that does not answer in time is a 503 with nothing half-written, and no
error message names a server path.

The slow store is the harness's own single store thread held busy (``InProcessStore.busy``): the
API's write waits behind it, as behind a slow write in the store actor.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient
from starlette.exceptions import HTTPException

from cvplatform.errors import ConversionFailed, StoreUnavailable
from serve_apps.api.app import create_app
from tests.api_harness import InProcessApi, error_of, in_process_api
from tests.helpers import unique

pytestmark = pytest.mark.anyio

ONNX_BYTES = b"\x08\x08\x12\x07pytorch" + bytes(range(256))
TIMEOUT_S = 0.3


@pytest.fixture
async def impatient(tmp_path: Path) -> AsyncIterator[InProcessApi]:
    async with in_process_api(tmp_path / "data", store_call_timeout_s=TIMEOUT_S) as harness:
        yield harness


def _files_under(folder: Path) -> list[Path]:
    return [item for item in folder.rglob("*") if item.is_file()] if folder.exists() else []


async def test_a_store_that_does_not_answer_in_time_is_503_and_nothing_is_written(
    impatient: InProcessApi,
) -> None:
    api = impatient
    engineer = await api.new_user("engineer")
    admin = await api.admin()
    username = unique("late")
    with api.store.busy():
        model = await api.upload_model(
            engineer.headers, ONNX_BYTES, "late.onnx", unique("late"), "classification"
        )
        dataset = await api.upload_dataset(
            engineer.headers, b"PK\x05\x06" + bytes(18), "late.zip", unique("late"), "detection"
        )
        user = await api.http.post(
            "/api/v1/users",
            json={"username": username, "password": "a-long-password-1", "role": "viewer"},
            headers=admin,
        )
    for answer in (model, dataset, user):
        assert answer.status_code == 503, answer.text
        error = error_of(answer, StoreUnavailable)
        assert error["code"] == "store_unavailable"
        assert f"within {TIMEOUT_S:g} s" in error["message"]
    # Once the store is free again, none of the withdrawn writes lands after the 503.
    models = (await api.http.get("/api/v1/models", headers=engineer.headers)).json()
    datasets = (await api.http.get("/api/v1/datasets", headers=engineer.headers)).json()
    users = (await api.http.get("/api/v1/users", headers=admin)).json()
    assert models["total"] == 0 and datasets["total"] == 0
    assert username not in {entry["username"] for entry in users}
    assert _files_under(api.settings.artifacts_dir / "models") == []
    assert _files_under(api.settings.artifacts_dir / "datasets") == []
    assert _files_under(api.settings.staging_dir) == []
    assert api.background.submitted == []


async def test_a_store_that_answers_in_time_is_not_cut_short(impatient: InProcessApi) -> None:
    engineer = await impatient.new_user("engineer")
    answer = await impatient.upload_model(
        engineer.headers, ONNX_BYTES, "quick.onnx", unique("quick"), "classification"
    )
    assert answer.status_code == 202, answer.text


async def test_no_error_message_names_a_server_path(api: InProcessApi) -> None:
    settings = api.settings
    workdir = settings.staging_dir / "tmpa1b2c3"
    app = create_app(api.state)
    raised: list[Exception] = [
        ConversionFailed(f"tf2onnx: cannot open {workdir}/saved_model/saved_model.pb"),
        StoreUnavailable(f"the database failed: disk I/O error at {settings.db_path}"),
        HTTPException(400, detail=f"bad file {settings.data_dir}/jwt-secret"),
        sqlite3.OperationalError(f"unable to open database file {settings.db_path}"),
    ]

    async def fail(index: int) -> None:
        raise raised[index]

    # A route of the test's own: the handlers are what is tested, whatever raises.
    app.add_api_route("/test/fail/{index}", fail)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://cvp.test") as http:
        answers = [await http.get(f"/test/fail/{index}") for index in range(len(raised))]
    messages = [error_of(answer)["message"] for answer in answers]
    assert [answer.status_code for answer in answers] == [500, 503, 400, 503]
    for message in messages:
        assert str(settings.data_dir) not in message
        assert str(settings.data_dir.parent) not in message
    assert "saved_model/saved_model.pb" in messages[0]  # the upload's own name is kept
