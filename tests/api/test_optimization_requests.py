"""GA searches over HTTP in-process (real SQLite, no Ray): each bad request refused before
anything is queued, a good one queued, and the results page, its exports and train-best read
from a real GA's state and real trial rows written through the store, as the driver writes them.
The driver and the trials running for real are tested with Ray in ``tests/integration``."""

from __future__ import annotations

import csv
import io
import json
import math
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from cvplatform.client import Client
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
from cvplatform.schemas.optimizations import OptimizationRequest
from serve_apps.api.app import create_app
from tests import datasets_kit
from tests.api_harness import (
    ADMIN_PASSWORD,
    Caller,
    InProcessApi,
    InProcessStore,
    SteppedClock,
    error_of,
    in_process_platform,
)
from tests.helpers import unique
from tune_space.genetic import GAConfig, GeneticAlgorithm
from tune_space.space import search_space
from tune_space.trials import Search, trial_request

pytestmark = pytest.mark.anyio
OPTIMIZATIONS = "/api/v1/optimizations"
SAMPLES = 20  # the dataset's size: a training split of 18 at the default validation split 0.1
FAILED_TRIAL = 2  # the trial whose training fails
# Batch sizes as the driver caps them to the training split of 18 (tune_space.driver.fitted_space).
BOUNDS = {"learning_rate": {"low": 1e-4, "high": 1e-2}, "batch_size": {"low": 8, "high": 16}}
SEARCH = {
    "population_size": 4,
    "generations": 3,
    "elite_count": 1,
    "seed": 7,
    "gene_bounds": BOUNDS,
}
CSV_HEADER = [
    "index",
    "generation",
    "operation",
    "parents",
    "learning_rate",
    "batch_size",
    "optimizer",
    "weight_decay",
    "dropout",
    "status",
    "fitness",
    "duration_s",
    "job_id",
    "error",
]


def make_ready(store: InProcessStore, model_id: str | None, dataset_id: str | None) -> None:
    """What the model's conversion and the dataset's validation would record (neither runs
    here); None leaves that one as it is."""
    if model_id is not None:
        store.run_sync("set_model_status", model_id=model_id, status="ready")
    if dataset_id is not None:
        outcome = {
            "layout": "class_folders",
            "content_hash": "0" * 64,
            "num_samples": SAMPLES,
            "num_classes": 3,
            "class_names": ["a", "b", "c"],
            "total_bytes": 1000,
            "details": {},
        }
        store.run_sync("finish_validation", dataset_id=dataset_id, outcome=outcome)


def fitness_of(genes: dict[str, Any]) -> float:
    """A deterministic fitness that peaks at learning rate 1e-3, no dropout, adam."""
    fitness = 1 - abs(math.log10(float(genes["learning_rate"])) + 3) / 4
    fitness -= float(genes["dropout"]) / 10 + (0 if genes["optimizer"] == "adam" else 0.05)
    return round(fitness, 6)


@dataclass
class TrialRun:
    job_id: str
    duration_s: float
    fitness: float | None


def run_search(
    store: InProcessStore, clock: SteppedClock, search_job: dict[str, Any]
) -> tuple[GeneticAlgorithm, dict[int, TrialRun]]:
    """Drive a real, seeded GA as the driver does: each individual a training row (a child of the
    search) claimed and finished with its fitness, trial ``FAILED_TRIAL`` failed; then the GA's
    state written into the search's progress."""
    request = OptimizationRequest.model_validate(search_job["request"])
    store.run_sync("claim_job", job_id=search_job["id"])
    algorithm = GeneticAlgorithm(
        search_space(request.gene_bounds.model_dump(mode="json", exclude_none=True)),
        GAConfig(
            request.population_size,
            request.generations,
            request.mutation_rate,
            request.crossover_rate,
            request.elite_count,
            request.seed,
        ),
    )
    search = Search(search_job["id"], search_job["name"], search_job["owner_id"], request, 100)
    runs: dict[int, TrialRun] = {}
    while (individual := algorithm.next_individual()) is not None:
        trial = trial_request(search, individual.genes, individual.index)
        training = store.run_sync(
            "enqueue_job",
            job={
                "id": unique("trial"),
                "kind": "training",
                "name": f"{search.name} · trial {individual.index}",
                "owner_id": search.owner_id,
                "model_id": trial.model_id,
                "dataset_id": trial.dataset_id,
                "request": trial.model_dump(mode="json"),
                "parent_id": search.job_id,
            },
            max_queued=100,
        )
        store.run_sync("claim_job", job_id=training.id)
        duration_s = 1.0 + individual.index
        clock.advance(duration_s)
        fitness = None if individual.index == FAILED_TRIAL else fitness_of(individual.genes)
        if fitness is None:
            store.run_sync("finish_job", job_id=training.id, status="failed", error="diverged")
        else:
            result = {"fitness": fitness}
            store.run_sync("finish_job", job_id=training.id, status="completed", result=result)
        algorithm.record(individual.index, fitness)
        runs[individual.index] = TrialRun(training.id, duration_s, fitness)
    assert algorithm.finished
    store.run_sync("record_job_progress", job_id=search.job_id, progress={"ga": algorithm.state()})
    return algorithm, runs


# --- in-process over ASGI --------------------------------------------------------------------


@pytest.fixture
async def uploaded(api: InProcessApi, admin: Caller, tmp_path: Path) -> dict[str, str]:
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
async def ready(api: InProcessApi, uploaded: dict[str, str]) -> dict[str, str]:
    make_ready(api.store, uploaded["model_id"], uploaded["dataset_id"])
    return uploaded


async def _nothing_queued(api: InProcessApi, caller: Caller) -> None:
    jobs = await api.http.get("/api/v1/jobs", headers=caller.headers)
    assert jobs.json()["total"] == 0
    assert ("wake_scheduler", "") not in api.background.submitted


async def _start(api: InProcessApi, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    answer = await api.http.post(OPTIMIZATIONS, headers=caller.headers, json=body)
    assert answer.status_code == 202, answer.text
    job: dict[str, Any] = answer.json()
    return job


@pytest.mark.parametrize("role", ["engineer", "viewer", None])
async def test_only_an_admin_starts_a_search(
    api: InProcessApi, admin: Caller, ready: dict[str, str], role: Role | None
) -> None:
    headers = (await api.new_user(role)).headers if role else {}
    answer = await api.http.post(OPTIMIZATIONS, headers=headers, json=ready)
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
    uploaded: dict[str, str],
    change: dict[str, Any],
    status: int,
    sdk_raises: type[CvpError],
    message: str,
) -> None:
    unready = change.get("not_ready")
    change = {key: value for key, value in change.items() if key != "not_ready"}
    make_ready(
        api.store,
        None if unready == "model" else uploaded["model_id"],
        None if unready == "dataset" else uploaded["dataset_id"],
    )
    answer = await api.http.post(OPTIMIZATIONS, headers=admin.headers, json={**uploaded, **change})
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
    ready: dict[str, str],
    change: dict[str, Any],
    location: str,
) -> None:
    answer = await api.http.post(OPTIMIZATIONS, headers=admin.headers, json={**ready, **change})
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
    ready: dict[str, str],
    bounds: dict[str, Any],
    message: str,
) -> None:
    body = {**ready, "gene_bounds": bounds}
    answer = await api.http.post(OPTIMIZATIONS, headers=admin.headers, json=body)
    assert answer.status_code == 422, answer.text
    error = error_of(answer, GeneBoundsError)
    assert error["code"] == "invalid_gene_bounds"
    assert message in error["message"], error["message"]
    await _nothing_queued(api, admin)


async def test_a_search_is_queued_and_its_results_follow_the_ga(
    api: InProcessApi, admin: Caller, engineer: Caller, ready: dict[str, str]
) -> None:
    viewer = await api.new_user("viewer")  # before the clock moves on: no token from the future
    body = {**ready, **SEARCH}
    job = await _start(api, admin, body)
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


async def test_unknown_searches_are_404(
    api: InProcessApi, admin: Caller, ready: dict[str, str]
) -> None:
    body = {**ready, "hyperparameters": {"batch_size": 8}}
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
