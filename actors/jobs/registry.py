"""Jobs, their outcomes, and the registry from job kind to the plain code that runs it.

Pure: nothing here imports Ray, and a kind's code is imported only in the process that runs it
(a conversion's PyTorch or TensorFlow never loads into the API server).
"""

from __future__ import annotations

import importlib
import logging
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from cvplatform.errors import CvpError
from store.records import JobRecord

if TYPE_CHECKING:
    from actors.jobs.reporter import JobReporter

log = logging.getLogger("cvp.jobs")

OutcomeStatus = Literal["completed", "ready", "invalid", "failed", "cancelled", "skipped"]


class JobCancelled(Exception):
    """The job was asked to stop and stopped at a safe point."""


@dataclass(frozen=True)
class Job:
    """One piece of background work.

    ``subject_id`` names the record the work is about: the job's own row for the kinds queued on
    the GPU slots (``tracked``: progress, events and cancellation live there), else the model,
    dataset or preprocessing run whose status tells the user how it went.
    """

    kind: str
    subject_id: str
    name: str
    request: Mapping[str, Any] = field(default_factory=dict)
    owner_id: int | None = None
    tracked: bool = False


@dataclass(frozen=True)
class Outcome:
    """How a job ended: the final status of its subject, why, and what it produced."""

    status: OutcomeStatus
    reason: str | None = None
    result: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def failed(cls, reason: str) -> Outcome:
        return cls("failed", reason)


RunJob = Callable[[Job, "JobReporter"], Outcome]
RecordEnd = Callable[[Job, Outcome, "JobReporter"], None]


@dataclass(frozen=True)
class JobKind:
    """How a kind of job runs.

    Args:
        name: the kind, as jobs name it.
        run: ``"module:function"``, the plain ``run(job, reporter) -> Outcome``.
        record_end: ``"module:function"``, writing the outcome onto the job's subject; it is also
            what records a process that died.
        label: how messages name the work ("the conversion").
        gpu_slot: queued for the scheduler and run on one of the GPU slots; otherwise started at
            once on the CPUs.
        num_cpus: the CPUs its process reserves (0 when it only waits on tasks it starts).
        fresh_process: run in a process of its own that exits after (native libraries that do
            not share a process well, memory given back).
    """

    name: str
    run: str
    record_end: str
    label: str
    gpu_slot: bool = False
    num_cpus: float = 0.0
    fresh_process: bool = False

    def load(self) -> tuple[RunJob, RecordEnd]:
        return _resolve(self.run), _resolve(self.record_end)


def _resolve(reference: str) -> Any:
    module, _, function = reference.partition(":")
    return getattr(importlib.import_module(module), function)


KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        JobKind(
            "conversion",
            run="actors.models.job:run_conversion",
            record_end="actors.models.job:end_conversion",
            label="the conversion",
            num_cpus=1,
            # TensorFlow and PyTorch loaded into one process can crash each other's native code.
            fresh_process=True,
        ),
        JobKind(
            "register_presets",
            run="actors.models.job:register_presets",
            record_end="actors.jobs.registry:nothing_to_record",
            label="registering the presets",
            num_cpus=1,
            fresh_process=True,
        ),
        JobKind(
            "validation",
            run="actors.datasets.job:run_validation",
            record_end="actors.datasets.job:end_validation",
            label="validation",
        ),
        JobKind(
            "preprocessing",
            run="actors.datasets.job:run_preprocessing",
            record_end="actors.datasets.job:end_preprocessing",
            label="preprocessing",
        ),
        JobKind(
            "register_samples",
            run="actors.datasets.job:register_samples",
            record_end="actors.jobs.registry:nothing_to_record",
            label="registering the sample datasets",
            num_cpus=1,
        ),
        JobKind(
            "training",
            run="actors.training.job:run_training",
            record_end="actors.jobs.registry:end_tracked_job",
            label="training",
            gpu_slot=True,
            fresh_process=True,  # GPU memory and threads start clean for every job
        ),
        JobKind(
            "ga_search",
            run="tune_space.driver:run_optimization",
            record_end="actors.jobs.registry:end_tracked_job",
            label="the GA search",
            # Its driver holds no slot (its trials, trainings queued like any other, hold one each)
            # and only waits on them: no CPU reserved either.
            fresh_process=True,
        ),
        JobKind(
            "benchmark",
            run="actors.benchmarks.job:run_benchmark",
            record_end="actors.benchmarks.job:end_benchmark",
            label="the benchmark",
            gpu_slot=True,  # queued behind trainings like any GPU job
            fresh_process=True,  # the engines' native memory and threads go with the process
        ),
    )
}


def queued_job(record: JobRecord) -> Job:
    """The job behind a row of the ``jobs`` table (the work queued for the GPU slots)."""
    return Job(
        kind=record.kind,
        subject_id=record.id,
        name=f"{record.name} [{record.id[:8]}]",  # what the Ray dashboard shows
        request=record.request,
        owner_id=record.owner_id,
        tracked=True,
    )


def slots_needed(kind: str) -> int:
    """GPU slots the first process of a queued job of this kind holds."""
    return 1 if KINDS[kind].gpu_slot else 0


def kind_of(job: Job) -> JobKind:
    """The job's kind.

    Raises:
        KeyError: no such kind is registered.
    """
    try:
        return KINDS[job.kind]
    except KeyError:
        raise KeyError(f"no job kind {job.kind!r} is registered (known: {sorted(KINDS)})") from None


def nothing_to_record(job: Job, outcome: Outcome, reporter: JobReporter) -> None:
    """For work whose effects are its own records (registrations): only the log says it ended."""
    reporter.log_end(outcome)


def end_tracked_job(job: Job, outcome: Outcome, reporter: JobReporter) -> None:
    """A job with its own row: the row ends with the outcome."""
    ended = ("completed", "failed", "cancelled")
    status = outcome.status if outcome.status in ended else "failed"
    reporter.log_end(outcome)
    reporter.ops.finish_job(
        job_id=job.subject_id,
        status=status,
        result=dict(outcome.result) if status == "completed" else None,
        error=outcome.reason,
    )


def run_to_end(job: Job, reporter: JobReporter) -> Outcome:
    """Run ``job`` in this process and record how it ended, whatever happens inside.

    A cancellation ends it ``cancelled``; a platform error ``failed`` with its message; anything
    else ``failed`` as a crash, with the traceback in the log. Returns the outcome recorded.
    """
    kind = kind_of(job)
    run, record_end = kind.load()
    try:
        outcome = run(job, reporter)
    except JobCancelled:
        outcome = Outcome("cancelled", "cancelled on request")
    except CvpError as error:
        outcome = Outcome.failed(error.message)
    except Exception as error:
        log.error("%s crashed:\n%s", job.name, traceback.format_exc())
        outcome = Outcome.failed(f"{kind.label} crashed: {type(error).__name__}: {error}")
    return end_job(job, outcome, reporter, record_end)


def end_job(
    job: Job, outcome: Outcome, reporter: JobReporter, record_end: RecordEnd | None = None
) -> Outcome:
    """Record how ``job`` ended (``record_end``: its kind's own, loaded if not given).

    The reason loses any server path first: it is what the user reads, and a library's message
    names files by their full path (see :mod:`cvplatform.scrub`). Returns the outcome recorded.
    """
    if outcome.reason:
        outcome = replace(outcome, reason=reporter.scrub(outcome.reason))
    if outcome.status == "skipped":  # its subject was deleted before it started
        reporter.log_end(outcome)
    else:
        (record_end or kind_of(job).load()[1])(job, outcome, reporter)
    return outcome
