"""Jobs and training: submit a training (queued for a GPU slot), follow it (latest figures, or a
server-sent event stream), cancel it, and a model's training history as JSON or CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from cvplatform.errors import Conflict, InvalidInput
from cvplatform.schemas import ErrorBody, JobOut, JobPage, JobStatus, TrainingRequest
from serve_apps.api.guard import GuardedRoute, principal_of, requires
from serve_apps.api.params import LastEventId, Limit, Offset
from serve_apps.api.state import ReadDb, platform
from serve_apps.auth.policy import Action
from store import queries
from store.connections import reading
from store.records import DatasetRecord, JobRecord, ModelRecord, as_dict

router = APIRouter(route_class=GuardedRoute, tags=["jobs"])


def job_out(job: JobRecord) -> JobOut:
    return JobOut.model_validate(as_dict(job))


FINAL = ("completed", "failed", "cancelled")
_STREAM_POLL_S = 0.5
_HEARTBEAT_S = 15.0


def check_training(db: Any, request: TrainingRequest) -> tuple[ModelRecord, DatasetRecord]:
    """Refuse, before anything is queued, a training that could not run."""
    model = queries.required(queries.model_by_id, db, request.model_id, "model")
    dataset = queries.required(queries.dataset_by_id, db, request.dataset_id, "dataset")
    if model.status != "ready":
        raise Conflict(f"model {model.id} is {model.status}; train it once it is ready")
    if dataset.status != "ready":
        raise Conflict(f"dataset {dataset.id} is {dataset.status}; train on it once it is ready")
    if model.task_type != dataset.task_type:
        raise InvalidInput(
            f"a {model.task_type} model cannot train on a {dataset.task_type} dataset"
        )
    if model.source_format != "torch_state_dict" or not model.architecture:
        raise InvalidInput(
            "training needs a PyTorch state-dict model with an architecture (a preset, an upload "
            f"with architecture=..., or a trained model); {model.name} is {model.source_format}"
        )
    hp = request.hyperparameters
    samples = dataset.num_samples or 0
    training_images = int(samples * (1 - hp.validation_split))
    if hp.batch_size > training_images:
        raise InvalidInput(
            f"batch_size {hp.batch_size} is larger than the training split "
            f"(about {training_images} of {samples} samples); lower it"
        )
    return model, dataset


async def queue_gpu_job(
    request: Request,
    kind: str,
    name: str,
    body: BaseModel,
    model_id: str | None = None,
    dataset_id: str | None = None,
) -> JobOut:
    """Queue a job for the GPU slots (429 when the queue is full) and wake the scheduler."""
    state = platform(request)
    job = await state.ops.enqueue_job(
        job={
            "id": uuid.uuid4().hex,
            "kind": kind,
            "name": name,
            "owner_id": principal_of(request).user_id,
            "model_id": model_id,
            "dataset_id": dataset_id,
            "request": body.model_dump(mode="json"),
        },
        max_queued=state.settings.gpu_queue_max,
    )
    state.background.wake_scheduler()
    request.state.audit_detail = f"job {job.id}"
    return job_out(job)


@router.post(
    "/api/v1/trainings",
    status_code=status.HTTP_202_ACCEPTED,
    responses={429: {"model": ErrorBody, "description": "the GPU job queue is full"}},
    **requires(Action.JOBS_START),
)
async def start_training(body: TrainingRequest, request: Request, db: ReadDb) -> JobOut:
    """Queue a training of a model on a dataset; it starts when a GPU slot is free."""
    model, dataset = check_training(db, body)
    return await queue_gpu_job(
        request,
        kind="training",
        name=f"train {model.name} on {dataset.name}",
        body=body,
        model_id=model.id,
        dataset_id=dataset.id,
    )


@router.get("/api/v1/jobs", **requires(Action.RESOURCES_READ))
async def list_jobs(
    db: ReadDb,
    status: JobStatus | None = None,
    kind: str | None = None,
    model_id: str | None = None,
    dataset_id: str | None = None,
    parent_id: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> JobPage:
    filters = {
        "status": status,
        "kind": kind,
        "model_id": model_id,
        "dataset_id": dataset_id,
        "parent_id": parent_id,
    }
    page = queries.list_jobs(db, {k: v for k, v in filters.items() if v}, limit, offset)
    items = [job_out(job) for job in page.items]
    return JobPage(items=items, total=page.total, limit=limit, offset=offset)


@router.get("/api/v1/jobs/{job_id}", **requires(Action.RESOURCES_READ))
async def get_job(job_id: str, db: ReadDb) -> JobOut:
    """The job with its latest figures (epoch, losses, accuracies, images/s, ETA, step)."""
    return job_out(queries.required(queries.job_by_id, db, job_id, "job"))


@router.post(
    "/api/v1/jobs/{job_id}/cancel",
    responses={409: {"model": ErrorBody, "description": "the job has ended already"}},
    **requires(Action.JOBS_CANCEL),
)
async def cancel_job(job_id: str, request: Request) -> JobOut:
    """A queued job leaves the queue; a running one stops within two seconds, keeping its
    history so far, and ends ``cancelled``."""
    job = await platform(request).ops.request_cancel(job_id=job_id)
    request.state.audit_detail = f"job {job_id}"
    return job_out(job)


def _event(kind: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n"


@router.get(
    "/api/v1/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        400: {"model": ErrorBody, "description": "Last-Event-ID is not an event id"},
    },
    **requires(Action.RESOURCES_READ),
)
async def job_events(
    job_id: str, request: Request, db: ReadDb, last_event_id: LastEventId
) -> StreamingResponse:
    """Server-sent events as they happen: ``epoch`` (the figures of each finished epoch),
    ``phase``, ``progress`` (the step counter), ``status``, and a last ``end``. Resumes after
    ``Last-Event-ID``."""
    queries.required(queries.job_by_id, db, job_id, "job")
    db_path = platform(request).settings.db_path
    return StreamingResponse(
        _stream(db_path, job_id, last_event_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(db_path: Any, job_id: str, after: int) -> AsyncIterator[str]:
    last_progress: Any = None
    quiet_for = 0.0
    while True:
        with reading(db_path) as reader:
            events = queries.job_events_after(reader, job_id, after)
            job = queries.job_by_id(reader, job_id)
        for event in events:
            after = event["id"]
            yield _event(event["kind"], {"at": event["at"], **event["payload"]}, event["id"])
        if job is None:
            yield _event("end", {"status": "deleted"})
            return
        if job.progress != last_progress:
            last_progress = job.progress
            yield _event("progress", dict(last_progress))
        if job.status in FINAL:
            result = None if job.result is None else dict(job.result)
            yield _event("end", {"status": job.status, "error": job.error, "result": result})
            return
        quiet_for = 0.0 if events else quiet_for + _STREAM_POLL_S
        if quiet_for >= _HEARTBEAT_S:  # a comment keeps proxies from closing an idle stream
            quiet_for = 0.0
            yield ": still running\n\n"
        await asyncio.sleep(_STREAM_POLL_S)


_HISTORY_COLUMNS = (
    "job_id",
    "status",
    "dataset_id",
    "created_at",
    "started_at",
    "finished_at",
    "duration_s",
    "device",
    "final_accuracy",
    "final_loss",
    "best_epoch",
    "best_val_accuracy",
    "epochs_run",
    "trained_model_id",
    "error",
)


def history_row(job: JobRecord) -> dict[str, Any]:
    result = job.result or {}
    row: dict[str, Any] = {
        "job_id": job.id,
        "status": job.status,
        "dataset_id": job.dataset_id,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "device": job.device,
        "error": job.error,
        **{key: result.get(key) for key in _HISTORY_COLUMNS if key in result},
    }
    for name, value in job.request["hyperparameters"].items():
        row[f"hp_{name}"] = json.dumps(value) if isinstance(value, dict | list) else value
    return row


@router.get("/api/v1/models/{model_id}/trainings", **requires(Action.RESOURCES_READ))
async def training_history(
    model_id: str, db: ReadDb, format: Literal["json", "csv"] = "json"
) -> Response:
    """Every training of the model: hyperparameters, results, duration, timestamps."""
    queries.required(queries.model_by_id, db, model_id, "model")
    page = queries.list_jobs(db, {"kind": "training", "model_id": model_id}, 10_000, 0)
    rows = [history_row(job) for job in page.items]
    if format == "json":
        return Response(json.dumps(rows), media_type="application/json")
    columns = list(_HISTORY_COLUMNS) + sorted(
        {key for row in rows for key in row if key.startswith("hp_")}
    )
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        table.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="trainings-{model_id}.csv"'},
    )
