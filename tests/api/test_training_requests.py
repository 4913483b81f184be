"""Training requests refused before anything is queued: bad hyperparameters, unknown or unready
models and datasets. What a training does once queued is tested with real Ray in
``tests/integration/test_jobs.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvplatform.errors import Conflict, CvpError, NotFound
from tests import datasets_kit
from tests.api_harness import Caller, InProcessApi, error_of
from tests.helpers import unique

pytestmark = pytest.mark.anyio


@pytest.fixture
async def uploaded(api: InProcessApi, engineer: Caller, tmp_path: Path) -> dict[str, str]:
    """A model and a dataset as uploaded (their conversion and validation never run here)."""
    model = await api.upload_model(
        engineer.headers,
        b"weights, never read here",
        "mnv3.pth",
        unique("mnv3"),
        "classification",
        architecture="mobilenet_v3_small",
    )
    archive = datasets_kit.class_folders(tmp_path / "tiny.zip", classes=3, per_class=2)
    dataset = await api.upload_dataset(
        engineer.headers, archive, "tiny.zip", unique("tiny"), "classification"
    )
    return {"model": model.json()["id"], "dataset": dataset.json()["id"]}


async def _nothing_queued(api: InProcessApi, caller: Caller) -> None:
    jobs = await api.http.get("/api/v1/jobs", headers=caller.headers)
    assert jobs.json()["total"] == 0
    assert ("wake_scheduler", "") not in api.background.submitted


@pytest.mark.parametrize(
    ("hyperparameters", "field"),
    [
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": -1}, "learning_rate"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"optimizer": "adagrad"}, "optimizer"),
        ({"batch_size": "lots"}, "batch_size"),
        ({"dropout": "high"}, "dropout"),
        ({"unknown_knob": 1}, "unknown_knob"),
    ],
)
async def test_bad_hyperparameters_are_422(
    api: InProcessApi,
    engineer: Caller,
    uploaded: dict[str, str],
    hyperparameters: dict[str, object],
    field: str,
) -> None:
    answer = await api.http.post(
        "/api/v1/trainings",
        headers=engineer.headers,
        json={
            "model_id": uploaded["model"],
            "dataset_id": uploaded["dataset"],
            "hyperparameters": hyperparameters,
        },
    )
    assert answer.status_code == 422
    assert error_of(answer)["code"] == "validation_error"
    assert answer.json()["error"]["fields"][0]["location"] == f"body.hyperparameters.{field}"
    await _nothing_queued(api, engineer)


@pytest.mark.parametrize(
    ("change", "status", "sdk_raises", "message"),
    [
        ({"model_id": "no-such-model"}, 404, NotFound, "no model"),
        ({"dataset_id": "no-such-dataset"}, 404, NotFound, "no dataset"),
        ({}, 409, Conflict, "is uploaded; train it once it is ready"),
    ],
)
async def test_trainings_refused_up_front(
    api: InProcessApi,
    engineer: Caller,
    uploaded: dict[str, str],
    change: dict[str, str],
    status: int,
    sdk_raises: type[CvpError],
    message: str,
) -> None:
    body = {"model_id": uploaded["model"], "dataset_id": uploaded["dataset"], **change}
    answer = await api.http.post("/api/v1/trainings", headers=engineer.headers, json=body)
    assert answer.status_code == status, answer.text
    assert message in error_of(answer, sdk_raises)["message"]
    await _nothing_queued(api, engineer)


@pytest.mark.parametrize(
    ("params", "location"),
    [
        ({"status": "sleeping"}, "query.status"),
        ({"limit": 0}, "query.limit"),
        ({"offset": -1}, "query.offset"),
    ],
)
async def test_bad_job_listing_parameters_are_422(
    api: InProcessApi, engineer: Caller, params: dict[str, str | int], location: str
) -> None:
    answer = await api.http.get("/api/v1/jobs", params=params, headers=engineer.headers)
    assert answer.status_code == 422
    assert [field["location"] for field in error_of(answer)["fields"]] == [location]


async def test_training_history_format_is_checked(
    api: InProcessApi, engineer: Caller, uploaded: dict[str, str]
) -> None:
    history = f"/api/v1/models/{uploaded['model']}/trainings"
    assert (await api.http.get(history, headers=engineer.headers)).json() == []
    answer = await api.http.get(history, params={"format": "xml"}, headers=engineer.headers)
    assert answer.status_code == 422
    assert [field["location"] for field in error_of(answer)["fields"]] == ["query.format"]
