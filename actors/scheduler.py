"""The GPU job scheduler: a named Ray actor that starts queued jobs, oldest first, on the slots.

The queue itself is the ``jobs`` table (so it survives a restart). What to start is decided by
:func:`actors.jobs.scheduling.next_starts`; this shell reads the queue, claims the chosen jobs in
the store, launches each through the job kernel and watches it: when a job's process dies, the
kernel records the job ``failed`` and the next one starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray

from actors.jobs import runner
from actors.jobs.registry import Job, queued_job, slots_needed
from actors.jobs.scheduling import QueuedJob, RunningJob, Start, next_starts
from cvplatform import RAY_NAMESPACE
from cvplatform.config import Settings
from cvplatform.jsonlog import configure_logging
from cvplatform.scrub import platform_scrubber
from store.actor import StoreClient
from store.connections import reading
from store.operations import AsyncStoreOperations

SCHEDULER_NAME = "cvp-scheduler"
_TICK_S = 1.0
log = logging.getLogger("cvp.scheduler")


@dataclass(frozen=True)
class QueueSnapshot:
    queued: list[QueuedJob]
    running_ids: list[str]


def read_queue(settings: Settings) -> QueueSnapshot:
    with reading(settings.db_path) as reader:
        rows = list(
            reader.query(
                "SELECT id, kind, status FROM jobs WHERE status IN ('queued', 'running')"
                " ORDER BY created_at, rowid"
            )
        )
    return QueueSnapshot(
        queued=[
            QueuedJob(row["id"], slots_needed(row["kind"]))
            for row in rows
            if row["status"] == "queued"
        ],
        running_ids=[row["id"] for row in rows if row["status"] == "running"],
    )


class Scheduler:
    """Args:
    settings: the slots (``gpu_slots``) and the paths.
    store: the store client (claims and ends jobs).
    gpus: the node's GPUs.
    queue: reads the queue from the store.
    launch: starts a claimed job; returns what to await for its end.
    record_death: records a job whose process died.
    """

    def __init__(
        self,
        settings: Settings,
        store: AsyncStoreOperations,
        gpus: float,
        queue: Callable[[], QueueSnapshot],
        launch: Callable[[Job, Start], Any],
        record_death: Callable[[Job, BaseException], None],
    ) -> None:
        configure_logging(settings, "scheduler")
        self._slots = settings.gpu_slots
        self._scrub = platform_scrubber(settings)
        self._store, self._gpus = store, gpus
        self._queue, self._launch, self._record_death = queue, launch, record_death
        # job id -> slots held; an earlier life's jobs are adopted with the one slot they hold.
        self._holding: dict[str, int] = {}
        self._adopted: set[str] = set()
        self._lock = asyncio.Lock()
        self._loop_task: asyncio.Task[None] | None = None

    async def wake(self) -> dict[str, Any]:
        """Start queued jobs on free slots now (called after a submission)."""
        self._ensure_loop()
        await self._fill()
        return self.state()

    def state(self) -> dict[str, Any]:
        return {"slots": self._slots, "running": sorted(self._holding)}

    def _ensure_loop(self) -> None:
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        # A restarted scheduler adopts the jobs its earlier life started: they still hold slots.
        for job_id in self._queue().running_ids:
            if job_id not in self._holding:
                self._holding[job_id] = 1
                self._adopted.add(job_id)
        while True:
            try:
                await self._fill()
            except Exception:
                log.exception("scheduler tick failed")
            await asyncio.sleep(_TICK_S)

    async def _fill(self) -> None:
        async with self._lock:
            while True:
                snapshot = self._queue()
                for job_id in self._adopted - set(snapshot.running_ids):  # adopted, now ended
                    self._adopted.discard(job_id)
                    self._holding.pop(job_id, None)
                running = [RunningJob(job_id, held) for job_id, held in self._holding.items()]
                starts = next_starts(snapshot.queued, running, self._slots, self._gpus)
                started = [await self._start(start) for start in starts]
                if all(started):  # else a slot is still free: decide again
                    return

    async def _start(self, start: Start) -> bool:
        """Claim and launch one job; whether it now holds its slots."""
        claimed = await self._store.claim_job(job_id=start.job_id)
        if claimed is None:  # cancelled or claimed meanwhile
            return False
        job = queued_job(claimed)
        try:
            pending = self._launch(job, start)
        except Exception as error:  # never leave a claimed job "running" with no process
            log.exception("could not start job %s", job.subject_id)
            await self._store.finish_job(
                job_id=job.subject_id,
                status="failed",
                error=self._scrub(f"the scheduler could not start it: {error}"),
            )
            return False
        log.info("started job %s (%s)", job.subject_id, job.name)
        self._holding[job.subject_id] = start.gpu_slots
        asyncio.get_running_loop().create_task(self._watch(job, pending))
        return True

    async def _watch(self, job: Job, pending: Any) -> None:
        try:
            await pending
        except ray.exceptions.RayError as error:
            try:
                await asyncio.to_thread(self._record_death, job, error)
            except Exception:
                log.exception("could not record the end of job %s", job.subject_id)
        finally:
            self._holding.pop(job.subject_id, None)
        await self._fill()


def start_scheduler(settings: Settings) -> Any:
    gpus = float(ray.cluster_resources().get("GPU", 0))  # type: ignore[no-untyped-call]

    def launch(job: Job, start: Start) -> Any:
        return runner.launch(settings, job, start)

    def record_death(job: Job, error: BaseException) -> None:
        runner.record_death(settings, job, error)

    def queue() -> QueueSnapshot:
        return read_queue(settings)

    actor: Any = (
        ray.remote(Scheduler)
        .options(name=SCHEDULER_NAME, namespace=RAY_NAMESPACE, max_restarts=-1, num_cpus=0)
        .remote(settings, AsyncStoreOperations(StoreClient()), gpus, queue, launch, record_death)
    )
    ray.get(actor.wake.remote())
    return actor
