"""GA search requests over HTTP in-process (real SQLite, no Ray): each bad request refused before
anything is queued, and unknown searches. The results, exports and train-best are in
``test_optimization_results.py``; the driver and its trials with Ray in ``tests/integration``."""

from __future__ import annotations

from typing import Any

import pytest

from cvplatform.errors import (
    AuthError,
    Conflict,
    CvpError,
    GeneBoundsError,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from cvplatform.schemas import Role
from tests.api.optimizations_kit import (
    OPTIMIZATIONS,
    make_ready,
)
from tests.api_harness import (
    Caller,
    InProcessApi,
    error_of,
)

pytestmark = pytest.mark.anyio


async def _nothing_queued(api: InProcessApi, caller: Caller) -> None:
    jobs = await api.http.get("/api/v1/jobs", headers=caller.headers)
    assert jobs.json()["total"] == 0
    assert ("wake_scheduler", "") not in api.background.submitted


@pytest.mark.parametrize("role", ["engineer", "viewer", None])
async def test_only_an_admin_starts_a_search(
    api: InProcessApi, admin: Caller, search_ready: dict[str, str], role: Role | None
) -> None:
    headers = (await api.new_user(role)).headers if role else {}
    answer = await api.http.post(OPTIMIZATIONS, headers=headers, json=search_ready)
    expected = (403, PermissionDenied) if role else (401, AuthError)
    assert answer.status_code == expected[0], answer.text
    error_of(answer, expected[1])
    await _nothing_queued(api, admin)


@pytest.mark.parametrize(
    ("change", "status", "sdk_raises", "message"),
    [
        ({"model_id": "no-such-model"}, 404, NotFound, "no model"),
        ({"dataset_id": "no-such-dataset"}, 404, NotFound, "no dataset"),
        ({"not_ready": "model"}, 409, Conflict, "is uploaded; train it once it is ready"),
        ({"not_ready": "dataset"}, 409, Conflict, "is uploaded; train on it once it is ready"),
        (
            {"gene_bounds": {"batch_size": {"low": 32, "high": 64}}},
            422,
            InvalidInput,
            "larger than the training split",
        ),
        # 17 fits the split of 18, but the smallest power of two in the bounds (32) does not.
        (
            {"gene_bounds": {"batch_size": {"low": 17, "high": 64}}},
            422,
            InvalidInput,
            "larger than the training split",
        ),
    ],
)
async def test_searches_refused_up_front(
    api: InProcessApi,
    admin: Caller,
    search_uploads: dict[str, str],
    change: dict[str, Any],
    status: int,
    sdk_raises: type[CvpError],
    message: str,
) -> None:
    unready = change.get("not_ready")
    change = {key: value for key, value in change.items() if key != "not_ready"}
    make_ready(
        api.store,
        None if unready == "model" else search_uploads["model_id"],
        None if unready == "dataset" else search_uploads["dataset_id"],
    )
    answer = await api.http.post(
        OPTIMIZATIONS, headers=admin.headers, json={**search_uploads, **change}
    )
    assert answer.status_code == status, answer.text
    error = error_of(answer, sdk_raises)
    assert message in error["message"]
    if "gene_bounds" in change:  # the message says which setting to lower
        assert "gene_bounds.batch_size.low" in error["message"]
    await _nothing_queued(api, admin)


@pytest.mark.parametrize(
    ("change", "location"),
    [
        ({"population_size": 1}, "body.population_size"),
        ({"generations": 0}, "body.generations"),
        ({"mutation_rate": 1.5}, "body.mutation_rate"),
        ({"epochs_per_trial": 0}, "body.epochs_per_trial"),
        ({"population_size": 4, "elite_count": 4}, "body"),
        ({"gene_bounds": {"optimizer": ["adagrad"]}}, "body.gene_bounds.optimizer.0"),
        ({"gene_bounds": {"dropout": {"low": 0.1}}}, "body.gene_bounds.dropout.high"),
    ],
)
async def test_bad_settings_are_422(
    api: InProcessApi,
    admin: Caller,
    search_ready: dict[str, str],
    change: dict[str, Any],
    location: str,
) -> None:
    answer = await api.http.post(
        OPTIMIZATIONS, headers=admin.headers, json={**search_ready, **change}
    )
    assert answer.status_code == 422, answer.text
    error = error_of(answer)
    assert error["code"] == "validation_error"
    assert location in [field["location"] for field in error["fields"]], error
    if "elite_count" in change:
        assert "elite_count (4) must be smaller than population_size (4)" in error["message"]
    await _nothing_queued(api, admin)


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({"learning_rate": {"low": 1e-6, "high": 1e-2}}, "learning_rate bounds"),
        ({"weight_decay": {"low": 1e-5, "high": 0.5}}, "weight_decay bounds"),
        ({"dropout": {"low": 0.5, "high": 0.2}}, "dropout: low (0.5) is above high (0.2)"),
        ({"batch_size": {"low": 9, "high": 15}}, "batch_size bounds [9.0, 15.0] hold no power"),
        ({"optimizer": []}, "optimizer choices must be a non-empty list"),
    ],
)
async def test_gene_bounds_may_only_narrow_the_space(
    api: InProcessApi,
    admin: Caller,
    search_ready: dict[str, str],
    bounds: dict[str, Any],
    message: str,
) -> None:
    body = {**search_ready, "gene_bounds": bounds}
    answer = await api.http.post(OPTIMIZATIONS, headers=admin.headers, json=body)
    assert answer.status_code == 422, answer.text
    error = error_of(answer, GeneBoundsError)
    assert error["code"] == "invalid_gene_bounds"
    assert message in error["message"], error["message"]
    await _nothing_queued(api, admin)


async def test_unknown_searches_are_404(
    api: InProcessApi, admin: Caller, search_ready: dict[str, str]
) -> None:
    body = {**search_ready, "hyperparameters": {"batch_size": 8}}
    training = await api.http.post("/api/v1/trainings", headers=admin.headers, json=body)
    assert training.status_code == 202, training.text
    for unknown in ("no-such-search", training.json()["id"]):
        for method, path in [
            ("GET", f"{OPTIMIZATIONS}/{unknown}"),
            ("GET", f"{OPTIMIZATIONS}/{unknown}/export?format=json"),
            ("POST", f"{OPTIMIZATIONS}/{unknown}/train-best"),
        ]:
            answer = await api.http.request(method, path, headers=admin.headers)
            assert answer.status_code == 404, (method, path, answer.text)
            assert f"optimization {unknown} not found" in error_of(answer, NotFound)["message"]


# --- the SDK, through the in-process app ------------------------------------------------------
