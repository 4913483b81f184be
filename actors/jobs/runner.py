"""The Ray shell of the job kernel: the one path from a job to a process and back.

``execute`` runs a job in the current process and records how it ended. ``launch`` starts it as a
Ray task with its kind's resources; ``submit`` (work that needs no GPU slot) launches it under a
supervisor that waits and, if the job's process dies, records that instead, so a subject never
stays ``converting`` or ``running`` with nothing behind it. The scheduler launches the jobs that
hold a GPU slot and watches them the same way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import ray

from actors.jobs.registry import Job, JobKind, Outcome, end_job, kind_of, run_to_end
from actors.jobs.reporter import JobReporter
from actors.jobs.scheduling import Start
from cvplatform.config import Settings
from cvplatform.jsonlog import configure_logging
from store.actor import StoreClient

log = logging.getLogger("cvp.jobs")
Result = TypeVar("Result")


def prepare_process(settings: Settings) -> None:
    configure_logging(settings, f"worker-{os.getpid()}")
    # ultralytics keeps settings in the user's home unless told otherwise, and must not go online.
    os.environ.setdefault("YOLO_CONFIG_DIR", str(settings.data_dir / "ultralytics"))
    os.environ.setdefault("YOLO_OFFLINE", "1")


def execute(settings: Settings, job: Job) -> str:
    """Run ``job`` here to its end and record the outcome; returns the final status."""
    prepare_process(settings)
    reporter = JobReporter(
        settings,
        job,
        StoreClient(),
        fan_out=RayFanOut(),
        submit=lambda other: submit(settings, other),
    )
    try:
        return run_to_end(job, reporter).status
    finally:
        reporter.close()


class RayFanOut:
    """Work split over CPU tasks, one CPU each (validation, preprocessing)."""

    def map(
        self, function: Callable[..., Result], calls: Sequence[tuple[Any, ...]]
    ) -> list[Result]:
        task = ray.remote(num_cpus=1, max_retries=0)(function)
        return list(ray.get([task.remote(*arguments) for arguments in calls]))

    def workers(self) -> int:
        return max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]


def launch(settings: Settings, job: Job, start: Start | None = None) -> Any:
    """Start ``job`` as a Ray task with its kind's resources (``start``: its GPU slot's share)."""
    kind = kind_of(job)
    # max_calls can be set on the function only, not per call.
    remote = ray.remote(max_calls=1)(execute) if kind.fresh_process else ray.remote(execute)
    options: dict[str, Any] = {"name": job.name, "num_cpus": kind.num_cpus, "max_retries": 0}
    if start is not None and start.gpu_slots:
        options["resources"] = {"gpu_slot": start.gpu_slots}
        options["num_gpus"] = start.num_gpus
    return remote.options(**options).remote(settings, job)


def record_death(settings: Settings, job: Job, error: BaseException) -> None:
    """The job's process died before it could record an end: record one for it."""
    log.error("%s: its process died: %s", job.name, error)
    record_failure(
        settings,
        job,
        f"{kind_of(job).label} failed: the process running it died ({type(error).__name__}); "
        "see the Ray worker logs",
    )


def record_failure(settings: Settings, job: Job, reason: str) -> None:
    reporter = JobReporter(settings, job, StoreClient())
    try:
        end_job(job, Outcome.failed(reason), reporter)
    finally:
        reporter.close()


def supervise(settings: Settings, job: Job) -> str:
    """Launch ``job`` and wait for it; if its process dies, record that. Runs as a task itself."""
    try:
        status: str = ray.get(launch(settings, job))
    except ray.exceptions.RayError as error:
        record_death(settings, job, error)
        return "failed"
    except Exception as error:  # it could not even be started
        log.exception("%s could not start", job.name)
        record_failure(settings, job, f"{kind_of(job).label} could not start: {error}")
        return "failed"
    return status


def submit(settings: Settings, job: Job) -> Any:
    """Start work that needs no GPU slot, supervised; returns at once.

    Raises:
        ValueError: the job's kind is queued for the GPU slots (the scheduler starts those).
    """
    kind: JobKind = kind_of(job)
    if kind.gpu_slot:
        raise ValueError(f"{job.kind} jobs wait in the GPU queue; the scheduler starts them")
    # The supervisor only waits: it reserves no CPU.
    supervisor = ray.remote(supervise).options(
        name=f"supervise-{job.kind}-{job.subject_id[:8]}", num_cpus=0, max_retries=0
    )
    return supervisor.remote(settings, job)
