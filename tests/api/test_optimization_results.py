"""A GA search's results page, its exports and train-best over HTTP in-process, read from a real
GA's state and real trial rows written through the store as the driver writes them, and the SDK's
calls end to end."""

from __future__ import annotations

import csv
import io
import json
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from cvplatform.client import Client
from cvplatform.errors import (
    Conflict,
    GeneBoundsError,
    PermissionDenied,
)
from cvplatform.schemas.optimizations import OptimizationRequest
from serve_apps.api.app import create_app
from tests import datasets_kit
from tests.api.optimizations_kit import (
    CSV_HEADER,
    FAILED_TRIAL,
    OPTIMIZATIONS,
    SEARCH,
    make_ready,
    run_search,
    start_search,
)
from tests.api_harness import (
    ADMIN_PASSWORD,
    Caller,
    InProcessApi,
    error_of,
    in_process_platform,
)
from tests.helpers import unique

pytestmark = pytest.mark.anyio


async def test_a_search_is_queued_and_its_results_follow_the_ga(
    api: InProcessApi, admin: Caller, engineer: Caller, search_ready: dict[str, str]
) -> None:
    viewer = await api.new_user("viewer")  # before the clock moves on: no token from the future
    body = {**search_ready, **SEARCH}
    job = await start_search(api, admin, body)
    assert (job["kind"], job["status"], job["parent_id"]) == ("ga_search", "queued", None)
    assert job["request"] == OptimizationRequest.model_validate(body).model_dump(mode="json")
    assert ("wake_scheduler", "") in api.background.submitted
    url = f"{OPTIMIZATIONS}/{job['id']}"

    before = (await api.http.get(url, headers=engineer.headers)).json()
    assert before["status"] == "queued"
    assert (before["trials"], before["generations"], before["trials_done"]) == ([], [], 0)
    assert before["best_fitness"] is None and before["best_trial"] is None
    assert before["trials_total"] == 4 + 2 * 3
    refused = await api.http.post(f"{url}/train-best", headers=admin.headers, json={})
    assert refused.status_code == 409
    assert "no completed trial yet" in error_of(refused, Conflict)["message"]

    algorithm, runs = run_search(api.store, api.clock, job)
    after = (await api.http.get(url, headers=engineer.headers)).json()
    assert after["status"] == "running" and after["trials_done"] == len(runs) == 10
    best = algorithm.best()
    assert best is not None
    completed = {index: run.fitness for index, run in runs.items() if run.fitness is not None}
    assert after["best_fitness"] == best.fitness == max(completed.values())
    assert after["best_hyperparameters"] == best.genes
    assert after["best_trial"] == best.index
    assert after["generations"] == algorithm.generation_summary()
    first = after["generations"][0]
    generation0 = [fitness for index, fitness in completed.items() if index < 4]
    assert (first["best"], first["worst"]) == (max(generation0), min(generation0))
    assert (first["completed"], first["failed"]) == (3, 1)
    assert len(after["trials"]) == len(algorithm.individuals) == 12  # 2 elites: not trained
    fitness_by_index: dict[int, float | None] = {}
    for trial, individual in zip(after["trials"], algorithm.individuals, strict=True):
        run = runs.get(individual.index)
        assert trial["index"] == individual.index
        assert trial["generation"] == individual.generation
        assert (trial["operation"], trial["parents"]) == (individual.operation, individual.parents)
        assert trial["genes"] == individual.genes
        assert 1e-4 <= trial["genes"]["learning_rate"] <= 1e-2
        assert trial["genes"]["batch_size"] in (8, 16)
        if run is None:  # an elite: its parent's fitness, carried over
            assert trial["operation"] == "elite" and trial["job_id"] is None
            carried = fitness_by_index[trial["parents"][0]]
            assert carried is not None and trial["fitness"] == carried
            fitness_by_index[individual.index] = trial["fitness"]
            continue
        fitness_by_index[individual.index] = run.fitness
        assert (trial["job_id"], trial["duration_s"]) == (run.job_id, run.duration_s)
        assert trial["fitness"] == run.fitness
        assert trial["status"] == ("failed" if run.fitness is None else "completed")
    failed = after["trials"][FAILED_TRIAL]
    assert (failed["status"], failed["fitness"], failed["error"]) == ("failed", None, "diverged")

    await _exports_match(api, engineer, url, after)
    await _trains_the_best(api, admin, engineer, viewer, url, best.genes)
    children = await api.http.get(
        "/api/v1/jobs", params={"parent_id": job["id"]}, headers=engineer.headers
    )
    assert {child["id"] for child in children.json()["items"]} == {r.job_id for r in runs.values()}
    assert {child["parent_id"] for child in children.json()["items"]} == {job["id"]}
    listed = (await api.http.get(OPTIMIZATIONS, headers=engineer.headers)).json()
    assert [item["id"] for item in listed["items"]] == [job["id"]]


async def _exports_match(
    api: InProcessApi, caller: Caller, url: str, shown: dict[str, Any]
) -> None:
    exported = await api.http.get(f"{url}/export", params={"format": "csv"}, headers=caller.headers)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    reader = csv.DictReader(io.StringIO(exported.text))
    assert reader.fieldnames == CSV_HEADER
    rows = list(reader)
    assert len(rows) == len(shown["trials"])
    for row, trial in zip(rows, shown["trials"], strict=True):
        assert row["parents"] == " ".join(str(parent) for parent in trial["parents"])
        assert row["operation"] == trial["operation"]
        assert row["optimizer"] == trial["genes"]["optimizer"]
        assert row["fitness"] == ("" if trial["fitness"] is None else str(trial["fitness"]))
        assert row["job_id"] == (trial["job_id"] or "")
    assert any(len(trial["parents"]) == 2 for trial in shown["trials"])  # a crossover's two
    as_json = await api.http.get(f"{url}/export", params={"format": "json"}, headers=caller.headers)
    assert json.loads(as_json.content) == shown
    unknown = await api.http.get(f"{url}/export", params={"format": "xml"}, headers=caller.headers)
    assert unknown.status_code == 422
    assert [field["location"] for field in error_of(unknown)["fields"]] == ["query.format"]


async def _trains_the_best(
    api: InProcessApi,
    admin: Caller,
    engineer: Caller,
    viewer: Caller,
    url: str,
    genes: dict[str, Any],
) -> None:
    forbidden = await api.http.post(f"{url}/train-best", headers=viewer.headers, json={})
    assert forbidden.status_code == 403
    error_of(forbidden, PermissionDenied)
    zero = await api.http.post(f"{url}/train-best", headers=admin.headers, json={"max_epochs": 0})
    assert zero.status_code == 422
    assert [field["location"] for field in error_of(zero)["fields"]] == ["body.max_epochs"]
    answer = await api.http.post(
        f"{url}/train-best", headers=engineer.headers, json={"max_epochs": 25}
    )
    assert answer.status_code == 202, answer.text
    training = answer.json()
    assert (training["kind"], training["status"], training["parent_id"]) == (
        "training",
        "queued",
        None,
    )
    hyperparameters = training["request"]["hyperparameters"]
    assert {gene: hyperparameters[gene] for gene in genes} == genes
    assert (hyperparameters["max_epochs"], hyperparameters["seed"]) == (25, SEARCH["seed"])


class _ThroughApp(httpx.BaseTransport):
    """The SDK's requests answered by the in-process app (starlette's test client)."""

    def __init__(self, app: TestClient) -> None:
        self._app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self._app.send(request)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def test_the_sdk_runs_a_search_end_to_end(tmp_path: Path) -> None:
    url = "http://cvp.test"
    with (
        in_process_platform(tmp_path / "data") as running,
        closing(TestClient(create_app(running.state))) as app,  # no lifespan, as in the harness
        Client.login(url, "admin", ADMIN_PASSWORD, transport=_ThroughApp(app)) as admin,
    ):
        token = app.post(
            "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        model = app.post(
            "/api/v1/models",
            headers=headers,
            data={
                "name": unique("mnv3"),
                "task_type": "classification",
                "architecture": "mobilenet_v3_small",
            },
            files={"file": ("mnv3.pth", b"weights, never read here")},
        ).json()
        archive = datasets_kit.class_folders(tmp_path / "tiny.zip", classes=3, per_class=2)
        dataset = app.post(
            "/api/v1/datasets",
            headers=headers,
            data={"name": unique("tiny"), "task_type": "classification"},
            files={"file": ("tiny.zip", archive.read_bytes())},
        ).json()
        make_ready(running.store, model["id"], dataset["id"])

        with pytest.raises(ValueError, match="elite_count"):  # refused before sending
            admin.start_optimization(model["id"], dataset["id"], population_size=2, elite_count=2)
        with pytest.raises(GeneBoundsError, match="learning_rate"):
            admin.start_optimization(
                model["id"],
                dataset["id"],
                gene_bounds={"learning_rate": {"low": 1e-7, "high": 1e-3}},
            )
        job = admin.start_optimization(model["id"], dataset["id"], **SEARCH)
        assert (job.kind, job.status) == ("ga_search", "queued")
        with pytest.raises(Conflict):
            admin.train_best(job.id)

        algorithm, runs = run_search(running.store, running.clock, job.model_dump())
        shown = admin.get_optimization(job.id)
        best = algorithm.best()
        assert best is not None
        assert (shown.best_trial, shown.best_fitness) == (best.index, best.fitness)
        assert [t.job_id for t in shown.trials if t.job_id] == [r.job_id for r in runs.values()]
        assert [item.id for item in admin.list_optimizations().items] == [job.id]
        lineage = admin.export_optimization(job.id, tmp_path / "lineage.csv")
        rows = list(csv.DictReader(io.StringIO(lineage.read_text(encoding="utf-8"))))
        assert [int(row["index"]) for row in rows] == [t.index for t in shown.trials]
        exported = admin.export_optimization(job.id, tmp_path / "ga.json", format="json")
        assert json.loads(exported.read_text()) == shown.model_dump(mode="json")
        training = admin.train_best(job.id, max_epochs=3)
        assert training.kind == "training"
        assert training.request["hyperparameters"]["max_epochs"] == 3
        assert training.request["hyperparameters"]["learning_rate"] == best.genes["learning_rate"]
