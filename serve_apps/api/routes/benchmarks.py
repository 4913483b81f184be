"""Benchmarks: queue one (it holds a GPU slot like a training), follow it over the jobs' events
stream, read its results per engine and batch size with the verdicts and the selection."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from cvplatform.benchmarking.plan import check_batch_sizes, onnx_input_dims, resolve_input_shape
from cvplatform.errors import Conflict, RecordNotFound
from cvplatform.schemas import (
    BenchmarkOut,
    BenchmarkPage,
    BenchmarkRequest,
    BenchmarkResultOut,
    ErrorBody,
    JobOut,
    JobStatus,
)
from serve_apps.api.guard import GuardedRoute, requires
from serve_apps.api.params import Limit, Offset
from serve_apps.api.routes.jobs import job_out, queue_gpu_job
from serve_apps.api.state import ReadDb
from serve_apps.auth.policy import Action
from store import queries
from store.records import JobRecord, ModelRecord, as_dict

router = APIRouter(route_class=GuardedRoute, tags=["benchmarks"])
KIND = "benchmark"


def check_benchmark(db: Any, request: BenchmarkRequest) -> ModelRecord:
    """Refuse, before anything is queued, a benchmark that could not run."""
    model = queries.required(queries.model_by_id, db, request.model_id, "model")
    if model.status != "ready":
        raise Conflict(f"model {model.id} is {model.status}; benchmark it once it is ready")
    dims = onnx_input_dims(model.details.get("summary"))
    resolve_input_shape(request.input_shape, dims)
    check_batch_sizes(request.batch_sizes, dims)
    return model


def benchmark_out(db: Any, job: JobRecord) -> BenchmarkOut:
    results = [
        BenchmarkResultOut.model_validate(
            {k: v for k, v in as_dict(row).items() if k not in ("job_id", "recorded_at")}
        )
        for row in queries.benchmark_results(db, job.id)
    ]
    report = queries.report_of_benchmark(db, job.id)
    return BenchmarkOut.model_validate(
        {**as_dict(job), "results": results, "report_id": report.id if report else None}
    )


def _benchmark(db: Any, job_id: str) -> JobRecord:
    job = queries.required(queries.job_by_id, db, job_id, "benchmark")
    if job.kind != KIND:
        raise RecordNotFound(f"no benchmark with id {job_id} (job {job_id} is a {job.kind})")
    return job


@router.post(
    "/api/v1/benchmarks",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        409: {"model": ErrorBody, "description": "the model is not ready"},
        429: {"model": ErrorBody, "description": "the GPU job queue is full"},
    },
    **requires(Action.JOBS_START),
)
async def start_benchmark(body: BenchmarkRequest, request: Request, db: ReadDb) -> JobOut:
    """Queue a benchmark of a ready model; it starts when a GPU slot is free. Progress (engine,
    batch size, iterations done) streams on ``GET /api/v1/jobs/{id}/events``."""
    model = check_benchmark(db, body)
    return await queue_gpu_job(
        request, kind=KIND, name=f"benchmark {model.name}", body=body, model_id=model.id
    )


@router.get("/api/v1/benchmarks", **requires(Action.RESOURCES_READ))
async def list_benchmarks(
    db: ReadDb,
    status: JobStatus | None = None,
    model_id: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> BenchmarkPage:
    """Benchmark jobs, newest first (each one's results: ``GET /api/v1/benchmarks/{id}``)."""
    filters = {"kind": KIND, "status": status, "model_id": model_id}
    page = queries.list_jobs(db, {k: v for k, v in filters.items() if v}, limit, offset)
    items = [job_out(job) for job in page.items]
    return BenchmarkPage(items=items, total=page.total, limit=limit, offset=offset)


@router.get("/api/v1/benchmarks/{benchmark_id}", **requires(Action.RESOURCES_READ))
async def get_benchmark(benchmark_id: str, db: ReadDb) -> BenchmarkOut:
    """The benchmark with every engine and batch size measured so far; once completed, its
    ``result`` holds the environment, the constraint verdicts and the selection."""
    return benchmark_out(db, _benchmark(db, benchmark_id))


@router.get("/api/v1/models/{model_id}/benchmarks", **requires(Action.RESOURCES_READ))
async def model_benchmarks(
    model_id: str, db: ReadDb, limit: Limit = 50, offset: Offset = 0
) -> BenchmarkPage:
    """The model's benchmarks, newest first."""
    queries.required(queries.model_by_id, db, model_id, "model")
    page = queries.list_jobs(db, {"kind": KIND, "model_id": model_id}, limit, offset)
    items = [job_out(job) for job in page.items]
    return BenchmarkPage(items=items, total=page.total, limit=limit, offset=offset)
