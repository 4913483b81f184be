"""GA hyperparameter searches: start one (admin), follow it, export its lineage, and train the best
configuration it found. Its events stream at ``/api/v1/jobs/{id}/events``; an admin cancels it at
``/api/v1/jobs/{id}/cancel``."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, status
from fastapi.responses import Response
from pydantic import Field

from cvplatform.errors import Conflict, InvalidInput, RecordNotFound
from cvplatform.schemas import ErrorBody, Hyperparameters, JobOut, TrainingRequest, WireModel
from cvplatform.schemas.optimizations import (
    OptimizationOut,
    OptimizationPage,
    OptimizationRequest,
)
from serve_apps.api.guard import GuardedRoute, requires
from serve_apps.api.params import Limit, Offset
from serve_apps.api.routes.jobs import check_training, queue_gpu_job
from serve_apps.api.state import ReadDb
from serve_apps.auth.policy import Action
from store import queries
from store.records import JobRecord
from tune_space.results import lineage_csv, optimization_out
from tune_space.space import search_space

router = APIRouter(route_class=GuardedRoute, tags=["optimizations"])

KIND = "ga_search"


class TrainBest(WireModel):
    max_epochs: int = Field(10, ge=1, le=1000)


def _search(db: Any, optimization_id: str) -> JobRecord:
    job = queries.job_by_id(db, optimization_id)
    if job is None or job.kind != KIND:
        raise RecordNotFound(f"optimization {optimization_id} not found")
    return job


def _out(db: Any, job: JobRecord) -> OptimizationOut:
    children = queries.list_jobs(db, {"parent_id": job.id}, 10_000, 0).items
    return optimization_out(job, children)


def check_optimization(db: Any, body: OptimizationRequest) -> tuple[str, str]:
    """Refuse, before anything is queued, a search that could not run; returns the model's and
    the dataset's names."""
    # 422 for bounds wider than the defaults, upside down, or holding no power of two.
    space = search_space(body.gene_bounds.model_dump(mode="json", exclude_none=True))
    probe = TrainingRequest(
        model_id=body.model_id,
        dataset_id=body.dataset_id,
        hyperparameters=Hyperparameters(batch_size=space.batch_sizes[0]),
    )
    try:
        model, dataset = check_training(db, probe)
    except InvalidInput as error:
        raise InvalidInput(f"{error.message} (gene_bounds.batch_size.low)") from None
    return model.name, dataset.name


@router.post(
    "/api/v1/optimizations",
    status_code=status.HTTP_202_ACCEPTED,
    responses={429: {"model": ErrorBody, "description": "the GPU job queue is full"}},
    **requires(Action.GA_RUN),
)
async def start_optimization(body: OptimizationRequest, request: Request, db: ReadDb) -> JobOut:
    """Queue a GA search; its driver starts at once (it holds no GPU slot), and each of its
    trials is a training queued for a slot like any other."""
    model_name, dataset_name = check_optimization(db, body)
    return await queue_gpu_job(
        request,
        kind=KIND,
        name=f"GA search: {model_name} on {dataset_name}",
        body=body,
        model_id=body.model_id,
        dataset_id=body.dataset_id,
    )


@router.get("/api/v1/optimizations", **requires(Action.RESOURCES_READ))
async def list_optimizations(db: ReadDb, limit: Limit = 50, offset: Offset = 0) -> OptimizationPage:
    page = queries.list_jobs(db, {"kind": KIND}, limit, offset)
    return OptimizationPage(
        items=[_out(db, job) for job in page.items], total=page.total, limit=limit, offset=offset
    )


@router.get("/api/v1/optimizations/{optimization_id}", **requires(Action.RESOURCES_READ))
async def get_optimization(optimization_id: str, db: ReadDb) -> OptimizationOut:
    """Best hyperparameters and fitness, fitness per generation (best, mean, worst), and every
    trial with its genes, parents, the operation that made it, status and duration."""
    return _out(db, _search(db, optimization_id))


@router.get(
    "/api/v1/optimizations/{optimization_id}/export",
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
    **requires(Action.RESOURCES_READ),
)
async def export_optimization(
    optimization_id: str, db: ReadDb, format: Literal["csv", "json"] = "csv"
) -> Response:
    """The lineage, one row per trial (CSV), or the whole search (JSON)."""
    optimization = _out(db, _search(db, optimization_id))
    filename = f"optimization-{optimization_id[:8]}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if format == "json":
        return Response(
            optimization.model_dump_json(), media_type="application/json", headers=headers
        )
    return Response(lineage_csv(optimization), media_type="text/csv", headers=headers)


@router.post(
    "/api/v1/optimizations/{optimization_id}/train-best",
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"model": ErrorBody, "description": "no trial has completed yet"}},
    **requires(Action.JOBS_START),
)
async def train_best(
    optimization_id: str, request: Request, db: ReadDb, body: TrainBest | None = None
) -> JobOut:
    """Queue a full training (``max_epochs``, default 10) from the best configuration found."""
    optimization = _out(db, _search(db, optimization_id))
    if optimization.best_hyperparameters is None:
        raise Conflict(
            f"optimization {optimization_id} has no completed trial yet; train its best "
            "configuration once one has completed"
        )
    search = optimization.request
    training = TrainingRequest(
        model_id=search.model_id,
        dataset_id=search.dataset_id,
        hyperparameters=Hyperparameters.model_validate(
            {
                **optimization.best_hyperparameters,
                "max_epochs": (body or TrainBest()).max_epochs,
                "image_size": search.image_size,
                "seed": search.seed,
                "augmentation": search.augmentation,
            }
        ),
    )
    model, dataset = check_training(db, training)
    return await queue_gpu_job(
        request,
        kind="training",
        name=f"train {model.name} on {dataset.name} (best of GA {optimization_id[:8]})",
        body=training,
        model_id=model.id,
        dataset_id=dataset.id,
    )
